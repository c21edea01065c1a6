"""Registry of base learners behind one interface.

A learner is a module (listed with its defaults in ``specs.py``) with:

- ``DEFAULTS``: dict of its parameters and their default values;
- ``fit(images, labels, n_classes, seed, params, device) -> state``: train one base model on
  its own subset (uint8 images[n, ...], int64 labels[n]); ``state`` is a dict of tensors and
  plain values that ``torch.load(weights_only=True)`` can read back;
- ``predict(states, images, n_classes, params, device) -> float32[n_models, n_test, n_classes]``:
  class scores of several base models of one shard on a batch of test images.

Votes are the argmax of the scores with ties to the smaller class (DESIGN 4.2).
"""

import importlib

from ..errors import PipelineError
from .specs import SPECS

# name -> module (imported on first use: the modules import torch, which the workflow's parsing
# of params does not need; see specs.py)
LEARNERS = {name: spec["module"] for name, spec in SPECS.items()}


def get(name: str):
    """The learner module called ``name``."""
    try:
        module = LEARNERS[name]
    except KeyError:
        raise PipelineError(f"unknown learner {name!r}; choose from {', '.join(LEARNERS)}") from None
    return importlib.import_module(module) if isinstance(module, str) else module


def defaults(name: str) -> dict:
    if name in SPECS:
        return SPECS[name]["defaults"]
    return get(name).DEFAULTS


def wants_gpu(name: str) -> bool:
    """Whether the learner trains on a GPU when one is there (hog_nn does not need one)."""
    return bool(SPECS.get(name, {}).get("gpu", False))


def resolve_params(name: str, params: dict | None) -> dict:
    """The learner's defaults updated with ``params``; unknown keys are an error."""
    known = defaults(name)
    params = dict(params or {})
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise PipelineError(
            f"learner {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are {', '.join(sorted(known))}"
        )
    return {**known, **params}


def pick_device(device: str = "auto"):
    """'auto' -> CUDA when available, else CPU; 'cpu' or 'cuda' as given."""
    import torch

    torch.backends.cudnn.deterministic = True  # same seed and subset give the same model on a GPU too
    torch.backends.cudnn.benchmark = False
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise PipelineError("device: cuda requested but no CUDA GPU is available; set device: auto or cpu")
    return torch.device(device)
