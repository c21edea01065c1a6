"""The greedy bucket count shared by the FA and FA+ROE certificates (docs/design.md#greedy-bucket-count).

Poisoning one bucket changes every model it feeds; the most a bucket can move a gap is its
*reduction*, a small non-negative integer. With reductions as a histogram over their values,
the fewest buckets that can close a gap are found greedily from the largest value down,
vectorised over (sample, class) rows, without sorting.
"""

import numpy as np


def histogram(values: np.ndarray, n_values: int) -> np.ndarray:
    """Per row, how many entries take each value: values int[N, B] in [0, n_values) -> int32[N, n_values]."""
    n_rows = values.shape[0]
    keys = values.astype(np.int64) + (np.arange(n_rows, dtype=np.int64) * n_values)[:, None]
    return np.bincount(keys.ravel(), minlength=n_rows * n_values).reshape(n_rows, n_values).astype(np.int32)


def fewest_buckets(hist: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Fewest buckets whose largest reductions sum to at least ``gap``: int64[N].

    hist: int[N, V + 1], hist[n, v] = number of buckets whose reduction is v. gap <= 0 costs 0.
    Where even all buckets cannot close the gap, returns (number of buckets + 1).
    """
    hist = hist.astype(np.int64)
    remaining = np.maximum(np.asarray(gap, dtype=np.int64), 0)
    count = np.zeros(len(remaining), dtype=np.int64)
    done = remaining == 0
    for v in range(hist.shape[1] - 1, 0, -1):
        need = -(-remaining // v)
        fits = ~done & (need <= hist[:, v])
        count = np.where(fits, count + need, np.where(done, count, count + hist[:, v]))
        remaining = np.where(done | fits, remaining, remaining - hist[:, v] * v)
        done |= fits
    return np.where(done, count, hist.sum(axis=1) + 1)


def most_buckets_within(hist: np.ndarray, gap: np.ndarray) -> np.ndarray:
    """Largest r such that the r largest reductions sum to at most ``gap`` (gap >= 0): int64[N].

    Equals fewest_buckets(gap + 1) - 1, capped at the number of buckets.
    """
    return np.minimum(fewest_buckets(hist, np.asarray(gap, dtype=np.int64) + 1) - 1, hist.sum(axis=1))
