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
