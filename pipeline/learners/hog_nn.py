"""``hog_nn``: 1-nearest-neighbour on HOG features (fast; the CPU default).

Trains on: its own subset only. ``fit`` stores the subset's images and labels (a nearest-neighbour
model is its training set); ``predict`` maps them to HOG features.
HOG is a fixed per-image map (no statistics of any training set), so the model is a function
of its own subset alone. Class score = minus the Euclidean distance from the test image to the
nearest training sample of that class in the subset; a class absent from the subset scores -inf.
"""

import numpy as np
import torch

from ..features import multi_hog
from ..progress import bar

DEFAULTS = {
    "cells": [4, 7],        # HOG cell sizes in pixels; one HOG per size, concatenated
    "orientations": 9,      # unsigned orientation bins
    "block": 2,             # cells per block side (L2-Hys block normalisation)
}


def features(images: np.ndarray, params: dict) -> np.ndarray:
    return multi_hog(images, tuple(params["cells"]), params["orientations"], params["block"])


def fit(images, labels, n_classes, seed, params, device):
    return {"images": torch.from_numpy(np.ascontiguousarray(images)), "labels": torch.from_numpy(np.asarray(labels, np.int64))}


def predict(states, images, n_classes, params, device):
    """Scores float32[n_models, n_test, n_classes]: -distance to the nearest sample of each class.

    Each model's distances are computed on their own (test set x its subset), so its scores are
    bit-for-bit a function of its subset, whatever other models share the shard.
    """
    test = torch.from_numpy(features(images, params)).to(device)
    test_sq = (test * test).sum(1, keepdim=True)
    # HOG maps every image on its own, so one call over all subsets equals one call per subset.
    train_features = torch.from_numpy(features(np.concatenate([s["images"].numpy() for s in states]), params))
    ends = np.cumsum([len(s["labels"]) for s in states])
    out = np.empty((len(states), len(test), n_classes), dtype=np.float32)
    for m, state in enumerate(bar(states, desc="predict")):
        train = train_features[ends[m] - len(state["labels"]):ends[m]].to(device)
        labels = state["labels"].to(device)
        sq = (test_sq + (train * train).sum(1)[None, :] - 2.0 * test @ train.T).clamp_min_(0)
        best = torch.full((len(test), n_classes), float("inf"), device=device)
        best.scatter_reduce_(1, labels.expand(len(test), -1), sq, reduce="amin", include_self=True)
        out[m] = (-best.sqrt()).cpu().numpy()
    return out
