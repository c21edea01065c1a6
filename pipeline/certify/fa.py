"""Finite Aggregation certificate (DESIGN 4.4).

K = k*d buckets, bucket b feeds d models. For a correct plurality prediction y, and every other
class c: gap_c = N_y - N_c - [c < y]; bucket b can reduce it by at most
delta_b(c) = sum over its models of (1 + [f_i = y] - [f_i = c]) (values 0..2d);
r_c = the largest r whose r largest delta_b(c) sum to at most gap_c; radius = min_c r_c.
"""

import numpy as np

from .buckets import bucket_sums, one_hot
from .greedy import histogram, most_buckets_within
from .votes import plurality, vote_counts

CHUNK_ELEMENTS = 4_000_000  # (sample, bucket, class) cells per chunk


def stable_radius(votes: np.ndarray, feed: np.ndarray, n_classes: int):
    """Plurality prediction and the number of poisoned buckets it provably survives.

    votes: int[n, n_models] (column i = model i); feed: int[n_buckets, d] -> (prediction, radius) int64[n].
    """
    n, _ = votes.shape
    n_buckets, d = feed.shape
    counts = vote_counts(votes, n_classes)
    prediction = plurality(counts)
    radius = np.empty(n, dtype=np.int64)
    step = max(1, CHUNK_ELEMENTS // (n_buckets * n_classes))
    for lo in range(0, n, step):
        sl = slice(lo, lo + step)
        a = prediction[sl]
        per_bucket = bucket_sums(one_hot(votes[sl], n_classes), feed).astype(np.int16)  # [b, K, C]
        rows = np.arange(len(a))
        reduction = d + per_bucket[rows, :, a][:, :, None] - per_bucket  # [b, K, C] in 0..2d
        hist = histogram(reduction.transpose(0, 2, 1).reshape(-1, n_buckets), 2 * d + 1)
        c = np.arange(n_classes)
        gap = counts[sl][rows, a][:, None] - counts[sl] - (c[None, :] < a[:, None])
        r = most_buckets_within(hist, np.maximum(gap, 0).reshape(-1)).reshape(len(a), n_classes)
        r[rows, a] = np.iinfo(np.int64).max
        radius[sl] = np.minimum(r.min(axis=1), n_buckets)
    return prediction, radius


def certify(votes: np.ndarray, labels: np.ndarray, n_classes: int, feed: np.ndarray):
    """FA radii: (prediction, radius int64[n]), radius -1 where the prediction is wrong."""
    prediction, radius = stable_radius(votes, feed, n_classes)
    return prediction, np.where(prediction == labels, radius, -1)
