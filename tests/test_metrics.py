import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.certify.figures import certified_accuracy, curve, median_radius


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-1, 12), min_size=1, max_size=30))
def test_median_radius_is_largest_r_with_half_certified(radii):
    radius = np.array(radii)
    candidates = [r for r in range(0, 14) if (radius >= r).mean() >= 0.5]
    assert median_radius(radius) == (max(candidates) if candidates else None)


def test_certified_accuracy_and_curve():
    radius = np.array([-1, 0, 0, 2, 5])
    assert certified_accuracy(radius, [0, 1, 2, 3, 5, 6]).tolist() == [0.8, 0.4, 0.4, 0.2, 0.2, 0.0]
    r, acc = curve(radius)
    assert r.tolist() == list(range(7)) and acc[0] == 0.8 and acc[-1] == 0.0
