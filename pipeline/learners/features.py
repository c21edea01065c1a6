"""Fixed, data-independent feature maps (nothing here is fitted to any training set).

Each image is mapped by itself, so a base model that uses these features still depends
only on its own training subset.
"""

import numpy as np


def _gray(images: np.ndarray) -> np.ndarray:
    """float32[N, H, W] in [0, 1]; colour images use the per-pixel channel maximum."""
    x = images.astype(np.float32) / 255.0
    return x.max(axis=-1) if x.ndim == 4 else x


def _orientation_histograms(x: np.ndarray, cell: int, orientations: int) -> np.ndarray:
    """Gradient-magnitude-weighted unsigned orientation histograms per cell: float32[N, cy, cx, orientations]."""
    n, h, w = x.shape
    gx = np.zeros_like(x)
    gy = np.zeros_like(x)
    gx[:, :, 1:-1] = x[:, :, 2:] - x[:, :, :-2]
    gy[:, 1:-1, :] = x[:, 2:, :] - x[:, :-2, :]
    magnitude = np.sqrt(gx * gx + gy * gy)
    angle = np.mod(np.arctan2(gy, gx), np.pi)  # unsigned, [0, pi)
    # Linear interpolation between the two nearest bin centres.
    position = angle / np.pi * orientations - 0.5
    low = np.floor(position)
    frac = (position - low).astype(np.float32)
    low = low.astype(np.int64) % orientations
    high = (low + 1) % orientations
    cy, cx = h // cell, w // cell
    crop = (slice(None), slice(0, cy * cell), slice(0, cx * cell))
    magnitude, frac, low, high = magnitude[crop], frac[crop], low[crop], high[crop]
    hist = np.empty((n, cy, cx, orientations), dtype=np.float32)
    for o in range(orientations):
        vote = np.where(low == o, magnitude * (1 - frac), 0) + np.where(high == o, magnitude * frac, 0)
        hist[..., o] = vote.reshape(n, cy, cell, cx, cell).sum(axis=(2, 4))
    return hist


def hog(images: np.ndarray, cell: int = 7, orientations: int = 9, block: int = 2) -> np.ndarray:
    """Histogram of oriented gradients: float32[N, D].

    images: uint8[N, H, W] or uint8[N, H, W, C]. Cells of ``cell`` x ``cell`` pixels,
    ``orientations`` unsigned bins, blocks of ``block`` x ``block`` cells (stride one cell),
    each block L2-Hys normalised (L2, clip at 0.2, L2 again).
    """
    hist = _orientation_histograms(_gray(images), cell, orientations)
    n, cy, cx, _ = hist.shape
    by, bx = cy - block + 1, cx - block + 1
    blocks = np.stack([hist[:, i:i + by, j:j + bx] for i in range(block) for j in range(block)], axis=3)
    blocks = blocks.reshape(n, by, bx, -1)
    blocks = blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + 1e-6)
    blocks = np.minimum(blocks, 0.2)
    blocks = blocks / np.sqrt((blocks ** 2).sum(-1, keepdims=True) + 1e-6)
    return blocks.reshape(n, -1).astype(np.float32)


def multi_hog(images: np.ndarray, cells=(4, 7), orientations: int = 9, block: int = 2) -> np.ndarray:
    """HOG at several cell sizes, concatenated and scaled so each scale weighs equally: float32[N, D]."""
    parts = [hog(images, c, orientations, block) for c in cells]
    parts = [p / np.sqrt(p.shape[1]) for p in parts]
    return np.concatenate(parts, axis=1).astype(np.float32)


def _resample(images: np.ndarray, grid) -> np.ndarray:
    """Bilinear resampling of uint8 images [N, H, W(, C)] at grid (torch [N, H, W, 2], in [-1, 1])."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(images)).float()
    x = x[:, None] if x.ndim == 3 else x.permute(0, 3, 1, 2)
    out = torch.nn.functional.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
    out = out.round_().clamp_(0, 255).to(torch.uint8)
    return (out[:, 0] if images.ndim == 3 else out.permute(0, 2, 3, 1)).numpy()


def deskew(images: np.ndarray) -> np.ndarray:
    """Moment-based deskewing, each image by its own intensity moments: uint8 images, same shape.

    The image is shifted so that its centroid is at the centre and sheared horizontally by
    alpha = cov(x, y) / var(y), which makes the principal axis vertical (colour images use the
    channel mean for the moments and move all channels alike). Data-independent: nothing is fitted.
    """
    import torch

    if len(images) == 0:
        return images.copy()
    x = torch.from_numpy(np.ascontiguousarray(images)).float()
    mass = x if x.ndim == 3 else x.mean(dim=3)
    n, h, w = mass.shape
    ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32), indexing="ij")
    total = mass.sum((1, 2)).clamp_min(1e-6)
    cy = (mass * ys).sum((1, 2)) / total
    cx = (mass * xs).sum((1, 2)) / total
    dy = ys[None] - cy[:, None, None]
    var_y = (mass * dy ** 2).sum((1, 2)) / total
    cov_xy = (mass * dy * (xs[None] - cx[:, None, None])).sum((1, 2)) / total
    alpha = torch.where(var_y > 1e-6, cov_xy / var_y.clamp_min(1e-6), torch.zeros_like(var_y))
    oy, ox = (h - 1) / 2, (w - 1) / 2
    y_in = ys[None] - oy + cy[:, None, None]
    x_in = xs[None] - ox + cx[:, None, None] + alpha[:, None, None] * (ys[None] - oy)
    grid = torch.stack([x_in / (w - 1) * 2 - 1, y_in / (h - 1) * 2 - 1], dim=-1)
    return _resample(images, grid)


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate every image by ``degrees`` counter-clockwise (as displayed, row 0 on top) about its centre
    (bilinear, zero fill): uint8, same shape."""
    import torch

    if len(images) == 0:
        return images.copy()
    h, w = images.shape[1:3]
    theta = np.deg2rad(degrees)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    cos, sin = float(np.cos(theta)), float(np.sin(theta))
    grid = torch.stack([cos * xs - sin * ys, sin * xs + cos * ys], dim=-1)
    return _resample(images, grid.expand(len(images), h, w, 2))
