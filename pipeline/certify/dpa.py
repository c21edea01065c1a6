"""DPA certificate (docs/design.md#dpa-certificate).

One inserted or removed training sample changes one base model, so it moves at most one vote.
radius = floor((N_pred - max_{c != pred}(N_c + [c < pred])) / 2) when pred = label, else -1.
"""

import numpy as np

from .votes import plurality, vote_counts


def stable_radius(counts: np.ndarray):
    """Plurality prediction and the number of changed models it provably survives.

    counts: int[n_test, n_classes] -> (prediction int64[n_test], radius int64[n_test] >= 0).
    """
    n_test, n_classes = counts.shape
    prediction = plurality(counts)
    rows = np.arange(n_test)
    top = counts[rows, prediction].astype(np.int64)
    rival = counts.astype(np.int64) + (np.arange(n_classes)[None, :] < prediction[:, None])
    rival[rows, prediction] = np.iinfo(np.int64).min
    return prediction, (top - rival.max(axis=1)) // 2


def certify(votes: np.ndarray, labels: np.ndarray, n_classes: int):
    """DPA radii: votes int[n_test, n_models], labels int[n_test] -> (prediction, radius int64[n_test]).

    radius is -1 where the prediction is wrong.
    """
    prediction, radius = stable_radius(vote_counts(votes, n_classes))
    return prediction, np.where(prediction == labels, radius, -1)
