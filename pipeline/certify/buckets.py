"""Per-bucket sums over the models a bucket feeds (FA: bucket b feeds d models)."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from ..errors import PipelineError


def bucket_feeds(model_buckets: np.ndarray) -> np.ndarray:
    """Invert model -> buckets into bucket -> models: int64[n_buckets, d], each row sorted.

    model_buckets: int[n_models, d], row i = the buckets model i trains on (indexed by model id).
    Every bucket must feed exactly d models, as FA's construction guarantees.
    """
    n_models, d = model_buckets.shape
    n_buckets = int(model_buckets.max()) + 1 if model_buckets.size else 0
    flat_buckets = model_buckets.ravel()
    fed = np.bincount(flat_buckets, minlength=n_buckets)
    if not (fed == d).all():
        raise PipelineError(f"bucket layout: every bucket must feed {d} models, but bucket "
                            f"{int(np.flatnonzero(fed != d)[0])} feeds {int(fed[fed != d][0])}; re-run partition")
    order = np.argsort(flat_buckets, kind="stable")
    return (order // d).reshape(n_buckets, d)


def circulant_offsets(feed: np.ndarray):
    """Offsets s_j when bucket b feeds models (b + s_j) mod K for every b (FA's layout), else None."""
    n_buckets = feed.shape[0]
    offsets = feed[0]
    expected = (np.arange(n_buckets)[:, None] + offsets[None, :]) % n_buckets
    return offsets if np.array_equal(np.sort(expected, 1), feed) else None


def _sum_over_feed(packed: np.ndarray, feed: np.ndarray, offsets) -> np.ndarray:
    """sum_j packed[:, feed[b, j]] for every bucket b: int64[n, n_models] -> int64[n, n_buckets]."""
    if offsets is None:
        return packed[:, feed].sum(axis=2)
    total = np.zeros((packed.shape[0], feed.shape[0]), dtype=np.int64)
    n = feed.shape[0]
    for s in offsets.tolist():  # bucket b gets model (b + s) mod K: a rotation, two contiguous slices
        total[:, :n - s] += packed[:, s:]
        total[:, n - s:] += packed[:, :s]
    return total


def _layout(d: int, n_classes: int):
    bits = max(1, int(d).bit_length())
    per_word = max(1, 63 // bits)
    return bits, per_word, (1 << bits) - 1


def bucket_vote_counts(votes: np.ndarray, feed: np.ndarray, n_classes: int, offsets=None) -> np.ndarray:
    """Per bucket, how many of its models vote for each class: votes int[n, m] -> uint8[n, C, n_buckets].

    The counts of several classes are packed into one int64 per model (a few bits per class), so
    each bucket's d-fold sum runs once per group of classes.
    """
    bits, per_word, mask = _layout(feed.shape[1], n_classes)
    out = np.empty((votes.shape[0], n_classes, feed.shape[0]), dtype=np.uint8)
    v = votes.astype(np.int64)
    for start in range(0, n_classes, per_word):
        stop = min(start + per_word, n_classes)
        in_group = (v >= start) & (v < stop)
        packed = np.where(in_group, np.left_shift(1, (v - start) * bits, dtype=np.int64), 0)
        summed = _sum_over_feed(packed, feed, offsets)
        for c in range(start, stop):
            out[:, c] = (summed >> ((c - start) * bits)) & mask
    return out


def bucket_flag_counts(flags: np.ndarray, feed: np.ndarray, offsets=None) -> np.ndarray:
    """Per bucket and class, how many of its models have the flag: bool[n, m, C] -> uint8[n, C, n_buckets]."""
    n_classes = flags.shape[2]
    bits, per_word, mask = _layout(feed.shape[1], n_classes)
    out = np.empty((flags.shape[0], n_classes, feed.shape[0]), dtype=np.uint8)
    for start in range(0, n_classes, per_word):
        stop = min(start + per_word, n_classes)
        packed = np.zeros(flags.shape[:2], dtype=np.int64)
        for c in range(start, stop):
            packed |= flags[:, :, c].astype(np.int64) << ((c - start) * bits)
        summed = _sum_over_feed(packed, feed, offsets)
        for c in range(start, stop):
            out[:, c] = (summed >> ((c - start) * bits)) & mask
    return out


def map_chunks(fn, n: int, step: int):
    """Run fn(slice) over consecutive slices of range(n) on up to os.cpu_count() threads, in order.

    numpy releases the GIL in its array loops, so chunks of test samples run in parallel.
    """
    slices = [slice(lo, min(lo + step, n)) for lo in range(0, n, step)]
    workers = min(len(slices), os.cpu_count() or 1)
    if workers <= 1:
        return [fn(sl) for sl in slices]
    with ThreadPoolExecutor(workers) as pool:
        return list(pool.map(fn, slices))
