"""Crafting poisoned images: near-copies nudged into a chosen bucket, and a patch trigger.

A sample's bucket is its hash mod n_buckets (pipeline/partition.py). Under ``pixel_sum`` the bucket of a
near-copy follows from how much its pixel sum moves, so a near-copy for any bucket is built directly
(``nudge_sum``); under ``sha256`` near-copies are drawn until one lands in a wanted bucket (``search``).
"""

import numpy as np

from ..partition import assign_buckets


def sum_shifts(image: np.ndarray, n_buckets: int) -> np.ndarray:
    """For every bucket b, the smallest change of the image's pixel sum that moves it to bucket b under
    pixel_sum (None-like 2**62 where no uint8 image of that shape can reach it): int64[n_buckets]."""
    total = int(image.sum(dtype=np.int64))
    top = 255 * image.size
    up = (np.arange(n_buckets, dtype=np.int64) - total) % n_buckets  # 0 .. n_b - 1
    down = up - n_buckets
    up_ok, down_ok = total + up <= top, total + down >= 0
    far = np.int64(2**62)
    return np.where(up_ok & (~down_ok | (up <= -down)), up, np.where(down_ok, down, far))


def nudge_sum(image: np.ndarray, shift: int) -> np.ndarray:
    """A copy of ``image`` (uint8) whose pixel sum is ``shift`` higher (lower when negative), the change spread
    as evenly as possible over the stroke (nonzero pixels) first, then over the background."""
    flat = image.reshape(-1).astype(np.int64)
    sign = 1 if shift >= 0 else -1
    room = 255 - flat if sign > 0 else flat.copy()
    amounts = np.zeros_like(flat)
    left = abs(int(shift))
    for group in (flat > 0, flat == 0):
        idx = np.flatnonzero(group & (room > 0))
        if left == 0 or len(idx) == 0:
            continue
        r = room[idx]
        if r.sum() <= left:  # all of this group's room
            amounts[idx] = r
            left -= int(r.sum())
            continue
        lo, hi = 0, int(r.max())  # the smallest level q with sum(min(r, q)) >= left: water-filling
        while lo < hi:
            mid = (lo + hi) // 2
            if np.minimum(r, mid).sum() >= left:
                hi = mid
            else:
                lo = mid + 1
        give = np.minimum(r, lo)
        excess = int(give.sum()) - left
        at_level = np.flatnonzero(give == lo)
        give[at_level[:excess]] -= 1  # trim the overshoot, one unit from each of the first pixels at the level
        amounts[idx] = give
        left = 0
    if left:
        raise ValueError(f"cannot move the pixel sum by {shift}")
    return (flat + sign * amounts).astype(np.uint8).reshape(image.shape)


def search(image: np.ndarray, wanted: np.ndarray, n_buckets: int, hash_name: str, rng, tries: int, batch=256):
    """Near-copies of ``image`` with 1 to 3 pixels moved by 1 to 3, drawn from ``rng`` until one's bucket is in
    ``wanted`` (bool[n_buckets]): (image uint8, bucket), or None after ``tries`` draws."""
    flat = image.reshape(-1)
    stroke = np.flatnonzero(flat > 0)
    cells = stroke if len(stroke) else np.arange(flat.size)
    for start in range(0, tries, batch):
        n = min(batch, tries - start)
        copies = np.repeat(flat[None].astype(np.int64), n, axis=0)
        for _ in range(3):
            where = rng.choice(cells, size=n)
            step = rng.integers(1, 4, size=n) * rng.choice([-1, 1], size=n)
            copies[np.arange(n), where] += step
        copies = np.clip(copies, 0, 255).astype(np.uint8).reshape(n, *image.shape)
        buckets = assign_buckets(copies, n_buckets, hash_name)
        hits = np.flatnonzero(wanted[buckets] & (copies.reshape(n, -1) != flat).any(axis=1))
        if len(hits):
            return copies[hits[0]], int(buckets[hits[0]])
    return None


def stamp(images: np.ndarray, patch: int) -> np.ndarray:
    """``images`` (uint8[N, H, W] or [N, H, W, C]) with a ``patch`` x ``patch`` checkerboard of 255 and 0 in
    the bottom-right corner (every channel): the backdoor trigger."""
    out = np.array(images, copy=True)
    board = np.where((np.add.outer(np.arange(patch), np.arange(patch)) % 2) == 0, 255, 0).astype(np.uint8)
    if out.ndim == 4:
        board = board[:, :, None]
    out[:, -patch:, -patch:] = board
    return out
