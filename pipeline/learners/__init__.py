"""Registry of base learners behind one interface.

A learner is a module (listed with its defaults in ``specs.py``) with:

- ``DEFAULTS``: dict of its parameters and their default values;
- ``fit(images, labels, n_classes, seed, params, device) -> state``: train one base model on
  its own subset (uint8 images[n, ...], int64 labels[n]); ``state`` is a dict of tensors and
  plain values that ``torch.load(weights_only=True)`` can read back;
- ``predict(states, images, n_classes, params, device) -> float32[n_models, n_test, n_classes]``:
  class scores of several base models of one shard on a batch of test images.

A decomposable learner (``is_decomposable``; hog_nn) also has:

- ``embed_test(images, params) -> (float32[n_test, D], scale)``: exact-integer test features;
- ``embed_train(images, labels, params, scale) -> (float32[M, D], labels[M], rows[M])``: the training
  images' features with any augmented copies (``rows``: the image each row comes from);
- ``scores_from_min_sq(min_sq, scale)``: class scores from the smallest squared feature distances.

Votes are the argmax of the scores with ties to the smaller class (docs/design.md#votes).
"""

import importlib
import json
import math
from collections.abc import Mapping

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


def is_decomposable(name: str) -> bool:
    """Whether a base model's class scores are per-class minima over its training samples (nearest neighbour),
    so that they are computed from shared per-bucket distances (pipeline/nearest.py) rather than model by
    model. Such a learner module also has ``embed_test``, ``embed_train`` and ``scores_from_min_sq``."""
    return bool(SPECS.get(name, {}).get("decomposable", False))


def resolve_params(name: str, params: dict | None) -> dict:
    """The learner's defaults updated with ``params``; unknown keys and invalid values are an error.

    Values are checked against the learner's schema in specs.py and by check_params.
    """
    known = defaults(name)
    if params is None:
        params = {}
    if not isinstance(params, Mapping):
        raise PipelineError(f"learner {name!r}: its parameters must be a mapping of names to values, not "
                            f"{type(params).__name__} {params!r}; e.g. {json.dumps(dict(list(known.items())[:1]))}")
    params = dict(params)
    unknown = sorted(set(params) - set(known))
    if unknown:
        raise PipelineError(
            f"learner {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are {', '.join(sorted(known))}"
        )
    resolved = {**known, **params}
    check_params(name, resolved)
    return resolved


def _param_validator(schema):
    import jsonschema

    # Python ints only: JSON schema counts 2.0 as an integer, but range() and torch refuse it.
    checker = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda _, value: isinstance(value, int) and not isinstance(value, bool))
    return jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=checker)(schema)


def check_params(name: str, params: dict) -> None:
    """Raise PipelineError naming the first bad key of a learner's resolved parameters.

    The schema (types, ranges) first, then what it cannot express: finite numbers, and nin's
    milestones in non-decreasing order.
    """
    schema = SPECS.get(name, {}).get("schema")
    if schema is None:  # a learner without a schema (e.g. one registered by a test)
        return
    errors = sorted(_param_validator(schema).iter_errors(params),
                    key=lambda e: (list(map(str, e.absolute_path))[:1], len(e.absolute_path)))
    if errors:
        err = errors[0]
        key = err.absolute_path[0] if err.absolute_path else None
        message = f"learner {name!r}: {'.'.join(map(str, err.absolute_path)) or 'parameters'}: {err.message}"
        if key in defaults(name):
            message += f" (default: {json.dumps(defaults(name)[key])})"
        if isinstance(err.instance, str) and err.validator == "type" and _is_number(err.instance):
            message += ("; write numbers unquoted, with a decimal point before an exponent "
                        "(YAML reads 1e-3 as text, 1.0e-3 as a number)")
        raise PipelineError(message)
    for key, value in params.items():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, float) and not math.isfinite(item):
                raise PipelineError(f"learner {name!r}: {key}: {item} is not a finite number "
                                    f"(default: {json.dumps(defaults(name)[key])})")
    milestones = params.get("milestones")
    if milestones is not None and any(b < a for a, b in zip(milestones, milestones[1:])):
        raise PipelineError(f"learner {name!r}: milestones: {milestones} must be in non-decreasing order "
                            f"(epochs after which the learning rate is multiplied by gamma), e.g. "
                            f"{sorted(milestones)} (default: {json.dumps(defaults(name)['milestones'])})")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def pick_device(device: str = "auto"):
    """'auto' -> CUDA when available, else CPU; 'cpu' or 'cuda' as given."""
    import torch

    torch.backends.cudnn.deterministic = True  # same seed and subset give the same model on a GPU too
    torch.backends.cudnn.benchmark = False
    torch.backends.cuda.matmul.allow_tf32 = False  # hog_nn's exact distances need full float32 products
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise PipelineError("device: cuda requested but no CUDA GPU is available; set device: auto or cpu")
    return torch.device(device)
