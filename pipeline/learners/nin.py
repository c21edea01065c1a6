"""``nin``: the papers' Network-in-Network base learner (DPA, FA and ROE experiments).

Architecture (width 192, the papers'; ``width`` scales every layer): conv 5x5 -> 192, 1x1 -> 160, 1x1 -> 96, max-pool; 5x5 -> 192, 1x1 -> 192 (x2),
avg-pool; 3x3 -> 192, 1x1 -> 192 (x2); every conv followed by BatchNorm and ReLU; global average
pool; linear. Training as in the papers: SGD, lr 0.1, Nesterov momentum 0.9, weight decay 5e-4,
batch 128, 200 epochs, lr x 0.2 after epochs 60, 120 and 160. Augmentation per dataset (set in the
configs): MNIST random crop 28 with padding 4; CIFAR-10 crop 32 padding 4 and horizontal flips;
GTSRB resized to 48 x 48, crop 48 padding 4.

Trains on: its own subset only. Normalisation statistics (per-channel mean and unbiased std of
the [0, 1] pixels) come from the subset; initialisation, shuffling and augmentation are drawn from
the model's own seed. Data stay tensors on the device, augmented in batches (no DataLoader).
"""

import numpy as np
import torch
from torch import nn

from ..progress import bar
from . import torch_common as tc
from .specs import SPECS

DEFAULTS = SPECS["nin"]["defaults"]  # parameters and defaults: pipeline/learners/specs.py


def build(in_channels: int, n_classes: int, params: dict | None = None) -> nn.Module:
    """The NiN; ``params["width"]`` (default 192, the papers') is the width of its widest layers, the others
    (160, 96 at width 192) scaled in proportion."""
    w = (params or DEFAULTS)["width"]
    w160, w96 = max(1, round(160 * w / 192)), max(1, round(96 * w / 192))

    def conv(cin, cout, k):
        return [nn.Conv2d(cin, cout, k, padding=k // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *conv(in_channels, w, 5), *conv(w, w160, 1), *conv(w160, w96, 1),
        nn.MaxPool2d(3, stride=2, padding=1),
        *conv(w96, w, 5), *conv(w, w, 1), *conv(w, w, 1),
        nn.AvgPool2d(3, stride=2, padding=1),
        *conv(w, w, 3), *conv(w, w, 1), *conv(w, w, 1),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(w, n_classes),
    )


def multistep(params):
    def make(opt, steps_per_epoch):
        milestones = [m * steps_per_epoch for m in params["milestones"]]
        return torch.optim.lr_scheduler.MultiStepLR(opt, milestones=milestones, gamma=params["gamma"])
    return make


def prepared_tensor(images, params) -> torch.Tensor:
    return tc.resize(tc.as_nchw(images), params["resize"])


def fit(images, labels, n_classes, seed, params, device):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mean, std = tc.normalization_stats(images)
    x = prepared_tensor(images, params).to(device)
    y = torch.from_numpy(np.asarray(labels, np.int64)).to(device)
    model = build(x.shape[1], n_classes, params).to(device)
    plan = tc.draw_plan(len(x), params["epochs"], params["batch_size"], params["crop_padding"], params["flip"],
                        generator)
    pad = params["crop_padding"]
    tc.train(model, x, y, plan, params, multistep(params), device,
             lambda xb, off, fl: tc.normalize(tc.crop_and_flip(xb, pad, off, fl), mean, std))
    return {"weights": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "mean": mean, "std": std,
            "in_channels": int(x.shape[1])}


def predict(states, images, n_classes, params, device):
    return tc.predict(build, states, images, n_classes, params, device,
                      prepare=lambda x: tc.resize(x, params["resize"]), progress=lambda s: bar(s, desc="predict"))
