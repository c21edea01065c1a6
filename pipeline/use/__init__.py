"""Using a certified ensemble (docs/using.md): classify new inputs with their certificates, export a bundle, serve
it over HTTP. Not workflow stages: these read a certified run's files (or a bundle) and write nothing into it.

    from pipeline.use import load_ensemble
    ensemble = load_ensemble("work/mnist_dpa_k1200")   # a run folder, a run name or a bundle file
    table = ensemble.certify(images)                    # uint8[n, 28, 28] -> one row per image

Modules: ``ensemble`` (load_ensemble, Ensemble), ``inputs`` (image, npz and IDX files), ``bundle`` (export and
verified reading), ``server`` (the HTTP service).
"""

from .ensemble import Ensemble, load_ensemble

__all__ = ["Ensemble", "load_ensemble"]
