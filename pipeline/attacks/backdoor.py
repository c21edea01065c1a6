"""Backdoor with a patch trigger (docs/attacks.md#backdoor): B training images of other classes, stamped with
a small checkerboard patch (crafting.stamp), inserted with the target class as their label.

Success: the share of triggered test images (test images of other classes with the patch) that the attacked
ensemble assigns to the target class. The triggered images are certified like test samples (the radius of the
clean prediction, whatever the label): one that is certified at radius >= B and not predicted as the target
class cannot be turned by B poisons, which bounds the success rate (``certified_bound``).
"""

import numpy as np

from ..certify import METHODS, run_off_data
from . import soundness
from .crafting import stamp
from .ensemble import (
    EMBED_CHUNK,
    attacked_predictions,
    changed_inputs,
    edited_buckets,
    fit_poisons,
    minima_of,
    models_fed,
    predict,
    predict_all,
    rebuilt,
    train_features,
)

CERTIFY_CHUNK = 256  # triggered images certified at once


def clean_minima(ens: dict, inputs) -> np.ndarray:
    """The clean run's bucket minima of new inputs (torch float32[n, D]): every training sample's distance,
    reduced per bucket and class as the distances step does (a chunk of samples at a time, the minimum over
    chunks): float32[n, n_b, C]."""
    out = None
    for start in range(0, len(ens["train_ids"]), EMBED_CHUNK):
        ids = ens["train_ids"][start:start + EMBED_CHUNK]
        feats, labels, owner = train_features(ens, ids)
        part = minima_of(ens, inputs, feats, labels, ens["bucket_of"](ids)[owner], ens["n_buckets"])
        out = part if out is None else np.minimum(out, part, out=out)
    return out if out is not None else np.full((len(inputs), ens["n_buckets"], ens["n_classes"]), np.inf, np.float32)


def prediction_radii(ens: dict, minima: np.ndarray, preds: dict) -> dict:
    """Every method's radius of the clean prediction ``preds[method]`` of inputs with bucket minima ``minima``:
    {method: int64[n]} (the certificates with the prediction as the label)."""
    out = {m: np.empty(len(minima), np.int64) for m in ens["methods"]}
    for start in range(0, len(minima), CERTIFY_CHUNK):
        rows = slice(start, start + CERTIFY_CHUNK)
        _, votes, scores = predict(minima[rows], ens)
        beats = run_off_data(ens["methods"], votes, scores, ens["n_classes"])
        for m in ens["methods"]:
            prediction, radius = METHODS[m]["certify"](votes, beats, preds[m][rows], ens["n_classes"], ens["feed"])
            out[m][rows] = radius
    return out


def run(ens: dict, clean: dict, settings: dict, rng) -> tuple[dict, dict]:
    """The attack at every budget of ``settings['budgets']``: (result, edits {budget: (insert images, labels,
    removed ids)})."""
    import torch

    methods, target, patch = ens["methods"], settings["target_class"], settings["patch"]
    others = np.flatnonzero(clean["labels"] != target)
    trig_ids = np.sort(rng.choice(others, size=min(settings["triggered"], len(others)), replace=False))
    trig_images = stamp(clean["images"][trig_ids], patch)
    trig_q, _ = ens["learner"].embed_test(trig_images, ens["params"])
    trig_inputs = torch.from_numpy(trig_q).to(ens["device"])
    trig_minima = clean_minima(ens, trig_inputs)
    trig_preds, trig_votes = predict_all(trig_minima, ens)
    trig_radius = prediction_radii(ens, trig_minima, trig_preds)
    carriers = rng.permutation(ens["train_ids"][ens["pool_labels"][ens["train_ids"]] != target])
    rows, edits, checked = [], {}, 0
    every = [*methods, "baseline"]
    for budget in sorted(settings["budgets"]):
        images = stamp(ens["pool_images"][np.sort(carriers[:budget])], patch)
        labels = np.full(len(images), target, np.int64)
        touched, minima = edited_buckets(ens, clean["inputs"], clean["minima"], images, labels, [])
        changed = changed_inputs(clean["minima"], touched, minima)
        poisoned = models_fed(ens, touched)
        preds, _ = attacked_predictions(ens, clean["minima"], clean["preds"], clean["votes"], touched,
                                        minima[changed], changed, poisoned)
        checked += soundness.check("backdoor", budget, methods, clean["radius"], clean["preds"], preds)
        touched, minima = edited_buckets(ens, trig_inputs, trig_minima, images, labels, [])
        changed = changed_inputs(trig_minima, touched, minima)
        trig_attacked, votes_changed = attacked_predictions(ens, trig_minima, trig_preds, trig_votes, touched,
                                                            minima[changed], changed, poisoned)
        checked += soundness.check("backdoor", budget, methods, trig_radius, trig_preds, trig_attacked,
                                   inputs="triggered test sample", ids=trig_ids)
        n_poisoned, n_fit, fit_accuracy = fit_poisons(ens, images, labels)
        rows.append({
            "budget": budget, "inserted": len(images),  # fewer than the budget only when carriers run out
            "success_rate": {m: float((trig_attacked[m] == target).mean()) for m in every},
            "certified_bound": {m: float(1 - ((trig_radius[m] >= budget) & (trig_preds[m] != target)).mean())
                                for m in methods},
            "accuracy": {m: float((preds[m] == clean["labels"]).mean()) for m in every},
            "models_poisoned": n_poisoned, "models_fit": n_fit, "poison_train_accuracy": fit_accuracy,
            "votes_changed_mean": float(votes_changed.mean()),
            **rebuilt(ens, touched, poisoned),
        })
        edits[budget] = (images, labels, np.zeros(0, np.int64))
    clean_rate = {m: float((trig_preds[m] == target).mean()) for m in every}
    return {"attack": "backdoor", "target_class": target, "patch": patch, "triggered": len(trig_ids),
            "clean_success_rate": clean_rate, "budgets": rows, "certificates_checked": checked}, edits
