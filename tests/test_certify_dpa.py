"""DPA certificate (docs/design.md#dpa-certificate) against brute force on small vote tables."""

import itertools

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.certify import dpa
from pipeline.certify.votes import plurality, vote_counts, votes_from_logits


def brute_plurality(votes, n_classes):
    counts = [list(votes).count(c) for c in range(n_classes)]
    best = max(counts)
    return counts.index(best)  # first (smallest) class with the most votes


def flips_with(votes, n_classes, r):
    """True if changing the votes of some r models (to any classes) changes the plurality."""
    base = brute_plurality(votes, n_classes)
    for models in itertools.combinations(range(len(votes)), r):
        for new in itertools.product(range(n_classes), repeat=r):
            changed = list(votes)
            for m, c in zip(models, new):
                changed[m] = c
            if brute_plurality(changed, n_classes) != base:
                return True
    return False


vote_tables = st.integers(2, 4).flatmap(lambda c: st.tuples(
    st.just(c),
    st.lists(st.lists(st.integers(0, c - 1), min_size=1, max_size=7), min_size=1, max_size=4).filter(
        lambda rows: len({len(r) for r in rows}) == 1)))


@settings(max_examples=150, deadline=None)
@given(vote_tables, st.data())
def test_dpa_radius_matches_brute_force(table, data):
    n_classes, rows = table
    votes = np.array(rows, dtype=np.int16)
    labels = np.array([data.draw(st.integers(0, n_classes - 1)) for _ in rows])
    prediction, radius = dpa.certify(votes, labels, n_classes)
    for row, label, pred, rad in zip(rows, labels, prediction, radius):
        assert pred == brute_plurality(row, n_classes)
        if pred != label:
            assert rad == -1
            continue
        assert rad >= 0
        for r in range(rad + 1):
            assert not flips_with(row, n_classes, r), f"votes {row}: flipped by {r} <= radius {rad}"
        # DPA's certificate is exact: radius + 1 changed models can always flip the vote.
        assert flips_with(row, n_classes, rad + 1), f"votes {row}: radius {rad} not tight"


def test_dpa_tie_breaks():
    # Two classes tied: the smaller class wins, and one changed vote flips it.
    prediction, radius = dpa.certify(np.array([[0, 1], [1, 0]]), np.array([0, 0]), 2)
    assert prediction.tolist() == [0, 0] and radius.tolist() == [0, 0]
    # 3 votes for class 1, 1 for class 0: class 0 gets the tie-break, so gap = 3 - (1 + 1) = 1 -> radius 0.
    prediction, radius = dpa.certify(np.array([[1, 1, 1, 0]]), np.array([1]), 3)
    assert prediction.tolist() == [1] and radius.tolist() == [0]
    # 3 votes for class 0, 1 for class 2: gap = 3 - 1 = 2 -> radius 1.
    prediction, radius = dpa.certify(np.array([[0, 0, 0, 2]]), np.array([0]), 3)
    assert radius.tolist() == [1]


def test_votes_argmax_ties_to_smaller_class():
    logits = np.array([[[1.0, 3.0, 3.0], [2.0, 2.0, 2.0], [-np.inf, -1.0, -np.inf]]], dtype=np.float32)
    assert votes_from_logits(logits).tolist() == [[1, 0, 1]]
    counts = vote_counts(np.array([[2, 1, 2, 1, 0]]), 3)
    assert counts.tolist() == [[1, 2, 2]] and plurality(counts).tolist() == [1]
