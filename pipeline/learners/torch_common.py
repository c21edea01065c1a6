"""Shared pieces of the torch learners: tensors, per-model normalisation, batched augmentation,
and one training loop whose randomness is drawn up front from the model's own seed."""

import numpy as np
import torch
from torch import nn


def as_nchw(images: np.ndarray) -> torch.Tensor:
    """uint8 [N, H, W] or [N, H, W, C] -> float32 [N, C, H, W] in [0, 1]."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def normalization_stats(images: np.ndarray):
    """Per-channel mean and unbiased std of the [0, 1] pixels of the model's own images: (float32[C], float32[C])."""
    x = as_nchw(images)
    x = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    std = x.std(dim=1, unbiased=True) if x.shape[1] > 1 else torch.ones(x.shape[0], dtype=torch.float64)
    return x.mean(dim=1).float(), std.clamp_min(1e-6).float()


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """(x - mean) / std per channel, for a batch [N, C, H, W] on any device."""
    return (x - mean.to(x.device)[None, :, None, None]) / std.to(x.device)[None, :, None, None]


def resize(x: torch.Tensor, size) -> torch.Tensor:
    """Bilinear resize of a batch [N, C, H, W] to size x size (no-op when size is None)."""
    if size is None or tuple(x.shape[2:]) == (size, size):
        return x
    return nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def draw_plan(n: int, epochs: int, batch_size: int, padding: int, flip: bool, generator: torch.Generator):
    """The training run's randomness, drawn in a fixed order from the model's generator:
    per epoch a permutation of the n samples, per sample a crop offset (dy, dx) and a flip flag."""
    plan = []
    for _ in range(epochs):
        order = torch.randperm(n, generator=generator)
        offsets = torch.randint(0, 2 * padding + 1, (n, 2), generator=generator)
        flips = torch.rand(n, generator=generator) < 0.5 if flip else torch.zeros(n, dtype=torch.bool)
        plan.append((order, offsets, flips))
    return plan


def crop_and_flip(x: torch.Tensor, padding: int, offsets: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Pad a batch by ``padding`` (zeros: black, as the padding is applied before normalisation, like
    torchvision's RandomCrop on images), crop each image back at its offset, mirror the flagged ones."""
    if padding:
        n, c, h, w = x.shape
        padded = nn.functional.pad(x, (padding,) * 4)
        rows = offsets[:, 0, None] + torch.arange(h)[None, :]
        cols = offsets[:, 1, None] + torch.arange(w)[None, :]
        idx = torch.arange(n)[:, None, None]
        x = padded.permute(0, 2, 3, 1)[idx, rows[:, :, None].to(x.device), cols[:, None, :].to(x.device)]
        x = x.permute(0, 3, 1, 2)
    if flips.any():
        x = torch.where(flips.to(x.device)[:, None, None, None], x.flip(3), x)
    return x


def train(model, x, y, plan, params, scheduler_fn, device, augment):
    """Train ``model`` on tensors x [n, C, H, W] (pixels in [0, 1]), y [n] held on ``device``, following ``plan``.

    ``augment(batch, offsets, flips)`` applies the batch's augmentation and normalisation; ``scheduler_fn(optimizer,
    steps_per_epoch)`` builds the learning-rate schedule (stepped once per batch).
    """
    opt = torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"],
                          nesterov=params["momentum"] > 0, weight_decay=params["weight_decay"])
    steps_per_epoch = -(-len(x) // params["batch_size"])
    sched = scheduler_fn(opt, steps_per_epoch)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for order, offsets, flips in plan:
        for start in range(0, len(x), params["batch_size"]):
            batch = order[start:start + params["batch_size"]]
            if len(batch) >= 2:  # BatchNorm needs two samples
                xb = augment(x[batch.to(device)], offsets[batch], flips[batch])
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xb), y[batch.to(device)]).backward()
                opt.step()
            sched.step()
    return model


@torch.no_grad()
def predict(build, states, images, n_classes, params, device, prepare=lambda x: x, progress=lambda s: s):
    """Logits float32[n_models, n_test, C] of several trained models."""
    raw = prepare(as_nchw(images))  # normalised per model below
    out = np.empty((len(states), len(raw), n_classes), dtype=np.float32)
    for m, state in enumerate(progress(states)):
        model = build(state["in_channels"], n_classes, params)
        model.load_state_dict(state["weights"])
        model.to(device).eval()
        for start in range(0, len(raw), 1024):
            x = normalize(raw[start:start + 1024].to(device), state["mean"], state["std"])
            out[m, start:start + 1024] = model(x).float().cpu().numpy()
    return out
