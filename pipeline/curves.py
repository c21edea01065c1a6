"""Learning-curve fit, sample complexity and Pareto fronts (pure numpy; docs/studies.md).

The learning curve is modelled as accuracy(n) = A - B * n**(-c) (A: the accuracy the learner tends to with
unlimited data, c > 0: how fast it gets there), the usual power law of learning curves. The fit minimises the
squared accuracy error: for each asymptote A on a fine grid the other two parameters come from a linear fit of
log(A - accuracy) on log(n); the best A wins.
"""

import numpy as np


def fit_power_law(sizes, accuracy, floor: float = 0.0) -> dict:
    """Least-squares fit of accuracy(n) = A - B n^-c to mean accuracies at training-set sizes.

    sizes: int[P] (>= 1), accuracy: float[P] in [0, 1]; points at or below ``floor`` (chance) are left out,
    as the power law describes a learner that has started learning. Returns {"A", "B", "c", "rmse", "points"}.
    """
    n = np.asarray(sizes, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    keep = acc > floor
    n, acc = n[keep], acc[keep]
    if len(n) < 3:
        raise ValueError(f"a learning curve needs at least 3 points above chance ({floor:.3f}) to fit; got {len(n)}")
    top = acc.max()
    best = None
    for a in top + (1.0 - top) * np.linspace(1e-4, 1.0, 400) + 1e-6:
        slope, intercept = np.polyfit(np.log(n), np.log(a - acc), 1)
        if slope >= 0:
            continue  # not a rising curve
        pred = a - np.exp(intercept) * n**slope
        err = float(np.sqrt(np.mean((pred - acc) ** 2)))
        if best is None or err < best["rmse"]:
            best = {"A": float(a), "B": float(np.exp(intercept)), "c": float(-slope), "rmse": err}
    if best is None:
        raise ValueError("the measured accuracies do not rise with the training-set size; no learning curve to fit")
    best["points"] = int(len(n))
    return best


def predicted_accuracy(fit: dict, sizes) -> np.ndarray:
    """Accuracy of the fitted curve at training-set sizes: float64[len(sizes)]."""
    n = np.maximum(np.asarray(sizes, dtype=np.float64), 1.0)
    return fit["A"] - fit["B"] * n ** (-fit["c"])


def fitted_sample_complexity(fit: dict, accuracy: float):
    """Smallest n with fitted accuracy >= ``accuracy`` (float, >= 1), or None when the curve never gets there."""
    gap = fit["A"] - accuracy
    if gap <= 0:
        return None
    return float(max(1.0, (fit["B"] / gap) ** (1.0 / fit["c"])))


def measured_sample_complexity(sizes, accuracy, target: float):
    """The size at which the measured curve first reaches ``target``, interpolated linearly in log(n) between
    the last size below it and the first at or above it; None when no size reaches it. sizes increasing."""
    n = np.asarray(sizes, dtype=np.float64)
    acc = np.asarray(accuracy, dtype=np.float64)
    above = np.flatnonzero(acc >= target)
    if len(above) == 0:
        return None
    i = int(above[0])
    if i == 0:
        return float(n[0])
    lo, hi = np.log(n[i - 1]), np.log(n[i])
    t = (target - acc[i - 1]) / (acc[i] - acc[i - 1])
    return float(np.exp(lo + t * (hi - lo)))


def pareto_front(cost, value) -> list[int]:
    """Indices of the points no other point beats (cost no higher and value no lower, one of them strictly),
    by increasing cost; of equal points the first is kept."""
    cost = np.asarray(cost, dtype=np.float64)
    value = np.asarray(value, dtype=np.float64)
    order = np.lexsort((np.arange(len(cost)), -value, cost))  # cheapest first, then best value, then position
    front, best = [], -np.inf
    for i in order:
        if value[i] > best:
            front.append(int(i))
            best = value[i]
    return front
