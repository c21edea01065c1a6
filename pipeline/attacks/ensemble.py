"""An ensemble of nearest-neighbour base models edited by an attack, evaluated from the clean run's distances.

``ens`` (a dict, built by pipeline.stages.attack.load_ensemble) holds the clean run's layout and learner:
``model_buckets`` int64[n_models, d], ``feed`` int64[n_buckets, d] (the models each bucket feeds), ``offsets``
(circulant offsets or None), ``learner`` (module), ``params``, ``scale``, ``versions``, ``methods`` (e.g.
["dpa", "dpa_roe"]), ``n_classes``, ``n_buckets``, ``hash``, ``members`` (list of int64 sample ids per bucket),
``pool_images``, ``pool_labels`` (every sample a bucket can name), ``device`` and ``train_rows`` (a cache of the
training samples' feature rows: {"rows": None, "filled": bool[n_pool]}). Bucket minima: float32[n_inputs, n_buckets, C], the smallest squared feature
distance from each input to each bucket's samples of each class (pipeline/nearest.py).
"""

import numpy as np

from ..certify.roe import run_off_winner
from ..certify.votes import plurality, vote_counts, votes_from_logits
from ..nearest import bucket_minima, model_scores

CHUNK_ELEMENTS = 2**24  # bucket-minima values evaluated at once (bounds memory)


def predict(minima: np.ndarray, ens: dict):
    """Predictions of the ensemble from bucket minima float32[n, n_b, C]: ({method: int64[n]}, votes
    int16[n, n_models], scores float32[n, n_models, C]); ROE's from every model's scores, as certify's."""
    scores = model_scores(minima, ens["model_buckets"], ens["learner"], ens["scale"], ens["versions"], None,
                          ens["offsets"])
    votes = votes_from_logits(scores)
    counts = vote_counts(votes, ens["n_classes"])
    out = {m: (run_off_winner(counts, scores) if m.endswith("_roe") else plurality(counts)) for m in ens["methods"]}
    return out, votes, scores


def baseline_predict(minima: np.ndarray, ens: dict) -> np.ndarray:
    """The undefended model's predictions (one nearest-neighbour model on the union of all buckets): int64[n]."""
    scores = ens["learner"].scores_from_min_sq(minima.min(axis=1), ens["scale"])
    return votes_from_logits(scores).astype(np.int64)


def predict_all(minima: np.ndarray, ens: dict):
    """predict and baseline_predict over many inputs in chunks: ({method: int64[n], "baseline": int64[n]},
    votes int16[n, n_models])."""
    n = len(minima)
    step = max(1, CHUNK_ELEMENTS // max(1, ens["model_buckets"].size * ens["n_classes"]))
    preds = {m: np.empty(n, np.int64) for m in [*ens["methods"], "baseline"]}
    votes = np.empty((n, len(ens["model_buckets"])), np.int16)
    for start in range(0, n, step):
        rows = slice(start, start + step)
        p, votes[rows], _ = predict(minima[rows], ens)
        p["baseline"] = baseline_predict(minima[rows], ens)
        for m, v in p.items():
            preds[m][rows] = v
    return preds, votes


EMBED_CHUNK = 4096  # training images mapped to features at once (bounds the feature maps' memory)


def train_features(ens: dict, sample_ids: np.ndarray):
    """Feature rows of training samples (with their augmented copies), each sample embedded once and cached in
    ``ens['train_rows']`` (float32[n_pool, copies, D], filled on first use): (float32[M, D], labels int64[M],
    owner int64[M]: the index in ``sample_ids`` each row belongs to)."""
    ids = np.asarray(sample_ids, np.int64)
    cache = ens["train_rows"]
    missing = np.unique(ids[~cache["filled"][ids]])
    for start in range(0, len(missing), EMBED_CHUNK):
        chunk = missing[start:start + EMBED_CHUNK]
        feats, _, rows = ens["learner"].embed_train(ens["pool_images"][chunk], ens["pool_labels"][chunk], ens["params"],
                                                    ens["scale"])
        if cache["rows"] is None:
            copies = len(feats) // len(chunk)
            cache["rows"] = np.empty((len(ens["pool_labels"]), copies, feats.shape[1]), np.float32)  # pages on use
        order = np.argsort(rows, kind="stable")  # each sample's copies together, in their order
        cache["rows"][chunk] = feats[order].reshape(len(chunk), -1, feats.shape[1])
        cache["filled"][chunk] = True
    if cache["rows"] is None or len(ids) == 0:
        return np.zeros((0, ens["features"].shape[1]), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    copies = cache["rows"].shape[1]
    return (cache["rows"][ids].reshape(-1, cache["rows"].shape[2]), np.repeat(ens["pool_labels"][ids], copies),
            np.repeat(np.arange(len(ids)), copies))


def poison_rows(ens: dict, images: np.ndarray, labels: np.ndarray):
    """Feature rows of inserted samples (with their augmented copies): (float32[M, D], labels int64[M], owner
    int64[M]: the poison each row comes from)."""
    if len(images) == 0:
        return np.zeros((0, ens["features"].shape[1]), np.float32), np.zeros(0, np.int64), np.zeros(0, np.int64)
    return ens["learner"].embed_train(images, np.asarray(labels, np.int64), ens["params"], ens["scale"])


def minima_of(ens: dict, inputs, feats, labels, buckets, n_buckets: int, n_classes=None) -> np.ndarray:
    """bucket_minima of ``inputs`` (torch float32[n, D] on ens['device']) over feature rows: float32[n, n_buckets, C]
    (C: ``n_classes``, else the run's)."""
    import torch

    rows = torch.from_numpy(np.ascontiguousarray(feats, np.float32)).to(ens["device"])
    return bucket_minima(inputs, rows, labels, buckets, n_buckets, n_classes or ens["n_classes"])


def edited_buckets(ens: dict, inputs, clean: np.ndarray, insert_images, insert_labels, removed_ids):
    """The bucket minima an edit changes: (touched int64[T] sorted bucket ids, minima float32[n, T, C]).

    ``clean``: the clean bucket minima of ``inputs`` float32[n, n_b, C]; the edit inserts ``insert_images``
    uint8[I, ...] with ``insert_labels`` int[I] (buckets by the run's hash) and removes the training samples
    ``removed_ids``. A (bucket, class) that lost samples is recomputed from the samples it keeps (and those
    inserted into it); any other touched (bucket, class) is the minimum of its clean minimum and the inserted
    samples' distances: both exactly the minima of the edited bucket (exact-integer distances).
    """
    from ..partition import assign_buckets

    insert_labels = np.asarray(insert_labels, np.int64)
    insert_buckets = (assign_buckets(np.asarray(insert_images), ens["n_buckets"], ens["hash"]) if len(insert_images)
                      else np.zeros(0, np.int64))
    removed_ids = np.asarray(removed_ids, np.int64)
    removed_buckets = ens["bucket_of"](removed_ids)
    removed_labels = ens["pool_labels"][removed_ids] if len(removed_ids) else np.zeros(0, np.int64)
    touched = np.unique(np.concatenate([insert_buckets, removed_buckets]))
    recompute = np.zeros((len(touched), ens["n_classes"]), bool)
    recompute[np.searchsorted(touched, removed_buckets), removed_labels] = True
    kept = []  # samples left in the recomputed (bucket, class) pairs
    removed = set(removed_ids.tolist())
    for t, c in zip(*np.nonzero(recompute)):
        members = ens["members"][touched[t]]
        kept += [(i, t) for i in members.tolist() if i not in removed and ens["pool_labels"][i] == c]
    kept_ids = np.asarray([i for i, _ in kept], np.int64)
    kept_feats, kept_labels, kept_owner = train_features(ens, kept_ids)
    kept_local = np.asarray([t for _, t in kept], np.int64)[kept_owner] if len(kept) else kept_owner
    ins_feats, ins_labels, ins_owner = poison_rows(ens, np.asarray(insert_images), insert_labels)
    ins_local = np.searchsorted(touched, insert_buckets)[ins_owner]
    fresh = minima_of(ens, inputs, np.concatenate([kept_feats, ins_feats]), np.concatenate([kept_labels, ins_labels]),
                      np.concatenate([kept_local, ins_local]), len(touched))
    return touched, np.where(recompute[None], fresh, np.minimum(clean[:, touched], fresh))


def changed_inputs(clean: np.ndarray, touched, minima) -> np.ndarray:
    """The inputs whose minima an edit changed (edited_buckets' ``touched``, ``minima``): int64[k]."""
    return np.flatnonzero((minima != clean[:, touched]).any(axis=(1, 2)))


def order_changed(ens: dict, clean: dict, inputs: np.ndarray, touched, lowered, label: int) -> np.ndarray:
    """Whether lowering the class-``label`` minima of the buckets ``touched`` int64[T] to ``lowered``
    float32[k, T] (for the test samples ``inputs`` int64[k]) can change any prediction: bool[k].

    ``clean``: the clean run's ``minima``, ``votes``, ``preds``, ``finalists`` (ROE's first-round pair),
    ``base_minima`` float32[n, C] (the undefended model's) and ``bucket_best`` float32[n, n_b] (each bucket's
    smallest minimum over classes). Only class ``label`` gets nearer, so a prediction can change only where, in some
    model that trains on a touched bucket, ``label`` now reaches the class it voted for (its vote may change) or,
    when ``label`` is one of ROE's finalists, the other finalist (ROE's second round compares those two), or
    reaches the undefended model's prediction: the new minimum at most that class's minimum, and that at most
    the old one (ties included: argmax breaks them by class index). Elsewhere every vote and every comparison
    ROE makes is as before, so every method's prediction is the clean one: those samples need no evaluation.
    """
    out = np.zeros(len(inputs), bool)
    if len(inputs) == 0:
        return out
    roe = any(m.endswith("_roe") for m in ens["methods"])
    m1, m2 = clean["finalists"]
    # a quick superset first: a model's minimum of any class is at most its buckets' (``bucket_best``: the
    # smallest over classes; for ROE, the other finalist's), so an input where the new minima stay above those
    # of the touched buckets cannot reach anything
    near = (lowered <= clean["bucket_best"][np.ix_(inputs, touched)]).any(axis=1)
    if roe:
        other = np.where(m1[inputs] == label, m2[inputs], np.where(m2[inputs] == label, m1[inputs], -1))
        final = np.flatnonzero(other >= 0)
        rival = clean["minima"][inputs[final][:, None], touched[None, :], other[final][:, None]]  # [f, T]
        near[final] |= (lowered[final] <= rival).any(axis=1)
    before = clean["base_minima"][inputs]
    voted = before[np.arange(len(inputs)), clean["preds"]["baseline"][inputs]]
    voted[clean["preds"]["baseline"][inputs] == label] = -np.inf
    out |= reached(np.minimum(before[:, label], lowered.min(axis=1)), before[:, label], voted)
    keep = np.flatnonzero(near & ~out)
    out[keep] = models_reach(ens, clean, inputs[keep], touched, lowered[keep], label, roe)
    return out


def reached(new, old_label, old_other):
    """Whether a class's minimum lowered from ``old_label`` to ``new`` now reaches a class it was above or tied with
    (minimum ``old_other``): the comparison of the two changes (ties included: argmax breaks them by index)."""
    return (new < old_label) & (new <= old_other) & (old_other <= old_label)


def models_reach(ens: dict, clean: dict, inputs: np.ndarray, touched, lowered, label: int, roe: bool) -> np.ndarray:
    """order_changed for the models alone (the exact test, model by model): bool[k]."""
    out = np.zeros(len(inputs), bool)
    if len(inputs) == 0:
        return out
    m1, m2 = clean["finalists"]
    poisoned = models_fed(ens, touched)
    rows_of = ens["model_buckets"][poisoned]  # [P, d]
    position = np.full(ens["n_buckets"], -1, np.int64)
    position[touched] = np.arange(len(touched))
    where = position[rows_of]  # [P, d]: index in ``touched``, -1 for an untouched bucket
    hit = where >= 0

    step = max(1, CHUNK_ELEMENTS // max(1, rows_of.size * ens["n_classes"]))
    for start in range(0, len(inputs), step):
        block = slice(start, start + step)
        tests = inputs[block]
        rows = clean["minima"][np.ix_(tests, rows_of.ravel())].reshape(len(tests), *rows_of.shape, ens["n_classes"])
        old = rows.min(axis=2)  # [s, P, C]: the poisoned models' minima before
        mine = rows[..., label]  # [s, P, d]
        mine[:, hit] = np.minimum(mine[:, hit], lowered[block][:, where[hit]])
        new = mine.min(axis=2)  # [s, P]: their class-label minima after
        old_label = old[..., label]
        votes = clean["votes"][np.ix_(tests, poisoned)].astype(np.int64)
        voted = np.take_along_axis(old, votes[..., None], 2)[..., 0]
        voted[votes == label] = -np.inf  # a model that votes ``label`` already keeps that vote
        flag = reached(new, old_label, voted).any(axis=1)
        if roe:
            other = np.where(m1[tests] == label, m2[tests], np.where(m2[tests] == label, m1[tests], -1))
            final = other >= 0
            rival = old[np.arange(len(tests)), :, np.maximum(other, 0)]  # [s, P]
            flag |= final & reached(new, old_label, rival).any(axis=1)
        out[block] = flag
    return out


def attacked_predictions(ens: dict, clean: np.ndarray, clean_preds: dict, clean_votes: np.ndarray, touched,
                         minima_rows, changed, poisoned_models: np.ndarray):
    """Predictions of the attacked ensemble (and the undefended model) on every input, and how many poisoned
    models changed their vote on each.

    clean float32[n, n_b, C], clean_preds {method or "baseline": int64[n]} and clean_votes int16[n, n_models]:
    the clean run's; the edit changed the minima of the inputs ``changed`` int64[k] in the buckets ``touched``
    int64[T] to ``minima_rows`` float32[k, T, C]. Only those inputs are evaluated again (any other input's
    scores are the clean ones). Returns ({method or "baseline": int64[n]}, votes_changed int64[n]).
    """
    preds = {m: p.copy() for m, p in clean_preds.items()}
    votes_changed = np.zeros(len(clean), np.int64)
    step = max(1, CHUNK_ELEMENTS // max(1, ens["model_buckets"].size * ens["n_classes"]))
    for start in range(0, len(changed), step):
        rows = changed[start:start + step]
        edited = clean[rows]
        edited[:, touched] = minima_rows[start:start + step]
        p, votes, _ = predict(edited, ens)
        p["baseline"] = baseline_predict(edited, ens)
        for m, v in p.items():
            preds[m][rows] = v
        votes_changed[rows] = (votes[:, poisoned_models] != clean_votes[rows][:, poisoned_models]).sum(axis=1)
    return preds, votes_changed


def models_fed(ens: dict, buckets) -> np.ndarray:
    """The models that train on any of ``buckets``: sorted int64[m]."""
    return np.unique(ens["feed"][np.asarray(buckets, np.int64)])


def rebuilt(ens: dict, touched, poisoned) -> dict:
    """What an edit rebuilds: its buckets, the models that train on them and the shards (of shard_size models)
    holding those."""
    return {"buckets_recomputed": len(touched), "models_rebuilt": len(poisoned),
            "shards_touched": len(np.unique(np.asarray(poisoned) // ens["shard_size"]))}


def fit_poisons(ens: dict, images, labels, removed_ids=(), keys=None, cache=None) -> tuple[int, int, float]:
    """Poisoning overfitting: how many base models got inserted samples, how many of those predict the label of
    every one of them (training accuracy 1 on its poisons), and their mean training accuracy on their poisons.

    Every poisoned model is rebuilt from its buckets' samples after the edit (``removed_ids`` removed, the
    inserted ``images`` added) and predicts its own inserted samples. Returns (poisoned, fit, accuracy).
    ``keys`` (one hashable per inserted sample) and ``cache`` (a dict): a model holding the same poisons as in an
    earlier call (and nothing removed) is not evaluated again.
    """
    import torch

    from ..partition import assign_buckets

    if len(images) == 0:
        return 0, 0, float("nan")
    images, labels = np.asarray(images), np.asarray(labels, np.int64)
    buckets = assign_buckets(images, ens["n_buckets"], ens["hash"])
    removed = set(np.asarray(removed_ids, np.int64).tolist())
    poisoned = models_fed(ens, buckets)
    mine = {m: np.flatnonzero(np.isin(buckets, ens["model_buckets"][m])) for m in poisoned.tolist()}  # its poisons
    use_cache = cache is not None and keys is not None and not removed
    key = {m: (m, tuple(keys[i] for i in own.tolist())) for m, own in mine.items()} if use_cache else {}
    hits = {m: cache[key[m]] for m in mine if use_cache and key[m] in cache}
    needed = np.unique(np.concatenate([mine[m] for m in mine if m not in hits] or [np.zeros(0, np.int64)]))
    if len(needed):  # only the poisons of models not evaluated before are embedded
        inputs_q, _ = ens["learner"].embed_test(images[needed], ens["params"])
        inputs = torch.from_numpy(inputs_q).to(ens["device"])
        ins_feats, ins_labels, ins_owner = poison_rows(ens, images[needed], labels[needed])
    for model, own in mine.items():
        if model in hits:
            continue
        ids = np.concatenate([ens["members"][b] for b in ens["model_buckets"][model]])
        ids = ids[[i not in removed for i in ids.tolist()]] if removed else ids
        feats, lab, _ = train_features(ens, ids)
        local = np.searchsorted(needed, own)  # its poisons' positions among the embedded ones
        rows = np.isin(ins_owner, local)
        all_feats = np.concatenate([feats, ins_feats[rows]])
        all_labels = np.concatenate([lab, ins_labels[rows]])
        minima = minima_of(ens, inputs[torch.from_numpy(local).to(ens["device"])], all_feats, all_labels,
                           np.zeros(len(all_labels), np.int64), 1)
        guesses = votes_from_logits(ens["learner"].scores_from_min_sq(minima[:, 0], ens["scale"]))
        hits[model] = int((guesses == labels[own]).sum())
        if use_cache:
            cache[key[model]] = hits[model]
    fit = sum(hits[m] == len(own) for m, own in mine.items())
    total = sum(len(own) for own in mine.values())
    return len(poisoned), fit, sum(hits.values()) / total
