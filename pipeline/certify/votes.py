"""Votes and plurality (docs/design.md#votes)."""

import numpy as np


def votes_from_logits(logits: np.ndarray) -> np.ndarray:
    """Vote of each model: argmax of its logits, ties to the smaller class. logits: float[..., C] -> int16[...]."""
    return np.argmax(logits, axis=-1).astype(np.int16)  # argmax returns the first maximum


def vote_counts(votes: np.ndarray, n_classes: int) -> np.ndarray:
    """N_c per test sample: votes int[n_test, n_models] -> int32[n_test, n_classes]."""
    counts = np.empty((votes.shape[0], n_classes), dtype=np.int32)
    for c in range(n_classes):
        counts[:, c] = (votes == c).sum(axis=1)
    return counts


def plurality(counts: np.ndarray) -> np.ndarray:
    """Most votes, ties to the smaller class index: int64[n_test]."""
    return np.argmax(counts, axis=1)
