"""``small_cnn``: a small convolutional network trained with SGD (CPU or GPU).

Trains on: its own subset only. The normalisation statistics (per-channel mean and unbiased
std of the [0, 1] pixels) are computed from the subset itself and stored with the model;
initialisation, shuffling and augmentation draw from the model's own seed. So the model is a
deterministic function of (subset, seed).
"""

import numpy as np
import torch
from torch import nn

from ..progress import bar
from . import torch_common as tc
from .specs import SPECS

DEFAULTS = SPECS["small_cnn"]["defaults"]  # parameters and defaults: pipeline/learners/specs.py

def build(in_channels: int, n_classes: int, params: dict) -> nn.Module:
    width = params["width"]

    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(in_channels, width), nn.MaxPool2d(2),
        *block(width, 2 * width), nn.MaxPool2d(2),
        *block(2 * width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2 * width, n_classes),
    )


def fit(images, labels, n_classes, seed, params, device):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mean, std = tc.normalization_stats(images)
    x = tc.as_nchw(images).to(device)
    y = torch.from_numpy(np.asarray(labels, np.int64)).to(device)
    model = build(x.shape[1], n_classes, params).to(device)
    plan = tc.draw_plan(len(x), params["epochs"], params["batch_size"], params["crop_padding"], False, generator)
    cosine = lambda opt, steps: torch.optim.lr_scheduler.CosineAnnealingLR(  # noqa: E731
        opt, T_max=max(1, params["epochs"] * steps))
    pad = params["crop_padding"]
    tc.train(model, x, y, plan, params, cosine, device,
             lambda xb, off, fl: tc.normalize(tc.crop_and_flip(xb, pad, off, fl), mean, std))
    return {"weights": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "mean": mean, "std": std,
            "in_channels": int(x.shape[1])}


def predict(states, images, n_classes, params, device):
    return tc.predict(build, states, images, n_classes, params, device,
                      progress=lambda s: bar(s, desc="predict"))
