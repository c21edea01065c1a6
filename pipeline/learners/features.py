"""Fixed, data-independent feature maps (nothing here is fitted to any training set).

Each image is mapped by itself, so a base model that uses these features still depends
only on its own training subset. Everything is computed in float64 numpy arithmetic, one
correctly rounded operation at a time (moments in exact integers), so that the results do not
depend on the CPU's vector instructions or the number of threads (docs/design.md#determinism).
"""

import numpy as np


def _gray(images: np.ndarray) -> np.ndarray:
    """float64[N, H, W] in [0, 1]; colour images use the per-pixel channel maximum."""
    x = images.astype(np.float64) / 255.0
    return x.max(axis=-1) if x.ndim == 4 else x


def _orientation_histograms(x: np.ndarray, cell: int, orientations: int) -> np.ndarray:
    """Gradient-magnitude-weighted unsigned orientation histograms per cell: float64[N, cy, cx, orientations]."""
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
    frac = position - low
    low = low.astype(np.int64) % orientations
    high = (low + 1) % orientations
    cy, cx = h // cell, w // cell
    crop = (slice(None), slice(0, cy * cell), slice(0, cx * cell))
    magnitude, frac, low, high = magnitude[crop], frac[crop], low[crop], high[crop]
    hist = np.empty((n, cy, cx, orientations), dtype=np.float64)
    for o in range(orientations):
        vote = np.where(low == o, magnitude * (1 - frac), 0) + np.where(high == o, magnitude * frac, 0)
        hist[..., o] = vote.reshape(n, cy, cell, cx, cell).sum(axis=(2, 4))
    return hist


def hog(images: np.ndarray, cell: int = 7, orientations: int = 9, block: int = 2) -> np.ndarray:
    """Histogram of oriented gradients: float64[N, D].

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
    return blocks.reshape(n, -1)


def multi_hog(images: np.ndarray, cells=(4, 7), orientations: int = 9, block: int = 2) -> np.ndarray:
    """HOG at several cell sizes, concatenated and scaled so each scale weighs equally: float64[N, D].

    Every block is L2-normalised, so each scale's part has a squared norm of at most
    1 / (block**2 * orientations) (see hog_nn's quantisation)."""
    parts = [hog(images, c, orientations, block) for c in cells]
    parts = [p / np.sqrt(p.shape[1]) if p.shape[1] else p for p in parts]
    return np.concatenate(parts, axis=1)


def _resample(images: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear resampling of uint8 images [N, H, W(, C)] at pixel coordinates ys, xs (float64[N, H, W]),
    zeros outside, rounded half to even: uint8, same shape."""
    n, h, w = images.shape[:3]
    x = images.astype(np.float64).reshape(n, h, w, -1)
    padded = np.zeros((n, h + 2, w + 2, x.shape[3]))
    padded[:, 1:-1, 1:-1] = x
    y0, x0 = np.floor(ys), np.floor(xs)
    fy, fx = (ys - y0)[..., None], (xs - x0)[..., None]
    # corners, shifted by the one-pixel zero border and clipped to it (beyond it everything is zero)
    iy0, ix0 = np.clip(y0.astype(np.int64) + 1, 0, h + 1), np.clip(x0.astype(np.int64) + 1, 0, w + 1)
    iy1, ix1 = np.clip(y0.astype(np.int64) + 2, 0, h + 1), np.clip(x0.astype(np.int64) + 2, 0, w + 1)
    idx = np.arange(n)[:, None, None]
    out = ((padded[idx, iy0, ix0] * (1 - fx) + padded[idx, iy0, ix1] * fx) * (1 - fy)
           + (padded[idx, iy1, ix0] * (1 - fx) + padded[idx, iy1, ix1] * fx) * fy)
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.reshape(images.shape)


def deskew(images: np.ndarray) -> np.ndarray:
    """Moment-based deskewing, each image by its own intensity moments: uint8 images, same shape.

    The image is shifted so that its centroid is at the centre and sheared horizontally by
    alpha = cov(x, y) / var(y), which makes the principal axis vertical (colour images use the
    channel sum for the moments and move all channels alike). The moments are exact integer sums.
    Data-independent: nothing is fitted.
    """
    if len(images) == 0:
        return images.copy()
    mass = images.astype(np.int64) if images.ndim == 3 else images.astype(np.int64).sum(axis=3)
    n, h, w = mass.shape
    ys, xs = np.arange(h, dtype=np.int64)[:, None], np.arange(w, dtype=np.int64)[None, :]
    total = mass.sum((1, 2))
    my, mx = (mass * ys).sum((1, 2)), (mass * xs).sum((1, 2))
    myy, mxy = (mass * ys * ys).sum((1, 2)), (mass * xs * ys).sum((1, 2))
    safe = np.maximum(total, 1).astype(np.float64)
    cy, cx = my / safe, mx / safe
    var_y = (myy * total - my * my).astype(np.float64) / (safe * safe)  # exact integers until the division
    cov_xy = (mxy * total - mx * my).astype(np.float64) / (safe * safe)
    alpha = np.where((total > 0) & (var_y > 1e-6), cov_xy / np.maximum(var_y, 1e-6), 0.0)
    cy, cx = np.where(total > 0, cy, (h - 1) / 2), np.where(total > 0, cx, (w - 1) / 2)
    oy, ox = (h - 1) / 2, (w - 1) / 2
    gy, gx = np.arange(h, dtype=np.float64)[None, :, None], np.arange(w, dtype=np.float64)[None, None, :]
    y_in = np.broadcast_to(gy - oy + cy[:, None, None], (n, h, w))
    x_in = gx - ox + cx[:, None, None] + alpha[:, None, None] * (gy - oy)
    return _resample(images, y_in, x_in)


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate every image by ``degrees`` counter-clockwise (as displayed, row 0 on top) about its centre
    (bilinear, zero fill): uint8, same shape."""
    if len(images) == 0:
        return images.copy()
    n, h, w = images.shape[:3]
    theta = np.deg2rad(degrees)
    cos, sin = float(np.cos(theta)), float(np.sin(theta))
    # normalised coordinates in [-1, 1] (as the earlier grid), mapped back to pixel coordinates
    v = np.linspace(-1, 1, h)[:, None]
    u = np.linspace(-1, 1, w)[None, :]
    x_src = (cos * u - sin * v + 1) / 2 * (w - 1)
    y_src = (sin * u + cos * v + 1) / 2 * (h - 1)
    return _resample(images, np.broadcast_to(y_src, (n, h, w)), np.broadcast_to(x_src, (n, h, w)))


def gaussian_weights(offsets, sigma: float, bits: int) -> np.ndarray:
    """rint(2**bits * exp(-(offset / sigma)**2 / 2)): integer weights of a Gaussian (float64, exact integers)."""
    return np.rint(2.0 ** bits * np.exp(-0.5 * (np.asarray(offsets, dtype=np.float64) / sigma) ** 2))


def banded(n: int, weights: np.ndarray) -> np.ndarray:
    """n x n matrix applying the centred filter ``weights`` (odd length) along an axis, zero outside."""
    r = len(weights) // 2
    out = np.zeros((n, n))
    for t, w in enumerate(weights):
        out += w * np.eye(n, k=t - r)
    return out


POOL_BITS = 14  # resolution of each level of the pooling weights: 2**-14, then 2**-28


def pooling_levels(n: int, centres: np.ndarray, sigma: float) -> list[np.ndarray]:
    """Gaussian pooling weights exp(-((i - c) / sigma)**2 / 2) of pixels i = 0..n-1 around ``centres`` in two
    exact integer levels: level 0 is rint(2**14 w) and level 1 rint(2**28 w) where level 0 is zero, so that
    w ~ 2**-14 L0 + 2**-28 L1 keeps the Gaussian's tails down to ~1e-9 (they carry the orientation evidence of
    cells far from the strokes). float64[len(centres), n] each, integers below 2**14."""
    offsets = np.arange(n, dtype=np.float64)[None, :] - np.asarray(centres, dtype=np.float64)[:, None]
    first = gaussian_weights(offsets, sigma, POOL_BITS)
    return [first, gaussian_weights(offsets, sigma, 2 * POOL_BITS) * (first == 0)]


def orientation_pooling(images: np.ndarray, orientations: int = 12, blur: float = 0.7, grid: int = 9,
                        stride: float = 3.0, sigma: float = 2.0, eps: float = 0.01) -> np.ndarray:
    """Pooled gradient-orientation maps: float64[N, orientations * grid * grid], non-negative, ||f||^2 < 1.

    1. Blur (Gaussian ``blur`` px, integer weights rint(256 exp(-t^2 / 2 blur^2)), zero outside); 2. central
    differences; 3. each pixel's gradient magnitude split linearly between the two nearest of
    ``orientations`` signed direction bins (0 .. 2 pi); 4. each direction map pooled with Gaussian weights
    (``sigma`` px, not normalised) around a ``grid`` x ``grid`` lattice of centres ``stride`` px apart,
    centred on the image; 5. pooled values to the power 1/8 (three square roots); 6. each cell's vector of
    directions divided by sqrt(its squared norm + ``eps``), all divided by ``grid``.
    Every matrix product sums exact integers (below 2**53), every other step is one correctly rounded
    operation at a time, so the features do not depend on the BLAS library or the CPU (docs/design.md#determinism).
    """
    x = images if images.ndim == 3 else images.max(axis=-1)  # colour: per-pixel channel maximum
    n, h, w = x.shape
    radius = max(1, int(np.ceil(3 * blur)))
    kernel = gaussian_weights(np.arange(-radius, radius + 1), blur, 8)
    total = float(kernel.sum())
    b = banded(h, kernel) @ x.astype(np.float64) @ banded(w, kernel).T  # exact: at most 255 * total**2
    gx, gy = np.zeros_like(b), np.zeros_like(b)
    gx[:, :, 1:-1] = b[:, :, 2:] - b[:, :, :-2]
    gy[:, 1:-1, :] = b[:, 2:, :] - b[:, :-2, :]
    magnitude = np.sqrt(gx * gx + gy * gy)
    position = np.mod(np.arctan2(gy, gx), 2 * np.pi) / (2 * np.pi) * orientations - 0.5
    low = np.floor(position)
    frac = position - low
    low = low.astype(np.int64) % orientations
    high = (low + 1) % orientations
    to_low, to_high = magnitude * (1 - frac), magnitude * frac
    # magnitudes as integers small enough that both pooling products stay below 2**53: h * w * 2**28 * m
    shift = max(0, int(np.ceil(np.log2(np.sqrt(2) * 255 * total ** 2 * h * w) + 2 * POOL_BITS - 53)))
    maps = np.empty((n, orientations, h, w))
    for o in range(orientations):
        maps[:, o] = np.rint((np.where(low == o, to_low, 0) + np.where(high == o, to_high, 0)) * 2.0 ** -shift)
    centres = lambda size: (size - 1) / 2 + stride * (np.arange(grid) - (grid - 1) / 2)  # noqa: E731
    rows, cols = pooling_levels(h, centres(h), sigma), pooling_levels(w, centres(w), sigma)
    pooled = np.zeros((n, orientations, grid, grid))
    for j, col in enumerate(cols):
        half = maps @ col.T  # [n, orientations, h, grid], exact
        for i, row in enumerate(rows):
            pooled = pooled + (row @ half) * 2.0 ** -(POOL_BITS * (i + j + 2))  # exact product, fixed order
    pooled = pooled * (2.0 ** shift / (255 * total ** 2))  # in units of the [0, 1] image's gradient
    power = np.sqrt(np.sqrt(np.sqrt(pooled)))
    sq = power[:, 0] * power[:, 0]
    for o in range(1, orientations):
        sq = sq + power[:, o] * power[:, o]
    cells = power / np.sqrt(sq + eps)[:, None]
    return cells.reshape(n, -1) / grid
