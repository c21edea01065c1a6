"""Finite Aggregation certificate (docs/design.md#fa-certificate).

K = k*d buckets, bucket b feeds d models. For a correct plurality prediction y, and every other
class c: gap_c = N_y - N_c - [c < y]; bucket b can reduce it by at most
delta_b(c) = sum over its models of (1 + [f_i = y] - [f_i = c]) (values 0..2d);
r_c = the largest r whose r largest delta_b(c) sum to at most gap_c; radius = min_c r_c.
"""

import numpy as np

from .buckets import bucket_vote_counts, circulant_offsets, map_chunks
from .greedy import histogram, most_buckets_within
from .votes import plurality, vote_counts

CHUNK_ELEMENTS = 2_000_000  # (sample, class, bucket) cells per chunk


def stable_radius(votes: np.ndarray, feed: np.ndarray, n_classes: int):
    """Plurality prediction and the number of poisoned buckets it provably survives.

    votes: int[n, n_models] (column i = model i); feed: int[n_buckets, d] -> (prediction, radius) int64[n].
    """
    n, _ = votes.shape
    n_buckets, d = feed.shape
    counts = vote_counts(votes, n_classes)
    prediction = plurality(counts)
    offsets = circulant_offsets(feed)
    c = np.arange(n_classes)

    def chunk(sl):
        a = prediction[sl]
        rows = np.arange(len(a))
        per_bucket = bucket_vote_counts(votes[sl], feed, n_classes, offsets)  # uint8[b, C, K]
        reduction = (d + per_bucket[rows, a][:, None, :].astype(np.int16)) - per_bucket  # [b, C, K] in 0..2d
        hist = histogram(reduction.reshape(-1, n_buckets), 2 * d + 1)
        gap = counts[sl][rows, a][:, None] - counts[sl] - (c[None, :] < a[:, None])
        r = most_buckets_within(hist, np.maximum(gap, 0).reshape(-1)).reshape(len(a), n_classes)
        r[rows, a] = np.iinfo(np.int64).max
        return np.minimum(r.min(axis=1), n_buckets)

    step = max(1, CHUNK_ELEMENTS // (n_buckets * n_classes))
    return prediction, np.concatenate(map_chunks(chunk, n, step)) if n else np.zeros(0, np.int64)


def certify(votes: np.ndarray, labels: np.ndarray, n_classes: int, feed: np.ndarray):
    """FA radii: (prediction, radius int64[n]), radius -1 where the prediction is wrong."""
    prediction, radius = stable_radius(votes, feed, n_classes)
    return prediction, np.where(prediction == labels, radius, -1)
