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

DEFAULTS = {
    "epochs": 30,           # passes over the subset
    "batch_size": 64,
    "lr": 0.05,             # SGD learning rate, cosine-annealed to 0
    "momentum": 0.9,        # Nesterov momentum
    "weight_decay": 0.0005,
    "width": 32,            # channels of the first conv layer (the second has twice as many)
    "crop_padding": 2,      # random-crop augmentation: pad by this many pixels, crop back (0 = off)
}


def _as_nchw(images: np.ndarray) -> torch.Tensor:
    x = torch.from_numpy(np.ascontiguousarray(images)).float().div_(255.0)
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def normalization_stats(images: np.ndarray):
    """Per-channel mean and unbiased std of the [0, 1] pixels: (float32[C], float32[C])."""
    x = _as_nchw(images)
    x = x.transpose(0, 1).reshape(x.shape[1], -1).double()
    std = x.std(dim=1, unbiased=True) if x.shape[1] > 1 else torch.ones(x.shape[0], dtype=torch.float64)
    return x.mean(dim=1).float(), std.clamp_min(1e-6).float()


def build(in_channels: int, n_classes: int, width: int) -> nn.Module:
    def block(cin, cout):
        return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]

    return nn.Sequential(
        *block(in_channels, width), nn.MaxPool2d(2),
        *block(width, 2 * width), nn.MaxPool2d(2),
        *block(2 * width, 2 * width), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
        nn.Linear(2 * width, n_classes),
    )


def random_crop(x: torch.Tensor, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Pad a batch by ``padding`` (zeros) and crop each image back at its own random offset."""
    if padding == 0:
        return x
    n, c, h, w = x.shape
    padded = nn.functional.pad(x, (padding,) * 4)
    dy = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    dx = torch.randint(0, 2 * padding + 1, (n,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])  # [n, h]
    cols = (dx[:, None] + torch.arange(w)[None, :])  # [n, w]
    idx = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[idx, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)


def fit(images, labels, n_classes, seed, params, device):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    mean, std = normalization_stats(images)
    x = ((_as_nchw(images) - mean[None, :, None, None]) / std[None, :, None, None])
    y = torch.from_numpy(np.asarray(labels, np.int64))
    model = build(x.shape[1], n_classes, params["width"]).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=params["lr"], momentum=params["momentum"],
                          nesterov=params["momentum"] > 0, weight_decay=params["weight_decay"])
    steps_per_epoch = -(-len(x) // params["batch_size"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(1, params["epochs"] * steps_per_epoch))
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(params["epochs"]):
        order = torch.randperm(len(x), generator=generator)
        for start in range(0, len(x), params["batch_size"]):
            batch = order[start:start + params["batch_size"]]
            if len(batch) < 2:  # BatchNorm needs two samples
                continue
            xb = random_crop(x[batch], params["crop_padding"], generator).to(device)
            opt.zero_grad(set_to_none=True)
            loss_fn(model(xb), y[batch].to(device)).backward()
            opt.step()
            sched.step()
    return {"weights": {k: v.detach().cpu() for k, v in model.state_dict().items()}, "mean": mean, "std": std,
            "in_channels": int(x.shape[1])}


@torch.no_grad()
def predict(states, images, n_classes, params, device):
    raw = _as_nchw(images)
    out = np.empty((len(states), len(raw), n_classes), dtype=np.float32)
    for m, state in enumerate(bar(states, desc="predict")):
        model = build(state["in_channels"], n_classes, params["width"])
        model.load_state_dict(state["weights"])
        model.to(device).eval()
        x = (raw - state["mean"][None, :, None, None]) / state["std"][None, :, None, None]
        for start in range(0, len(x), 1024):
            out[m, start:start + 1024] = model(x[start:start + 1024].to(device)).float().cpu().numpy()
    return out
