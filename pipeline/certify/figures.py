"""Reported figures (docs/design.md#reported-figures). Radii count inserted + removed training samples."""

import numpy as np


def certified_accuracy(radius: np.ndarray, radii) -> np.ndarray:
    """Fraction of test samples that are correct with radius >= r, for each r: float64[len(radii)].

    radius: int[n_test], -1 where the prediction is wrong. r = 0 gives clean accuracy.
    """
    radius = np.asarray(radius)
    return np.array([(radius >= r).mean() if len(radius) else 0.0 for r in radii], dtype=np.float64)


def curve(radius: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Certified accuracy at every radius 0..max(radius)+1: (radii int64[R], accuracy float64[R])."""
    radii = np.arange(max(int(np.max(radius, initial=-1)), 0) + 2)
    return radii, certified_accuracy(radius, radii)


def median_radius(radius: np.ndarray):
    """Median robustness R: the largest r with certified accuracy >= 50 %; None if clean accuracy < 50 %.

    Equivalently the median of the radii (wrong samples counted as -1), rounded down to an
    attained order statistic.
    """
    radius = np.sort(np.asarray(radius))[::-1]
    need = -(-len(radius) // 2)  # at least half of the samples
    if need == 0 or radius[need - 1] < 0:
        return None
    return int(radius[need - 1])
