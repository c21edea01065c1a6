"""Label flipping (docs/attacks.md#label-flip): B / 2 training samples removed and inserted back with another
label (each costs 2: one removal, one insertion), the class the clean ensemble confuses most with their own.

The samples are drawn at random (a fixed seed) from the run's training set; a larger budget flips the same
samples and more. Success: the drop of clean accuracy, against the certified accuracy at the same radius
(soundness: a sample certified at radius >= B keeps its prediction, so accuracy under attack stays above).
"""

import numpy as np

from . import soundness
from .ensemble import attacked_predictions, changed_inputs, edited_buckets, fit_poisons, models_fed, rebuilt


def most_confused(predictions: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """For every class y, the class the predictions most often give to samples of class y (other than y; ties
    to the smaller class; (y + 1) mod C when it is never confused): int64[C]."""
    confusion = np.zeros((n_classes, n_classes), np.int64)
    np.add.at(confusion, (labels, predictions), 1)
    np.fill_diagonal(confusion, -1)
    out = np.argmax(confusion, axis=1)
    never = confusion.max(axis=1) <= 0
    out[never] = (np.arange(n_classes)[never] + 1) % n_classes
    return out


def run(ens: dict, clean: dict, settings: dict, rng) -> tuple[dict, dict]:
    """The attack at every budget of ``settings['budgets']``: (result, edits {budget: (insert images, labels,
    removed ids)})."""
    methods = ens["methods"]
    labels = clean["labels"]
    flip_to = most_confused(clean["preds"][methods[0]], labels, ens["n_classes"])
    order = rng.permutation(ens["train_ids"])
    rows, edits, checked = [], {}, 0
    for budget in sorted(settings["budgets"]):
        ids = np.sort(order[:budget // 2])
        images, new_labels = ens["pool_images"][ids], flip_to[ens["pool_labels"][ids]]
        touched, minima = edited_buckets(ens, clean["inputs"], clean["minima"], images, new_labels, ids)
        changed = changed_inputs(clean["minima"], touched, minima)
        poisoned = models_fed(ens, touched)
        preds, votes_changed = attacked_predictions(ens, clean["minima"], clean["preds"], clean["votes"], touched,
                                                    minima[changed], changed, poisoned)
        checked += soundness.check("label_flip", budget, methods, clean["radius"], clean["preds"], preds)
        n_poisoned, n_fit, fit_accuracy = fit_poisons(ens, images, new_labels, ids)
        rows.append({
            "budget": budget, "flipped_samples": len(ids),
            "accuracy": {m: float((preds[m] == labels).mean()) for m in [*methods, "baseline"]},
            "certified_accuracy": {m: float((clean["radius"][m] >= budget).mean()) for m in methods},
            "predictions_changed": {m: int((preds[m] != clean["preds"][m]).sum()) for m in [*methods, "baseline"]},
            "models_poisoned": n_poisoned, "models_fit": n_fit, "poison_train_accuracy": fit_accuracy,
            "votes_changed_mean": float(votes_changed.mean()),
            **rebuilt(ens, touched, poisoned),
        })
        edits[budget] = (images, new_labels, ids)
    clean_accuracy = {m: float((clean["preds"][m] == labels).mean()) for m in [*methods, "baseline"]}
    return {"attack": "label_flip", "flip_to": flip_to.tolist(), "clean_accuracy": clean_accuracy,
            "budgets": rows, "certificates_checked": checked}, edits
