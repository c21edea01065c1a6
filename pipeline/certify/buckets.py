"""Per-bucket sums over the models a bucket feeds (FA: bucket b feeds d models)."""

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


def bucket_sums(flags: np.ndarray, feed: np.ndarray) -> np.ndarray:
    """Per bucket and class, how many of the bucket's models have the flag set.

    flags: bool[n, n_models, C]; feed: int[n_buckets, d] -> uint8[n, n_buckets, C].
    Counts of several classes are packed into one int64 per model so that the d-fold
    gather and sum over each bucket's models runs once per group of classes.
    """
    n, _, n_classes = flags.shape
    d = feed.shape[1]
    bits = max(1, int(d).bit_length())
    per_word = max(1, 63 // bits)
    mask = (1 << bits) - 1
    out = np.empty((n, feed.shape[0], n_classes), dtype=np.uint8)
    for start in range(0, n_classes, per_word):
        group = range(start, min(start + per_word, n_classes))
        packed = np.zeros(flags.shape[:2], dtype=np.int64)
        for offset, c in enumerate(group):
            packed |= flags[:, :, c].astype(np.int64) << (offset * bits)
        summed = packed[:, feed].sum(axis=2)
        for offset, c in enumerate(group):
            out[:, :, c] = (summed >> (offset * bits)) & mask
    return out


def one_hot(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """votes int[n, m] -> bool[n, m, C]."""
    return votes[:, :, None] == np.arange(n_classes, dtype=votes.dtype)
