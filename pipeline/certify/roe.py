"""Run-Off Election certificates on DPA or FA models (docs/design.md#roe).

Round 1: plurality picks finalists m1, m2 (top two by count, ties to the smaller index).
Round 2: E(a, c) = 2 * #{i : z_i[a] > z_i[c]} - m over all m models (strict >); the winner p is m1
if E(m1, m2) > 0, m2 if < 0, the smaller index if 0; s is the other finalist.
radius = min(CertR1, CertR2) - 1 where p is the label, else -1. CertR1 is the fewest poisons that
push p out of the final (two classes overtake it); CertR2 the fewest that let some c reach the
final against p and beat it there.

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


def prefer_counts(logits: np.ndarray, a: np.ndarray) -> np.ndarray:
    """#{i : z_i[a] > z_i[c]} for every class c: logits float[n, m, C], a int[n] -> int64[n, C]."""
    za = np.take_along_axis(logits, a[:, None, None], axis=2)  # [n, m, 1]
    return (za > logits).sum(axis=1)


def run_off(counts: np.ndarray, logits: np.ndarray):
    """ROE prediction p and the other finalist s: int64[n] each."""
    m1, m2 = finalists(counts)
    n_models = logits.shape[1]
    e12 = 2 * np.take_along_axis(prefer_counts(logits, m1), m2[:, None], axis=1)[:, 0] - n_models
    p = np.where(e12 > 0, m1, np.where(e12 < 0, m2, np.minimum(m1, m2)))
    return p, np.where(p == m1, m2, m1)


def vote_gap(counts: np.ndarray, a: np.ndarray) -> np.ndarray:
    """Unclipped h(a, c) = N_a - N_c + [c > a]: the vote swing c needs to overtake a. int64[n, C]."""
    c = np.arange(counts.shape[1])
    na = np.take_along_axis(counts, a[:, None], axis=1).astype(np.int64)
    return na - counts + (c[None, :] > a[:, None])


def _ceil_half(x):
    return -(-x // 2)


def dpa_roe_radius(counts: np.ndarray, logits: np.ndarray):
    """DPA+ROE: (prediction p, radius before the label check) int64[n]."""
    n, n_classes = counts.shape
    n_models = logits.shape[1]
    rows = np.arange(n)
    p, s = run_off(counts, logits)
    g_p = np.maximum(vote_gap(counts, p), 0)
    g_p[rows, p] = BIG
    two = np.sort(g_p, axis=1)[:, :2] if n_classes > 2 else np.full((n, 2), BIG)
    g1, g2 = two[:, 0], two[:, 1]
    cert1 = np.maximum(np.maximum(-(-(g1 + g2) // 3), _ceil_half(g1)), _ceil_half(g2))
    g_s = np.maximum(vote_gap(counts, s), 0)
    c = np.arange(n_classes)
    margin = np.maximum(2 * prefer_counts(logits, p) - n_models + (c[None, :] > p[:, None]), 0)
    cost = np.maximum(_ceil_half(g_s), _ceil_half(margin))
    cost[rows, p] = BIG
    cert2 = cost.min(axis=1)
    return p, np.minimum(np.minimum(cert1, cert2) - 1, n_models)


def certify_dpa(votes: np.ndarray, logits: np.ndarray, labels: np.ndarray, n_classes: int):
    """DPA+ROE radii: votes int[n, m], logits float[n, m, C] -> (prediction, radius), -1 where wrong."""
    p, radius = dpa_roe_radius(vote_counts(votes, n_classes), logits)
    return p, np.where(p == labels, np.maximum(radius, 0), -1)


CHUNK_ELEMENTS = 2_000_000  # (sample, class or pair, bucket) cells per chunk


def _costs(reduction: np.ndarray, n_values: int, gap: np.ndarray) -> np.ndarray:
    """Greedy bucket counts: reduction int[b, X, K] (values < n_values), gap int[b, X] -> int64[b, X]."""
    b, x, n_buckets = reduction.shape
    hist = histogram(reduction.reshape(-1, n_buckets), n_values)
    return fewest_buckets(hist, gap.reshape(-1)).reshape(b, x)


def fa_roe_radius(votes: np.ndarray, logits: np.ndarray, feed: np.ndarray, n_classes: int):
    """FA+ROE: (prediction p, radius before the label check) int64[n]."""
    n, n_models = votes.shape
    n_buckets, d = feed.shape
    counts = vote_counts(votes, n_classes)
    p_all, s_all = run_off(counts, logits)
    pairs = np.array([(a, b) for a in range(n_classes) for b in range(a + 1, n_classes)], dtype=np.int64)
    offsets = circulant_offsets(feed)
    c = np.arange(n_classes)

    def chunk(sl):
        p, s, cnt = p_all[sl], s_all[sl], counts[sl]
        rows = np.arange(len(p))
        per_bucket = bucket_vote_counts(votes[sl], feed, n_classes, offsets).astype(np.int16)  # [b, C, K]
        at = lambda a: per_bucket[rows, a][:, None, :]  # noqa: E731  votes for class a in each bucket
        h_p, h_s = vote_gap(cnt, p), vote_gap(cnt, s)
        cost_p = _costs(d + at(p) - per_bucket, 2 * d + 1, np.maximum(h_p, 0))
        cost_s = _costs(d + at(s) - per_bucket, 2 * d + 1, np.maximum(h_s, 0))
        # Round 2: some c != p reaches the final (overtakes s) and beats p there.
        z = logits[sl]
        prefers_p = np.take_along_axis(z, p[:, None, None], axis=2) > z  # [b, m, C]
        prefer = bucket_flag_counts(prefers_p, feed, offsets).astype(np.int16)  # [b, C, K]
        margin = 2 * prefers_p.sum(axis=1) - n_models + (c[None, :] > p[:, None])
        cost2 = np.maximum(cost_s, _costs(2 * prefer, 2 * d + 1, np.maximum(margin, 0)))
        cost2[rows, p] = BIG
        cert2 = cost2.min(axis=1)
        # Round 1: two classes c1 < c2 (neither p) both overtake p; the joint gap is the unclipped sum.
        # A pair costs at least max(single costs, joint gap / 3d); pairs whose bound is not below
        # CertR2 cannot lower min(CertR1, CertR2), so only the others get their joint histogram.
        cert1 = np.full(len(p), BIG)
        if len(pairs):
            c1, c2 = pairs[:, 0], pairs[:, 1]
            joint_gap = np.maximum(h_p[:, c1] + h_p[:, c2], 0)  # [b, P]
            bound = np.maximum(np.maximum(cost_p[:, c1], cost_p[:, c2]), -(-joint_gap // (3 * d)))
            bound[(c1[None, :] == p[:, None]) | (c2[None, :] == p[:, None])] = BIG
            row, pair = np.nonzero(bound < cert2[:, None])
            if len(row):
                joint = (d + 2 * per_bucket[row, p[row]] - per_bucket[row, c1[pair]]
                         - per_bucket[row, c2[pair]])  # [selected, K] in 0..3d
                cost_joint = fewest_buckets(histogram(joint, 3 * d + 1), joint_gap[row, pair])
                np.minimum.at(cert1, row, np.maximum(bound[row, pair], cost_joint))
        return np.minimum(np.minimum(cert1, cert2) - 1, n_buckets)

    step = max(1, CHUNK_ELEMENTS // (n_buckets * n_classes))
    radius = np.concatenate(map_chunks(chunk, n, step)) if n else np.zeros(0, np.int64)
    return p_all, radius


def certify_fa(votes, logits, labels, n_classes, feed):
    """FA+ROE radii: (prediction, radius), -1 where wrong."""
    p, radius = fa_roe_radius(votes, logits, feed, n_classes)
    return p, np.where(p == labels, np.maximum(radius, 0), -1)
