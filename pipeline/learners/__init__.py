"""Registry of base learners behind one interface.

A learner is a module with:

- ``DEFAULTS``: dict of its parameters and their default values;
- ``fit(images, labels, n_classes, seed, params, device) -> state``: train one base model on
  its own subset (uint8 images[n, ...], int64 labels[n]); ``state`` is a dict of tensors and
  plain values that ``torch.load(weights_only=True)`` can read back;
- ``predict(states, images, n_classes, params, device) -> float32[n_models, n_test, n_classes]``:
  class scores of several base models of one shard on a batch of test images.

Votes are the argmax of the scores with ties to the smaller class (DESIGN 4.2).
"""

from ..errors import PipelineError
from . import hog_nn, nin, small_cnn

LEARNERS = {"hog_nn": hog_nn, "small_cnn": small_cnn, "nin": nin}


def get(name: str):
    try:
        return LEARNERS[name]
    except KeyError:
        raise PipelineError(f"unknown learner {name!r}; choose from {', '.join(LEARNERS)}") from None


def resolve_params(name: str, params: dict | None) -> dict:
    """The learner's defaults updated with ``params``; unknown keys are an error."""
    learner = get(name)
    params = dict(params or {})
    unknown = sorted(set(params) - set(learner.DEFAULTS))
    if unknown:
        raise PipelineError(
            f"learner {name!r} has no parameter {', '.join(map(repr, unknown))}; "
            f"its parameters are {', '.join(sorted(learner.DEFAULTS))}"
        )
    return {**learner.DEFAULTS, **params}


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
