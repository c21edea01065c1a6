"""FA, DPA+ROE and FA+ROE certificates (docs/design.md#fa-certificate, #roe) against brute-force attacks.

An attack of size r changes r base models arbitrarily (DPA, DPA+ROE) or r buckets, i.e. every
model those buckets feed (FA, FA+ROE). A changed model may output any logits: for ROE all weak
orders of the classes are enumerated (a model's vote is its argmax, ties to the smaller class).
"""

import itertools
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks import reference_certify as ref
from pipeline.certify import dpa, fa, roe
from pipeline.certify.buckets import bucket_feeds
from pipeline.partition import model_buckets

TIGHTNESS = Counter()


# ---- independent reference predictors, vectorised over many attacked versions -------------

def plurality_batch(votes, n_classes):
    """votes int[A, m] -> int[A], most votes, ties to the smaller class."""
    counts = np.stack([(votes == c).sum(1) for c in range(n_classes)], axis=1)
    return _first_max(counts)


def _first_max(counts):
    best = counts.max(axis=1, keepdims=True)
    return np.argmax(counts == best, axis=1)


def roe_batch(logits, n_classes):
    """logits float[A, m, C] -> ROE prediction int[A]."""
    votes = _first_max(logits.reshape(-1, n_classes)).reshape(logits.shape[:2])
    counts = np.stack([(votes == c).sum(1) for c in range(n_classes)], axis=1)
    order = np.lexsort((np.broadcast_to(np.arange(n_classes), counts.shape), -counts), axis=1)
    m1, m2 = order[:, 0], order[:, 1]
    rows = np.arange(len(m1))
    wins = (logits[rows, :, m1] > logits[rows, :, m2]).sum(1)
    e12 = 2 * wins - logits.shape[1]
    return np.where(e12 > 0, m1, np.where(e12 < 0, m2, np.minimum(m1, m2)))


WEAK_ORDERS = {c: np.array(list(itertools.product(range(c), repeat=c)), dtype=np.float32) for c in (2, 3)}


def flips(base_logits, changed_sets, n_classes, use_roe):
    """True if changing the models of some set (to any outputs) changes the prediction."""
    base_votes = _first_max(base_logits)
    base = (roe_batch(base_logits[None], n_classes) if use_roe else
            plurality_batch(base_votes[None], n_classes))[0]
    for models in changed_sets:
        models = list(models)
        if use_roe:
            outs = WEAK_ORDERS[n_classes]
            combos = np.array(list(itertools.product(range(len(outs)), repeat=len(models))))
            z = np.repeat(base_logits[None], len(combos), axis=0)
            z[:, models, :] = outs[combos]
            pred = roe_batch(z, n_classes)
        else:
            combos = np.array(list(itertools.product(range(n_classes), repeat=len(models))))
            v = np.repeat(base_votes[None], len(combos), axis=0)
            v[:, models] = combos
            pred = plurality_batch(v, n_classes)
        if (pred != base).any():
            return True
    return False


def attack_sets(feed, r):
    """Sets of models an attack on r buckets can change (feed: bucket -> models)."""
    seen = set()
    for buckets in itertools.combinations(range(len(feed)), r):
        models = frozenset(int(i) for b in buckets for i in feed[b])
        if models not in seen:
            seen.add(models)
            yield sorted(models)


def check_radius(base_logits, radius, feed, n_classes, use_roe, name, max_models=6):
    """No attack of size <= radius flips; record whether radius + 1 does (when small enough)."""
    for r in range(1, radius + 1):
        assert not flips(base_logits, attack_sets(feed, r), n_classes, use_roe), f"{name}: flipped by {r} <= {radius}"
    if radius + 1 <= len(feed) and max(len(s) for s in attack_sets(feed, radius + 1)) <= max_models:
        TIGHTNESS[(name, flips(base_logits, attack_sets(feed, radius + 1), n_classes, use_roe))] += 1


# ---- strategies ------------------------------------------------------------------------------

def ensembles(min_models, max_models, classes=(2, 3)):
    """Small integer logits (ties in votes and logits are common); most models favour the label,
    so that positive radii, and the tie-breaks at their boundaries, are exercised."""
    @st.composite
    def build(draw):
        n_classes = draw(st.sampled_from(classes))
        m = draw(st.integers(min_models, max_models))
        label = draw(st.integers(0, n_classes - 1))
        rows = draw(st.lists(st.lists(st.integers(0, 2), min_size=n_classes, max_size=n_classes),
                             min_size=m, max_size=m))
        favour = draw(st.lists(st.sampled_from([True, True, True, False]), min_size=m, max_size=m))
        boost = draw(st.integers(0, 3))
        z = np.array(rows, dtype=np.float32)
        z[np.array(favour), label] += boost
        return z, label, n_classes
    return build()


def votes_of(z):
    return _first_max(z)


def beats(votes, z, n_classes):
    """What the ROE certificates take: which classes each finalist beats in each model."""
    return roe.beats_from_logits(votes, z, n_classes)


@settings(max_examples=120, deadline=None)
@given(ensembles(1, 7))
def test_dpa_roe_against_brute_force(case):
    z, label, n_classes = case
    feed = np.arange(len(z))[:, None]
    p, radius = roe.certify_dpa(votes_of(z)[None], beats(votes_of(z)[None], z[None], n_classes), np.array([label]),
                                 n_classes)
    assert p[0] == roe_batch(z[None], n_classes)[0]
    assert radius[0] == ref.dpa_roe(votes_of(z).tolist(), z.tolist(), label, n_classes)[1]
    if radius[0] >= 0:
        check_radius(z, int(radius[0]), feed, n_classes, True, "DPA+ROE", max_models=4)
    else:
        assert p[0] != label


@settings(max_examples=120, deadline=None)
@given(ensembles(1, 4), st.integers(1, 3))
def test_fa_against_brute_force(case, d):
    z, label, n_classes = case
    k = len(z)
    feed = bucket_feeds(model_buckets("fa", k, d))
    z = np.tile(z, (d, 1))[: k * d]  # k*d models
    votes = votes_of(z)
    pred, radius = fa.certify(votes[None], np.array([label]), n_classes, feed)
    assert (pred[0], radius[0]) == ref.fa(votes.tolist(), label, n_classes, feed.tolist())
    if radius[0] >= 0:
        check_radius(z, int(radius[0]), feed, n_classes, False, "FA", max_models=8)


@settings(max_examples=60, deadline=None)
@given(ensembles(1, 3), st.integers(1, 2))
def test_fa_roe_against_brute_force(case, d):
    z, label, n_classes = case
    k = len(z)
    feed = bucket_feeds(model_buckets("fa", k, d))
    z = np.concatenate([z, z[::-1]])[: k * d] if d == 2 else z
    votes = votes_of(z)
    p, radius = roe.certify_fa(votes[None], beats(votes[None], z[None], n_classes), np.array([label]), n_classes,
                               feed)
    assert (p[0], radius[0]) == ref.fa_roe(votes.tolist(), z.tolist(), label, n_classes, feed.tolist())
    if radius[0] >= 0:
        check_radius(z, int(radius[0]), feed, n_classes, True, "FA+ROE", max_models=4)


def random_ensemble(rng, n, m, n_classes, p_label=0.75):
    labels = rng.integers(0, n_classes, n)
    z = rng.normal(size=(n, m, n_classes)).astype(np.float32)
    boost = (rng.random((n, m)) < p_label)[:, :, None] * (np.arange(n_classes) == labels[:, None, None])
    z += 3 * boost
    z = np.round(z, 1)  # ties in logits
    return z, votes_of(z.reshape(-1, n_classes)).reshape(n, m), labels


@pytest.mark.parametrize("n_classes", [3, 5])
def test_vectorised_equals_reference_loops(n_classes):
    rng = np.random.default_rng(n_classes)
    k, d = 9, 3
    feed = bucket_feeds(model_buckets("fa", k, d))
    z, votes, labels = random_ensemble(rng, 40, k * d, n_classes)
    for method, got, expect in [
        ("dpa", dpa.certify(votes, labels, n_classes), [ref.dpa(v, y, n_classes) for v, y in zip(votes.tolist(), labels)]),
        ("fa", fa.certify(votes, labels, n_classes, feed),
         [ref.fa(v, y, n_classes, feed.tolist()) for v, y in zip(votes.tolist(), labels)]),
        ("dpa_roe", roe.certify_dpa(votes, beats(votes, z, n_classes), labels, n_classes),
         [ref.dpa_roe(v, zz, y, n_classes) for v, zz, y in zip(votes.tolist(), z.tolist(), labels)]),
        ("fa_roe", roe.certify_fa(votes, beats(votes, z, n_classes), labels, n_classes, feed),
         [ref.fa_roe(v, zz, y, n_classes, feed.tolist()) for v, zz, y in zip(votes.tolist(), z.tolist(), labels)]),
    ]:
        assert got[0].tolist() == [e[0] for e in expect], method
        assert got[1].tolist() == [e[1] for e in expect], method


@settings(max_examples=100, deadline=None)
@given(st.integers(2, 5), st.integers(1, 12), st.integers(0, 2**32 - 1))
def test_fa_with_d1_equals_dpa(n_classes, k, seed):
    rng = np.random.default_rng(seed)
    z, votes, labels = random_ensemble(rng, 30, k, n_classes)
    feed = bucket_feeds(model_buckets("fa", k, 1))
    assert np.array_equal(fa.certify(votes, labels, n_classes, feed)[1], dpa.certify(votes, labels, n_classes)[1])
    assert np.array_equal(roe.certify_fa(votes, beats(votes, z, n_classes), labels, n_classes, feed)[1],
                          roe.certify_dpa(votes, beats(votes, z, n_classes), labels, n_classes)[1])


def test_report_tightness():
    """Not an assertion of tightness (certificates are lower bounds); prints how often they are tight."""
    if TIGHTNESS:
        lines = [f"{name}: tight in {TIGHTNESS[(name, True)]} of {TIGHTNESS[(name, True)] + TIGHTNESS[(name, False)]}"
                 for name in sorted({n for n, _ in TIGHTNESS})]
        print("\n" + "\n".join(lines))


def test_layout_errors_and_circulant_detection():
    from pipeline.certify.buckets import circulant_offsets
    from pipeline.errors import PipelineError

    buckets = model_buckets("fa", 5, 3)
    feed = bucket_feeds(buckets)
    assert sorted(circulant_offsets(feed).tolist()) == sorted(feed[0].tolist())
    assert circulant_offsets(feed[::-1].copy()) is None  # not a rotation: the general gather path
    votes = np.random.default_rng(0).integers(0, 3, size=(4, 15)).astype(np.int16)
    labels = np.zeros(4, dtype=np.int64)
    # Reordering buckets changes nothing: the gather path equals the rotation path.
    assert np.array_equal(fa.certify(votes, labels, 3, feed[::-1].copy())[1], fa.certify(votes, labels, 3, feed)[1])
    broken = buckets.copy()
    broken[0, 0] = broken[1, 0]
    with pytest.raises(PipelineError, match="every bucket must feed 3 models"):
        bucket_feeds(broken)


@pytest.mark.parametrize("n_classes, k, d, block", [(40, 12, 2, 64), (80, 8, 3, 64), (12, 30, 1, 64), (40, 12, 2, 3)])
def test_fa_roe_searching_pairs_cheapest_first_gives_the_radii_of_every_pair(n_classes, k, d, block, monkeypatch):
    """Round 1's pairs searched cheapest first, stopping once no pair can do better, give the radii of trying all
    C(C-1)/2 pairs, and of the reference loops."""
    monkeypatch.setattr(roe, "PAIR_BLOCK", block)  # classes tried at once; 3: many blocks, runs across them
    rng = np.random.default_rng(n_classes + k)
    feed = bucket_feeds(model_buckets("fa", k, d))
    for p_label in (0.3, 0.6, 0.9):
        z, votes, labels = random_ensemble(rng, 25, k * d, n_classes, p_label)
        z = np.round(z)  # many ties
        votes = votes_of(z.reshape(-1, n_classes)).reshape(z.shape[:2])
        b = beats(votes, z, n_classes)
        fast = roe.fa_roe_radius(votes, b, feed, n_classes)
        every = roe.fa_roe_radius(votes, b, feed, n_classes, all_pairs=True)
        assert np.array_equal(fast[0], every[0]) and np.array_equal(fast[1], every[1])
        got = roe.certify_fa(votes, b, labels, n_classes, feed)
        expect = [ref.fa_roe(v, zz, y, n_classes, feed.tolist())
                  for v, zz, y in zip(votes.tolist(), z.tolist(), labels)]
        assert got[1].tolist() == [e[1] for e in expect]


def test_candidate_pairs_are_every_pair_within_each_row():
    rng = np.random.default_rng(3)
    candidates = rng.random((30, 9)) < 0.4
    row, c1, c2 = roe.candidate_pairs(candidates)
    expect = sorted((r, a, b) for r in range(30) for a, b in itertools.combinations(np.flatnonzero(candidates[r]), 2))
    assert sorted(zip(row.tolist(), c1.tolist(), c2.tolist())) == [tuple(map(int, e)) for e in expect]


@settings(max_examples=50, deadline=None)
@given(st.integers(2, 30), st.integers(1, 9), st.integers(0, 2**32 - 1))
def test_beats_packed_to_bits_and_back_give_the_certificates_of_the_scores(n_classes, m, seed):
    """The run-off files' encoding (2C bits per model and test sample) keeps exactly what the certificates use."""
    from pipeline.artifacts.runoff import pack_beats, unpack_beats

    rng = np.random.default_rng(seed)
    z, votes, labels = random_ensemble(rng, 20, m, n_classes)
    b = beats(votes, z, n_classes)
    packed = pack_beats(b)
    assert packed.shape == (20, m, 2 * -(-n_classes // 8)) and packed.nbytes * 16 <= z.nbytes + 32 * 20 * m
    assert np.array_equal(unpack_beats(packed, n_classes), b)
    expect = [ref.dpa_roe(v, zz, y, n_classes) for v, zz, y in zip(votes.tolist(), z.tolist(), labels)]
    got = roe.certify_dpa(votes, unpack_beats(packed, n_classes), labels, n_classes)
    assert got[0].tolist() == [e[0] for e in expect] and got[1].tolist() == [e[1] for e in expect]
