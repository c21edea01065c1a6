"""Run-Off Election certificates on DPA or FA models (docs/design.md#roe).

Round 1: plurality picks finalists m1, m2 (top two by count, ties to the smaller index).
Round 2: E(a, c) = 2 * #{i : z_i[a] > z_i[c]} - m over all m models (strict >); the winner p is m1
if E(m1, m2) > 0, m2 if < 0, the smaller index if 0; s is the other finalist.
radius = min(CertR1, CertR2) - 1 where p is the label, else -1. CertR1 is the fewest poisons that
push p out of the final (two classes overtake it); CertR2 the fewest that let some c reach the
final against p and beat it there.

What the certificates need of the models' scores is only, per model, which classes each finalist
strictly beats: ``beats`` bool[n, m, 2, C], beats[t, i, j, c] = z_i[finalist j] > z_i[c] (finalist 0 = m1,
1 = m2, from the votes). The functions here take that, not the scores (beats_from_logits makes it from
scores; the predict stage's run-off pass stores it packed, 2C bits per model and test sample).

One clarification: with tied logits E is not antisymmetric (E(a, c) + E(c, a) = -2 * #ties), and
the formula can give -1 for a correct prediction. No poison is needed to keep a prediction
unchanged, so a correct prediction is always certified at radius >= 0; the radius is clipped there.
"""

import numpy as np

from .buckets import bucket_flag_counts, bucket_vote_counts, circulant_offsets, map_chunks
from .greedy import fewest_buckets, histogram
from .votes import plurality, vote_counts

BIG = np.int64(1) << 40  # "cannot happen" cost


def finalists(counts: np.ndarray):
    """Top two classes by count, ties to the smaller index: (m1, m2) int64[n]."""
    m1 = plurality(counts)
    masked = counts.astype(np.int64).copy()
    masked[np.arange(len(m1)), m1] = -1
    return m1, np.argmax(masked, axis=1)


def finalist_beats(logits: np.ndarray, m1: np.ndarray, m2: np.ndarray) -> np.ndarray:
    """Which classes each finalist strictly beats in every model: logits float[n, m, C], finalists int[n] ->
    bool[n, m, 2, C] (beats[t, i, j, c] = z_i[finalist j] > z_i[c])."""
    idx = np.stack([m1, m2], axis=1)[:, None, :, None]  # [n, 1, 2, 1]
    z = logits[:, :, None, :]  # [n, m, 1, C]
    return np.take_along_axis(z, np.broadcast_to(idx, (*logits.shape[:2], 2, 1)), axis=3) > z


def beats_from_logits(votes: np.ndarray, logits: np.ndarray, n_classes: int) -> np.ndarray:
    """``beats`` (see the module docstring) of models with votes int[n, m] and scores float[n, m, C]."""
    return finalist_beats(logits, *finalists(vote_counts(votes, n_classes)))


def run_off(counts: np.ndarray, beats: np.ndarray):
    """ROE prediction p, the other finalist s (int64[n] each) and which finalist p is (0: m1, 1: m2)."""
    m1, m2 = finalists(counts)
    rows = np.arange(len(m1))
    e12 = 2 * beats[rows, :, 0, m2].sum(axis=1) - beats.shape[1]
    p = np.where(e12 > 0, m1, np.where(e12 < 0, m2, np.minimum(m1, m2)))
    first = p == m1
    return p, np.where(first, m2, m1), np.where(first, 0, 1)


def run_off_winner(counts: np.ndarray, logits: np.ndarray) -> np.ndarray:
    """ROE prediction int64[n] from vote counts int[n, C] and every model's scores float[n, m, C]."""
    return run_off(counts, finalist_beats(logits, *finalists(counts)))[0]


def winner_beats(beats: np.ndarray, which: np.ndarray) -> np.ndarray:
    """bool[n, m, C]: whether the run-off winner (finalist ``which``) beats each class in each model."""
    return beats[np.arange(len(which)), :, which, :]


def vote_gap(counts: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Unclipped h(a, c) = N_a - N_c + [c > a]: the vote swing c needs to overtake a. int64[n, C]."""
    c = np.arange(counts.shape[1])
    na = np.take_along_axis(counts, a[:, None], axis=1).astype(np.int64)
    return na - counts + (c[None, :] > a[:, None])


def _ceil_half(x):
    return -(-x // 2)


def dpa_roe_radius(counts: np.ndarray, beats: np.ndarray):
    """DPA+ROE: (prediction p, radius before the label check) int64[n]; O(m C) per test sample."""
    n, n_classes = counts.shape
    n_models = beats.shape[1]
    rows = np.arange(n)
    p, s, which = run_off(counts, beats)
    g_p = np.maximum(vote_gap(counts, p), 0)
    g_p[rows, p] = BIG
    two = np.sort(np.partition(g_p, 1, axis=1)[:, :2], axis=1) if n_classes > 2 else np.full((n, 2), BIG)
    g1, g2 = two[:, 0], two[:, 1]
    cert1 = np.maximum(np.maximum(-(-(g1 + g2) // 3), _ceil_half(g1)), _ceil_half(g2))
    g_s = np.maximum(vote_gap(counts, s), 0)
    c = np.arange(n_classes)
    margin = np.maximum(2 * winner_beats(beats, which).sum(axis=1) - n_models + (c[None, :] > p[:, None]), 0)
    cost = np.maximum(_ceil_half(g_s), _ceil_half(margin))
    cost[rows, p] = BIG
    cert2 = cost.min(axis=1)
    return p, np.minimum(np.minimum(cert1, cert2) - 1, n_models)


def certify_dpa(votes: np.ndarray, beats: np.ndarray, labels: np.ndarray, n_classes: int):
    """DPA+ROE radii: votes int[n, m], beats bool[n, m, 2, C] -> (prediction, radius), -1 where wrong."""
    p, radius = dpa_roe_radius(vote_counts(votes, n_classes), beats)
    return p, np.where(p == labels, np.maximum(radius, 0), -1)


CHUNK_ELEMENTS = 2_000_000  # (sample, class or pair, bucket) cells per chunk
PAIR_BLOCK = 64  # FA+ROE round 1: costlier classes of the pairs tried at once


def _costs(reduction: np.ndarray, n_values: int, gap: np.ndarray) -> np.ndarray:
    """Greedy bucket counts: reduction int[b, X, K] (values < n_values), gap int[b, X] -> int64[b, X]."""
    b, x, n_buckets = reduction.shape
    hist = histogram(reduction.reshape(-1, n_buckets), n_values)
    return fewest_buckets(hist, gap.reshape(-1)).reshape(b, x)


def candidate_pairs(candidates: np.ndarray):
    """Every pair c1 < c2 of candidate classes of every row: candidates bool[b, C] -> (row, c1, c2) int64[P].

    O(sum of K_r^2) for K_r candidates in row r."""
    sizes = candidates.sum(axis=1)
    out = []
    for size in np.unique(sizes[sizes >= 2]):
        rows = np.flatnonzero(sizes == size)
        classes = np.nonzero(candidates[rows])[1].reshape(len(rows), size)  # row-major: each row's classes, sorted
        i, j = np.triu_indices(size, 1)
        out.append((np.repeat(rows, len(i)), classes[:, i].reshape(-1), classes[:, j].reshape(-1)))
    if not out:
        return (np.zeros(0, np.int64),) * 3
    return tuple(np.concatenate(parts) for parts in zip(*out))


def _joint_costs(per_bucket, p, d: int, row, c1, c2, joint_gap) -> np.ndarray:
    """Fewest buckets for both c1 and c2 to overtake p (row's), per pair: int64[P]; in batches of bounded memory."""
    n_buckets = per_bucket.shape[2]
    out = np.empty(len(row), np.int64)
    step = max(1, CHUNK_ELEMENTS // max(1, n_buckets))
    for start in range(0, len(row), step):
        sl = slice(start, start + step)
        r = row[sl]
        joint = d + 2 * per_bucket[r, p[r]] - per_bucket[r, c1[sl]] - per_bucket[r, c2[sl]]  # [pairs, K] in 0..3d
        out[sl] = fewest_buckets(histogram(joint, 3 * d + 1), joint_gap[sl])
    return out


def _round1_every_pair(cost_p, h_p, per_bucket, p, d, best):
    """min(best, CertR1) per row, trying every pair c1 < c2 (neither p) whose lower bound is below ``best``."""
    candidates = np.ones_like(cost_p, dtype=bool)
    candidates[np.arange(len(p)), p] = False
    row, c1, c2 = candidate_pairs(candidates)
    joint_gap = np.maximum(h_p[row, c1] + h_p[row, c2], 0)
    bound = np.maximum(np.maximum(cost_p[row, c1], cost_p[row, c2]), -(-joint_gap // (3 * d)))
    keep = bound < best[row]
    row, c1, c2, joint_gap, bound = row[keep], c1[keep], c2[keep], joint_gap[keep], bound[keep]
    best = best.copy()
    np.minimum.at(best, row, np.maximum(bound, _joint_costs(per_bucket, p, d, row, c1, c2, joint_gap)))
    return best


def _round1_cheapest_first(cost_p, h_p, per_bucket, p, d, best):
    """min(best, CertR1) per row, trying pairs in order of their costlier class's own cost.

    - A pair costs at least the own cost of each of its classes. With the classes sorted by own cost, every pair
      whose costlier class is the j-th cheapest costs at least that class's cost: once that reaches the best value
      found, no later pair can do better and the row's search stops.
    - A pair's joint cost is at least the fewest buckets whose largest possible reductions, d + 2 n_b(p) (the
      classes' own votes taken as 0), close its joint gap: pairs whose bound is not below the best value are not
      evaluated.
    - Two classes with the same vote gap to p and the same votes in every bucket are interchangeable: a pair
      with either costs the same. Such classes sort next to each other (same cost, same hash); of a run of them
      only the first pairs with the others, and the first two with each other.
    """
    b, n_classes = cost_p.shape
    rows = np.arange(b)
    own = cost_p.copy()
    own[rows, p] = BIG  # p sorts last and is never part of a pair
    weights = np.random.default_rng(0).integers(1, 2**62, per_bucket.shape[2] + 1)  # fixed: only groups classes
    key = (per_bucket.astype(np.int64) @ weights[1:]) + h_p.astype(np.int64) * weights[0]  # wraps: a hash
    order = np.lexsort((key, own), axis=1)
    sorted_cost = np.take_along_axis(own, order, axis=1)
    sorted_bucket = per_bucket[rows[:, None], order]  # [b, C, K]
    sorted_h = np.take_along_axis(h_p, order, axis=1)
    same = np.zeros((b, n_classes), dtype=bool)  # same[r, j]: class j interchangeable with class j - 1
    same[:, 1:] = (sorted_h[:, 1:] == sorted_h[:, :-1]) & (sorted_bucket[:, 1:] == sorted_bucket[:, :-1]).all(axis=2)
    reach = histogram(d + 2 * per_bucket[rows, p].astype(np.int64), 3 * d + 1)  # [b, 3d + 1]: the bound's buckets
    best = best.copy()
    for j0 in range(1, n_classes - 1, PAIR_BLOCK):  # the costlier classes j0 .. j0 + PAIR_BLOCK - 1 at once
        active = np.flatnonzero(sorted_cost[:, j0] < best)
        if not len(active):
            break
        js = np.arange(j0, min(j0 + PAIR_BLOCK, n_classes - 1))
        run = same[active][:, js]  # [a, L]: j continues a run
        second = run & ~same[active][:, js - 1]  # j is a run's second: it pairs with the run's first only
        starts = ~same[active][:, :js[-1]]  # [a, j_max]: classes that start a run
        earlier = np.arange(js[-1])[None, :] < js[:, None]  # [L, j_max]
        partners = starts[:, None, :] & earlier[None] & ~run[:, :, None]  # a new class: pairs with every run start
        a_idx, l_idx = np.nonzero(second)
        partners[a_idx, l_idx, js[l_idx] - 1] = True
        row_in, l_in, i = np.nonzero(partners)
        row, j = active[row_in], js[l_in]
        c1, c2 = order[row, i], order[row, j]
        joint_gap = np.maximum(h_p[row, c1] + h_p[row, c2], 0)
        bound = np.maximum(sorted_cost[row, j], fewest_buckets(reach[row], joint_gap))
        keep = bound < best[row]
        row, c1, c2, joint_gap, bound = row[keep], c1[keep], c2[keep], joint_gap[keep], bound[keep]
        np.minimum.at(best, row, np.maximum(bound, _joint_costs(per_bucket, p, d, row, c1, c2, joint_gap)))
    return best


def fa_roe_radius(votes: np.ndarray, beats: np.ndarray, feed: np.ndarray, n_classes: int, all_pairs: bool = False):
    """FA+ROE: (prediction p, radius before the label check) int64[n].

    Round 1's pairs are searched cheapest first (_round1_cheapest_first): usually a few pairs per test sample, not
    C(C-1)/2. ``all_pairs``: try every pair whose lower bound is below CertR2 instead (for tests: the same radii).
    """
    n, n_models = votes.shape
    n_buckets, d = feed.shape
    counts = vote_counts(votes, n_classes)
    p_all, s_all, which_all = run_off(counts, beats)
    offsets = circulant_offsets(feed)
    c = np.arange(n_classes)
    round1 = _round1_every_pair if all_pairs else _round1_cheapest_first

    def chunk(sl):
        p, s, cnt = p_all[sl], s_all[sl], counts[sl]
        rows = np.arange(len(p))
        per_bucket = bucket_vote_counts(votes[sl], feed, n_classes, offsets).astype(np.int16)  # [b, C, K]
        at = lambda a: per_bucket[rows, a][:, None, :]  # noqa: E731  votes for class a in each bucket
        h_p, h_s = vote_gap(cnt, p), vote_gap(cnt, s)
        cost_p = _costs(d + at(p) - per_bucket, 2 * d + 1, np.maximum(h_p, 0))
        cost_s = _costs(d + at(s) - per_bucket, 2 * d + 1, np.maximum(h_s, 0))
        # Round 2: some c != p reaches the final (overtakes s) and beats p there.
        prefers_p = winner_beats(beats[sl], which_all[sl])  # [b, m, C]
        prefer = bucket_flag_counts(prefers_p, feed, offsets).astype(np.int16)  # [b, C, K]
        margin = 2 * prefers_p.sum(axis=1) - n_models + (c[None, :] > p[:, None])
        cost2 = np.maximum(cost_s, _costs(2 * prefer, 2 * d + 1, np.maximum(margin, 0)))
        cost2[rows, p] = BIG
        cert2 = cost2.min(axis=1)
        # Round 1: two classes c1, c2 (neither p) both overtake p; the joint gap is the unclipped sum. A pair
        # costs max(its two single costs, the joint cost); only values below CertR2 change min(CertR1, CertR2).
        best = round1(cost_p, h_p, per_bucket, p, d, cert2)  # = min(CertR1, CertR2)
        return np.minimum(best - 1, n_buckets)

    step = max(1, CHUNK_ELEMENTS // (n_buckets * n_classes))
    radius = np.concatenate(map_chunks(chunk, n, step)) if n else np.zeros(0, np.int64)
    return p_all, radius


def certify_fa(votes, beats, labels, n_classes, feed):
    """FA+ROE radii: (prediction, radius), -1 where wrong (beats: see the module docstring)."""
    p, radius = fa_roe_radius(votes, beats, feed, n_classes)
    return p, np.where(p == labels, np.maximum(radius, 0), -1)
