"""``hog_nn``: 1-nearest-neighbour on HOG features (fast; the CPU default).

Trains on: its own subset only. ``fit`` stores the subset's images and labels (a nearest-neighbour
model is its training set); ``predict`` deskews them (optional), adds rotated copies of each of
them (optional augmentation) and maps everything to HOG features; test images are deskewed the
same way. Deskewing uses each image's own moments, rotation angles are fixed and HOG is a fixed
per-image map: nothing depends on any other sample, so the model is a function of its own subset
alone. Class score = minus the Euclidean distance from the test image to the nearest (augmented)
training sample of that class in the subset; a class absent from the subset scores -inf.

Exact arithmetic (docs/design.md#determinism): features are quantised to integers with a scale fixed by
the parameters and the image size (``quantisation_scale``), small enough that every squared distance,
and every partial sum of the products that make it, is an integer below 2**24. float32 represents
those exactly, so the matrix products give the same distances whatever the BLAS library, the CPU's
vector instructions, the number of threads or the grouping of samples; nearest neighbours, scores,
votes and ties do not depend on the machine.
"""

import numpy as np
import torch

from ..progress import bar
from .features import deskew, multi_hog, rotate
from .specs import SPECS

DEFAULTS = SPECS["hog_nn"]["defaults"]  # parameters and defaults: pipeline/learners/specs.py


EXACT_LIMIT = 2**24  # float32 holds every integer up to here exactly


def features(images: np.ndarray, params: dict) -> np.ndarray:
    """HOG of (deskewed) images: float64[N, D]."""
    if params["deskew"]:
        images = deskew(images)
    return multi_hog(images, tuple(params["cells"]), params["orientations"], params["block"])


def quantisation_scale(params: dict, n_features: int) -> float:
    """The largest power of two s such that features quantised as rint(s * f) keep every squared distance
    exact in float32.

    Each HOG scale's part has squared norm <= 1 / (block**2 * orientations) (L2-normalised blocks), so
    ||f||^2 <= B = len(cells) / (block**2 * orientations) and ||rint(s f)|| <= s sqrt(B) + sqrt(D) / 2.
    Features are non-negative, so ||a||^2 + ||b||^2 and 2 a.b (and all their partial sums) are at most
    2 V^2 with V that bound; 2 V^2 <= 2**24 is the condition.
    """
    bound = len(params["cells"]) / (params["block"] ** 2 * params["orientations"])
    v_max = np.sqrt(EXACT_LIMIT / 2)
    s = (v_max - np.sqrt(n_features) / 2) / np.sqrt(bound)
    if s < 1:
        raise ValueError(f"hog_nn: {n_features} features are too many for exact float32 distances")
    return float(2.0 ** np.floor(np.log2(s)))


def quantised(feats: np.ndarray, scale: float) -> torch.Tensor:
    """Features float64[N, D] as exact integers rint(scale * f) in float32."""
    return torch.from_numpy(np.rint(feats * scale).astype(np.float32))


def augmented(images: np.ndarray, labels: np.ndarray, params: dict):
    """The training images (deskewed if asked) and their rotated copies, with labels repeated."""
    if params["deskew"]:
        images = deskew(images)
    copies = [images] + [rotate(images, angle) for angle in params["rotations"]]
    return np.concatenate(copies), np.tile(labels, len(copies))


def fit(images, labels, n_classes, seed, params, device):
    return {"images": torch.from_numpy(np.ascontiguousarray(images)),
            "labels": torch.from_numpy(np.asarray(labels, np.int64))}


FEATURE_CHUNK_PIXELS = 2**23  # images mapped to features at once (bounds the memory of the HOG steps)


def chunked(fn, images: np.ndarray) -> np.ndarray:
    """``fn`` (a per-image map to float32[n, D]) over ``images`` in chunks of about FEATURE_CHUNK_PIXELS pixels."""
    step = max(1, FEATURE_CHUNK_PIXELS // max(1, int(np.prod(images.shape[1:]))))
    if len(images) <= step:
        return fn(images)
    return np.concatenate([fn(images[s:s + step]) for s in range(0, len(images), step)])


def predict(states, images, n_classes, params, device):
    """Scores float32[n_models, n_test, n_classes]: -distance to the nearest sample of each class.

    Each model's features and distances are computed on their own (test set x its subset, with its
    rotated copies), in exact arithmetic, so its scores are bit for bit a function of its subset,
    whatever other models share the shard; memory holds one model's features at a time.
    """
    test_features = chunked(lambda x: features(x, params), images)
    scale = quantisation_scale(params, test_features.shape[1])
    test = quantised(test_features, scale).to(device)
    test_sq = (test * test).sum(1, keepdim=True)
    hog_params = {**params, "deskew": False}  # augmented() deskews
    out = np.empty((len(states), len(test), n_classes), dtype=np.float32)
    for m, state in enumerate(bar(states, desc="predict")):
        own_images, own_labels = augmented(state["images"].numpy(), state["labels"].numpy(), params)
        train = quantised(chunked(lambda x: features(x, hog_params), own_images), scale).to(device)
        labels = torch.from_numpy(own_labels).to(device)
        sq = test_sq + (train * train).sum(1)[None, :] - 2.0 * test @ train.T  # exact integers
        best = torch.full((len(test), n_classes), float("inf"), device=device)
        best.scatter_reduce_(1, labels.expand(len(test), -1), sq, reduce="amin", include_self=True)
        # sqrt in float64 numpy (correctly rounded everywhere; torch's float32 sqrt is not on every CPU)
        out[m] = (-np.sqrt(best.cpu().numpy().astype(np.float64)) / scale).astype(np.float32)
    return out
