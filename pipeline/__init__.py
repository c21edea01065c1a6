"""Certified defenses against training-data poisoning by aggregation (DPA, FA, ROE, DPA*).

Layers (docs/design.md#layout): ``stages/`` (one module per workflow rule, run by ``python -m pipeline
<stage>``) over ``artifacts/`` (one owner per file the workflow writes: schema, writer, reader) over the
domain packages ``data/``, ``partition``/``edits``, ``learners/`` and ``certify/``, over utilities
(``atomic``, ``errors``, ``progress``, ``provenance``, ``resources``, ``config``, ``code_inputs``).
Logic is small functions over numpy arrays, tested without Snakemake.
"""

__version__ = "0.1.0"
