"""Plain per-sample loop implementations of the certificates, written straight from the
definitions (docs/design.md#certificates) with sorting instead of histograms. Used by the benchmark as
the baseline and by the tests as an independent cross-check of the vectorised code.
"""

import math


def counts_of(votes, n_classes):
    counts = [0] * n_classes
    for v in votes:
        counts[v] += 1
    return counts


def plurality(counts):
    return max(range(len(counts)), key=lambda c: (counts[c], -c))


def fewest(reductions, gap):
    """Fewest buckets whose largest reductions sum to >= gap (len + 1 if impossible)."""
    if gap <= 0:
        return 0
    total = 0
    for used, r in enumerate(sorted(reductions, reverse=True), start=1):
        total += r
        if total >= gap:
            return used
    return len(reductions) + 1


def dpa(votes, label, n_classes):
    counts = counts_of(votes, n_classes)
    pred = plurality(counts)
    if pred != label:
        return pred, -1
    rival = max(counts[c] + (c < pred) for c in range(n_classes) if c != pred)
    return pred, (counts[pred] - rival) // 2


def fa(votes, label, n_classes, feed):
    counts = counts_of(votes, n_classes)
    y = plurality(counts)
    if y != label:
        return y, -1
    best = len(feed)
    for c in range(n_classes):
        if c == y:
            continue
        gap = counts[y] - counts[c] - (c < y)
        deltas = [sum(1 + (votes[i] == y) - (votes[i] == c) for i in models) for models in feed]
        best = min(best, fewest(deltas, gap + 1) - 1)
    return y, min(best, len(feed))


def run_off(votes, logits, n_classes):
    counts = counts_of(votes, n_classes)
    order = sorted(range(n_classes), key=lambda c: (-counts[c], c))
    m1, m2 = order[0], order[1]
    e12 = 2 * sum(z[m1] > z[m2] for z in logits) - len(logits)
    p = m1 if e12 > 0 else m2 if e12 < 0 else min(m1, m2)
    return counts, p, (m2 if p == m1 else m1)


def dpa_roe(votes, logits, label, n_classes):
    counts, p, s = run_off(votes, logits, n_classes)
    if p != label:
        return p, -1
    g = lambda a, c: max(counts[a] - counts[c] + (c > a), 0)  # noqa: E731
    gaps = sorted(g(p, c) for c in range(n_classes) if c != p)
    cert1 = math.inf
    if len(gaps) >= 2:
        g1, g2 = gaps[0], gaps[1]
        cert1 = max(math.ceil((g1 + g2) / 3), math.ceil(g1 / 2), math.ceil(g2 / 2))
    cert2 = math.inf
    for c in range(n_classes):
        if c == p:
            continue
        e = 2 * sum(z[p] > z[c] for z in logits) - len(logits)
        cert2 = min(cert2, max(math.ceil(g(s, c) / 2), math.ceil(max(e + (c > p), 0) / 2)))
    return p, max(0, min(min(cert1, cert2) - 1, len(votes)))  # correct: certified at 0 at least


def fa_roe(votes, logits, label, n_classes, feed):
    counts, p, s = run_off(votes, logits, n_classes)
    if p != label:
        return p, -1
    h = lambda a, c: counts[a] - counts[c] + (c > a)  # noqa: E731

    def vote_cost(a, c):
        return fewest([sum(1 + (votes[i] == a) - (votes[i] == c) for i in models) for models in feed], h(a, c))

    cert1 = math.inf
    others = [c for c in range(n_classes) if c != p]
    for x, c1 in enumerate(others):
        for c2 in others[x + 1:]:
            joint = fewest([sum(1 + 2 * (votes[i] == p) - (votes[i] == c1) - (votes[i] == c2) for i in models)
                            for models in feed], h(p, c1) + h(p, c2))
            cert1 = min(cert1, max(vote_cost(p, c1), vote_cost(p, c2), joint))
    cert2 = math.inf
    for c in others:
        e = 2 * sum(z[p] > z[c] for z in logits) - len(logits)
        r2 = fewest([2 * sum(logits[i][p] > logits[i][c] for i in models) for models in feed], e + (c > p))
        cert2 = min(cert2, max(vote_cost(s, c), r2))
    return p, max(0, min(min(cert1, cert2) - 1, len(feed)))  # correct: certified at 0 at least
