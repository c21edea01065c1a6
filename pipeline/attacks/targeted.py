"""Targeted, hash-aware attack (docs/attacks.md#targeted): near-copies of one target test sample, labelled with
its runner-up class, each nudged into a bucket whose models still vote for the prediction.

Against nearest-neighbour base models a near-copy of the target is (almost always) its nearest neighbour, so
every model that trains on the poisoned bucket now votes for the runner-up: for DPA, radius + 1 poisons flip
the plurality. The plan is greedy, one poison at a time: the next bucket is the unused one whose models gain
the attack most (votes taken from the prediction count 2, votes for a third class 1; then the models that
still score the prediction above the runner-up, which Run-Off Election's second round counts), nearest
in pixel sum under the pixel_sum hash. An attack of budget B inserts the plan's first B poisons.
"""

import numpy as np

from ..certify.roe import finalists, run_off_winner
from ..certify.votes import plurality, vote_counts, votes_from_logits
from ..errors import PipelineError
from ..nearest import model_scores
from . import soundness
from .crafting import nudge_sum, search, sum_shifts
from .ensemble import (
    attacked_predictions,
    fit_poisons,
    minima_of,
    models_fed,
    order_changed,
    poison_rows,
    predict,
    rebuilt,
)

FAR = 2**62


def runner_up(counts: np.ndarray, prediction: int) -> int:
    """The class closest to overtaking ``prediction`` by votes (ties as DPA's certificate breaks them: the
    smaller class index wins a tie, so it is the closer rival): int."""
    rival = counts.astype(np.int64) + (np.arange(len(counts)) < prediction)
    rival[prediction] = np.iinfo(np.int64).min
    return int(np.argmax(rival))


def plan(ens: dict, clean_row: np.ndarray, image: np.ndarray, test_input, max_budget: int, rng) -> dict:
    """The poisons against one target, and the predictions after each.

    clean_row float32[n_b, C]: the target's clean bucket minima; ``image`` its uint8 image; ``test_input`` its
    features (torch float32[1, D]). Poisons are added until every method and the undefended model are
    flipped, no unused bucket can gain the attack anything, or ``max_budget`` poisons.

    Returns images uint8[L, ...], buckets int64[L], ``rows`` (each poison's feature rows, float32[copies, D]), the
    label (runner-up class), the prediction, and
    ``steps``: {method or "baseline": int64[L + 1]} the target's prediction after 0 .. L poisons.
    """
    row = clean_row.copy()
    preds, votes, scores = predict(row[None], ens)
    p = int(preds[ens["methods"][0]][0])
    votes, scores = votes[0].copy(), scores[0].copy()
    counts = np.bincount(votes, minlength=ens["n_classes"])
    c = runner_up(counts, p)
    base_min = row.min(axis=0)
    learner, scale = ens["learner"], ens["scale"]
    steps = {m: [int(v[0])] for m, v in preds.items()}
    steps["baseline"] = [int(np.argmax(learner.scores_from_min_sq(base_min, scale)))]
    n_b = ens["n_buckets"]
    shifts = sum_shifts(image, n_b) if ens["hash"] == "pixel_sum" else None
    used = np.zeros(n_b, bool) if shifts is None else np.abs(shifts) >= FAR
    images, buckets, rows = [], [], []  # rows: each poison's feature rows (with its augmented copies)
    n_models = len(ens["model_buckets"])
    while len(images) < max_budget and any(s[-1] == p for s in steps.values()):
        gain = 2 * (votes == p) + ((votes != p) & (votes != c))  # the vote gap between p and c each model closes
        second = scores[:, p] > scores[:, c]  # models still preferring p to c (ROE's second round)
        key = gain[ens["feed"]].sum(axis=1) * (n_models * ens["feed"].shape[1] + 1) + second[ens["feed"]].sum(axis=1)
        key[used] = -1
        if key.max() <= 0:
            break
        wanted = key == key.max()
        if shifts is not None:
            b = int(np.flatnonzero(wanted)[np.argmin(np.abs(shifts[wanted]))])  # the smallest nudge (then bucket id)
            poison = nudge_sum(image, int(shifts[b]))
        else:
            found = search(image, wanted, n_b, ens["hash"], rng, tries=32 * n_b) or search(
                image, key > 0, n_b, ens["hash"], rng, tries=32 * n_b)
            if found is None:
                break
            poison, b = found
        used[b] = True
        feats, _, _ = poison_rows(ens, poison[None], np.array([c]))
        rows.append(feats)
        dist = minima_of(ens, test_input, feats, np.zeros(len(feats), np.int64), np.zeros(len(feats), np.int64), 1,
                         n_classes=1)[0, 0, 0]
        row[b, c] = min(row[b, c], dist)
        base_min[c] = min(base_min[c], dist)
        images.append(poison)
        buckets.append(b)
        models = ens["feed"][b]  # only the models that train on bucket b change
        fresh = model_scores(row[None], ens["model_buckets"][models], learner, scale, ens["versions"])[0]
        scores[models] = fresh
        votes[models] = votes_from_logits(fresh)
        counts = np.bincount(votes, minlength=ens["n_classes"])[None]
        for m in ens["methods"]:
            winner = run_off_winner(counts, scores[None]) if m.endswith("_roe") else plurality(counts)
            steps[m].append(int(winner[0]))
        steps["baseline"].append(int(np.argmax(learner.scores_from_min_sq(base_min, scale))))
    shape = image.shape
    return {"images": np.asarray(images, np.uint8).reshape(len(images), *shape), "buckets": np.asarray(buckets, np.int64),
            "rows": rows, "label": c, "prediction": p, "steps": {m: np.asarray(v, np.int64) for m, v in steps.items()}}


def flip_budget(steps: np.ndarray, prediction: int):
    """The fewest poisons after which the prediction differs from ``prediction`` (0: already at the start), or
    None if it never does."""
    flipped = np.flatnonzero(steps != prediction)
    return int(flipped[0]) if len(flipped) else None


def poison_distances(ens: dict, inputs, rows: list) -> np.ndarray:
    """Squared feature distance from every input (torch float32[n, D]) to each poison (its nearest augmented
    copy; ``rows``: each poison's feature rows, as plan gives them): float32[n, L], exactly the values the poisons
    add to their buckets' minima of their class."""
    owner = np.repeat(np.arange(len(rows)), [len(r) for r in rows])
    return minima_of(ens, inputs, np.concatenate(rows), np.zeros(len(owner), np.int64), owner, len(rows),
                     n_classes=1)[:, :, 0]


def run(ens: dict, clean: dict, settings: dict, rng) -> tuple[dict, dict]:
    """The attack on ``settings['targets']`` targets drawn (``rng``) among the test samples every method classifies
    correctly, each on its own: (result, edits {target test id: (poison images, labels)})."""
    methods, labels, minima = ens["methods"], clean["labels"], clean["minima"]
    clean = {**clean, "base_minima": minima.min(axis=1), "bucket_best": minima.min(axis=2),  # for order_changed
             "finalists": finalists(vote_counts(clean["votes"], ens["n_classes"]))}
    correct = np.flatnonzero(np.logical_and.reduce([clean["preds"][m] == labels for m in methods]))
    targets = np.sort(rng.choice(correct, size=min(settings["targets"], len(correct)), replace=False))
    cap = settings["max_budget"] or ens["n_buckets"]
    grid = [r for r in clean["radii"] if r >= 1]
    records, edits, checked = [], {}, 0
    for t in targets.tolist():
        target_input = clean["inputs"][t:t + 1]
        pl = plan(ens, minima[t], clean["images"][t], target_input, cap, rng)
        p, c, n = pl["prediction"], pl["label"], len(pl["buckets"])
        flips = {m: flip_budget(s, p) for m, s in pl["steps"].items()}
        radius = {m: int(clean["radius"][m][t]) for m in methods}
        distances = poison_distances(ens, clean["inputs"], pl["rows"]) if n else np.zeros((len(labels), 0))
        budgets = {b for b in [*grid, *flips.values(), *radius.values(), *(r + 1 for r in radius.values()), n]
                   if b is not None and 1 <= b <= n}
        figures, fit_cache = {}, {}
        for budget in sorted(budgets):
            order = np.argsort(pl["buckets"][:budget])
            touched = pl["buckets"][:budget][order]
            before = minima[:, touched, c]
            after = np.minimum(before, distances[:, :budget][:, order])
            lowered = np.flatnonzero((after < before).any(axis=1))
            changed = lowered[order_changed(ens, clean, lowered, touched, after[lowered], c)]
            rows = minima[np.ix_(changed, touched)]
            rows[:, :, c] = after[changed]
            poisoned = models_fed(ens, touched)
            preds, votes_changed = attacked_predictions(ens, minima, clean["preds"], clean["votes"], touched, rows,
                                                        changed, poisoned)
            for m in [*methods, "baseline"]:
                if preds[m][t] != pl["steps"][m][budget]:
                    raise PipelineError(f"targeted attack on test sample {t}: the attacked ensemble's {m} prediction "
                                        f"after {budget} poisons is {int(preds[m][t])} evaluated on every test sample, "
                                        f"{int(pl['steps'][m][budget])} evaluated on the target alone; a bug in "
                                        "pipeline/attacks, report it")
            checked += soundness.check("targeted", budget, methods, clean["radius"], clean["preds"], preds)
            if budget in grid or budget == n:
                n_poisoned, n_fit, _ = fit_poisons(ens, pl["images"][:budget], np.full(budget, c),
                                                   keys=list(range(budget)), cache=fit_cache)
                figures[budget] = {"models_poisoned": n_poisoned, "models_fit": n_fit,
                                   "votes_changed": int(votes_changed[t]), "models_rebuilt": len(poisoned),
                                   "shards_touched": rebuilt(ens, touched, poisoned)["shards_touched"]}
        records.append({"test_id": t, "label": int(labels[t]), "runner_up": c, "poisons": n, "radius": radius,
                        "flip_budget": flips,
                        "figures": {str(b): figures[min(b, n)] for b in grid if min(b, n) in figures}})
        edits[t] = (pl["images"], np.full(n, c, np.int64))
    return {"attack": "targeted", "max_budget": cap, "targets": records, "budgets": summarize(records, methods, grid),
            "curve": curve(records, methods, grid), "tightness": tightness(records, methods),
            "certificates_checked": checked}, edits


def curve(records: list, methods, grid) -> dict:
    """The share of targets flipped by at most B poisons, and certified at radius >= B, at every budget B from 0
    to past the last flip (or the last of ``grid``): {"budget": [...], "success_rate": {method or "baseline":
    [...]}, "certified": {method: [...]}}."""
    flips = [r["flip_budget"][m] for r in records for m in r["flip_budget"] if r["flip_budget"][m] is not None]
    top = max([*grid, *flips, 0]) + 1
    budgets = np.arange(top + 1)
    n = max(1, len(records))

    def flipped(values):  # per B: the share of targets whose flip budget (None: never) is at most B
        known = np.sort(np.asarray([v for v in values if v is not None], np.int64))
        return (np.searchsorted(known, budgets, side="right") / n).tolist()

    def certified(radii):  # per B: the share of targets whose radius is at least B
        ordered = np.sort(np.asarray(radii, np.int64))
        return ((len(ordered) - np.searchsorted(ordered, budgets, side="left")) / n).tolist()

    return {"budget": budgets.tolist(),
            "success_rate": {m: flipped([r["flip_budget"][m] for r in records]) for m in [*methods, "baseline"]},
            "certified": {m: certified([r["radius"][m] for r in records]) for m in methods}}


def summarize(records: list, methods, grid) -> list:
    """Per budget B of ``grid``: the share of targets flipped by at most B poisons (each method and the undefended
    model), the share certified at radius >= B (which no attack of budget B may flip), and the mean
    poisoning-overfitting figures over the targets."""
    rows = []
    n = max(1, len(records))
    for budget in [0, *grid]:
        row = {"budget": budget,
               "success_rate": {m: sum(r["flip_budget"][m] is not None and r["flip_budget"][m] <= budget
                                       for r in records) / n for m in [*methods, "baseline"]},
               "certified": {m: sum(r["radius"][m] >= budget for r in records) / n for m in methods}}
        figures = [r["figures"][str(budget)] for r in records if str(budget) in r["figures"]]
        for key in ("models_poisoned", "models_fit", "votes_changed"):
            row[f"{key}_mean"] = float(np.mean([f[key] for f in figures])) if figures else 0.0
        rows.append(row)
    return rows


def tightness(records: list, methods) -> dict:
    """Per method: targets flipped within their radius (a soundness violation, so 0), flipped by exactly radius + 1
    poisons, flipped later, never flipped; and the median number of poisons beyond radius + 1."""
    out = {}
    for m in methods:
        extra = [r["flip_budget"][m] - r["radius"][m] - 1 for r in records if r["flip_budget"][m] is not None]
        out[m] = {"targets": len(records),
                  "flipped_within_radius": sum(e < 0 for e in extra),
                  "flipped_at_radius_plus_one": sum(e == 0 for e in extra),
                  "flipped_later": sum(e > 0 for e in extra),
                  "never_flipped": len(records) - len(extra),
                  "median_extra_poisons": float(np.median(extra)) if extra else None}
    return out
