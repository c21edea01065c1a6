"""``hog_nn``: 1-nearest-neighbour on HOG features (fast; the CPU default).

Trains on: its own subset only. ``fit`` stores the subset's images and labels (a nearest-neighbour
model is its training set); ``predict`` deskews them (optional), adds rotated copies of each of
them (optional augmentation) and maps everything to HOG features; test images are deskewed the
same way. Deskewing uses each image's own moments, rotation angles are fixed and HOG is a fixed
per-image map: nothing depends on any other sample, so the model is a function of its own subset
alone. Class score = minus the Euclidean distance from the test image to the nearest (augmented)
training sample of that class in the subset; a class absent from the subset scores -inf.
"""

import numpy as np
import torch

from ..progress import bar
from .features import deskew, multi_hog, rotate
from .specs import SPECS

DEFAULTS = SPECS["hog_nn"]["defaults"]  # parameters and defaults: pipeline/learners/specs.py


def features(images: np.ndarray, params: dict) -> np.ndarray:
    """HOG of (deskewed) images: float32[N, D]."""
    if params["deskew"]:
        images = deskew(images)
    return multi_hog(images, tuple(params["cells"]), params["orientations"], params["block"])


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
    rotated copies), so its scores are bit for bit a function of its subset, whatever other models
    share the shard; memory holds one model's features at a time.
    """
    test = torch.from_numpy(chunked(lambda x: features(x, params), images)).to(device)
    test_sq = (test * test).sum(1, keepdim=True)
    hog_params = {**params, "deskew": False}  # augmented() deskews
    out = np.empty((len(states), len(test), n_classes), dtype=np.float32)
    for m, state in enumerate(bar(states, desc="predict")):
        own_images, own_labels = augmented(state["images"].numpy(), state["labels"].numpy(), params)
        train = torch.from_numpy(chunked(lambda x: features(x, hog_params), own_images)).to(device)
        labels = torch.from_numpy(own_labels).to(device)
        sq = (test_sq + (train * train).sum(1)[None, :] - 2.0 * test @ train.T).clamp_min_(0)
        best = torch.full((len(test), n_classes), float("inf"), device=device)
        best.scatter_reduce_(1, labels.expand(len(test), -1), sq, reduce="amin", include_self=True)
        out[m] = (-best.sqrt()).cpu().numpy()
    return out
