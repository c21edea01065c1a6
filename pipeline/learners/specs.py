"""What the workflow needs to know about each learner without importing torch.

Snakemake reads this when it parses the workflow (validation, GPU requests), in every job too;
the learner modules themselves import torch and are loaded only when a model is trained or used.

Each learner's ``schema`` is a JSON schema (draft 2020-12) of its resolved parameters (defaults
updated with the run's ``learner.params``); learners.resolve_params checks it, and the constraints a
schema cannot express (see learners.check_params). Integers are Python ints there: 2.0 is no integer.
"""

_INT = {"type": "integer"}
_NUMBER = {"type": "number"}  # finite: learners.check_params refuses NaN and infinities

# Parameters the torch learners share (SGD with Nesterov momentum, random-crop augmentation).
_TORCH = {
    "epochs": {**_INT, "minimum": 1},
    "batch_size": {**_INT, "minimum": 2, "description": "BatchNorm needs two samples per batch"},
    "lr": {**_NUMBER, "exclusiveMinimum": 0},
    "momentum": {**_NUMBER, "minimum": 0, "exclusiveMaximum": 1},
    "weight_decay": {**_NUMBER, "minimum": 0},
    "crop_padding": {**_INT, "minimum": 0},
}


def _schema(properties: dict) -> dict:
    """Schema of an object with exactly these properties (all required: they are the resolved parameters)."""
    return {"type": "object", "additionalProperties": False, "required": sorted(properties),
            "properties": properties}


SPECS = {
    "orient_nn": {
        "module": "pipeline.learners.orient_nn",
        "gpu": False,  # 1-NN needs no GPU: no GPU is asked of the scheduler (distances still use one when present)
        "decomposable": True,  # scores are per-class minima over training samples: shared distances (nearest.py)
        "defaults": {
            "orientations": 12,     # signed gradient-direction bins over 360 degrees
            "blur": 0.7,            # Gaussian blur before the gradients (pixels)
            "grid": 9,              # pooling centres per side (a grid x grid lattice)
            "stride": 3.0,          # pixels between pooling centres
            "sigma": 2.0,           # Gaussian pooling width (pixels)
            "deskew": True,         # deskew train and test images by their own moments first
            "rotations": [-10, 10], # degrees: each training image also enters rotated by these angles
        },
        "schema": _schema({
            "orientations": {**_INT, "minimum": 2},
            "blur": {**_NUMBER, "exclusiveMinimum": 0, "maximum": 5},
            "grid": {**_INT, "minimum": 1},
            "stride": {**_NUMBER, "exclusiveMinimum": 0},
            "sigma": {**_NUMBER, "exclusiveMinimum": 0},
            "deskew": {"type": "boolean"},
            "rotations": {"type": "array", "items": _NUMBER},
        }),
    },
    "hog_nn": {
        "module": "pipeline.learners.hog_nn",
        "gpu": False,  # 1-NN needs no GPU: no GPU is asked of the scheduler (distances still use one when present)
        "decomposable": True,  # scores are per-class minima over training samples: shared distances (nearest.py)
        "defaults": {
            "cells": [4, 7],        # HOG cell sizes in pixels; one HOG per size, concatenated
            "orientations": 9,      # unsigned orientation bins
            "block": 3,             # cells per block side (L2-Hys block normalisation)
            "deskew": True,         # deskew train and test images by their own moments first
            "rotations": [-10, 10], # degrees: each training image also enters rotated by these angles
        },
        "schema": _schema({
            "cells": {"type": "array", "minItems": 1, "uniqueItems": True, "items": {**_INT, "minimum": 2}},
            "orientations": {**_INT, "minimum": 1},
            "block": {**_INT, "minimum": 1},
            "deskew": {"type": "boolean"},
            "rotations": {"type": "array", "items": _NUMBER},
        }),
    },
    "small_cnn": {
        "module": "pipeline.learners.small_cnn",
        "gpu": True,  # train on a GPU when there is one (the scheduler is asked for one)
        "defaults": {
            "epochs": 100,          # passes over the subset
            "batch_size": 16,       # small batches: a k = 1200 subset has only ~50 images
            "lr": 0.05,             # SGD learning rate, cosine-annealed to 0
            "momentum": 0.9,        # Nesterov momentum
            "weight_decay": 0.0005,
            "width": 32,            # channels of the first conv layer (the second has twice as many)
            "crop_padding": 2,      # random-crop augmentation: pad by this many pixels, crop back (0 = off)
        },
        "schema": _schema({**_TORCH, "width": {**_INT, "minimum": 1}}),
    },
    "nin": {
        "module": "pipeline.learners.nin",
        "gpu": True,  # train on a GPU when there is one (the scheduler is asked for one)
        "defaults": {
            "epochs": 200,
            "batch_size": 128,
            "lr": 0.1,
            "momentum": 0.9,               # Nesterov
            "weight_decay": 0.0005,
            "milestones": [60, 120, 160],  # epochs after which the learning rate is multiplied by gamma
            "gamma": 0.2,
            "crop_padding": 4,             # random crop back to the image size after zero padding (0 = off)
            "flip": False,                 # random horizontal flips (CIFAR-10)
            "resize": None,                # resize images to resize x resize first (GTSRB: 48)
            "width": 192,                  # channels of the widest layers (the papers': 192); the others in proportion
        },
        "schema": _schema({
            **_TORCH,
            # non-decreasing (learners.check_params)
            "milestones": {"type": "array", "items": {**_INT, "minimum": 0}},
            "gamma": {**_NUMBER, "exclusiveMinimum": 0},
            "flip": {"type": "boolean"},
            "resize": {"type": ["integer", "null"], "minimum": 1},  # null: keep the size
            "width": {**_INT, "minimum": 1},
        }),
    },
}
