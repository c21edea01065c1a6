"""Attack stage (rules/attack.smk): empirical poisoning attacks on a run's ensemble (docs/attacks.md).

``attack_run``: one attack family on one run, at every budget of its settings. The clean run's artifacts are
read, never written: its bucket distances (checked against the bucket-group and shard files, the learner and the
test set as certify checks them), its certificates (which must record the same provenance, and whose
predictions the clean ensemble must reproduce bit for bit). Each attack's edit (insertions and removals) is
written where the edit machinery reads it (``insert:`` / ``exclude:`` of a run), under
``work/<run>/attacks/<attack>/edits/``; the attacked ensemble is evaluated by rebuilding only the buckets the
edit touches (pipeline/attacks/ensemble.py), and checked against every certificate (soundness).

``attack_summary``: the families' results as ``metrics/<run>_attacks.json``, ``plots/<run>_attacks.csv`` and
``plots/<run>_attacks.png``.
"""

import numpy as np

from .. import learners, provenance
from ..artifacts.attacks import read_result, write_edits, write_result, write_summary
from ..artifacts.certificates import read_certificates
from ..artifacts.distances import checked_distances, load_test_features, read_bucket_minima, read_bucket_record
from ..artifacts.partition_files import read_bucket_group, read_layout
from ..artifacts.splits import load_test_subset, test_digests
from ..atomic import check_folder
from ..certify import label_of
from ..certify.buckets import bucket_feeds, circulant_offsets
from ..edits import training_pool
from ..errors import PipelineError

FAMILY_SEEDS = {"targeted": 1, "label_flip": 2, "backdoor": 3}  # one random stream per family and seed


def load_ensemble(distance_paths, group_paths, shard_paths, certificates_path, features_path, test_path, train_path,
                  inserted_path, learner_name, learner_params, test_limit=None, device="auto"):
    """The clean run, checked: (ens, clean). ``ens``: see pipeline/attacks/ensemble.py; ``clean``: ``minima``
    float32[n_test, n_b, C] (every bucket's), ``inputs`` (test features, torch), ``images``, ``labels``,
    ``preds`` {method or "baseline": int64[n_test]}, ``votes`` int16[n_test, n_models], ``radius`` {method:
    int64[n_test]} (the certificates, -1 where wrong)."""
    import torch

    from ..attacks.ensemble import predict_all

    redo = "run snakemake again (it rebuilds what is stale)"
    if not learners.is_decomposable(learner_name):
        raise PipelineError(f"attacks need a nearest-neighbour learner with shared distances (orient_nn or hog_nn), "
                            f"not {learner_name!r}")
    params = learners.resolve_params(learner_name, learner_params)
    spec = provenance.learner_spec(learner_name, params)
    shards, models, model_buckets, _ = read_layout(shard_paths)
    images, labels, class_names = load_test_subset(test_path, test_limit)
    origin = checked_distances(distance_paths, group_paths, models, model_buckets, spec, test_digests(images, labels))
    table, recorded = read_certificates(certificates_path)
    if recorded != origin:
        raise PipelineError(f"{certificates_path}: stale, its provenance is not that of the run's distances and "
                            f"partition files; {redo}")
    features, record = load_test_features(features_path)
    if record["features_sha256"] != read_bucket_record(distance_paths[0])["test_features_sha256"]:
        raise PipelineError(f"{features_path}: not the test features the distances were computed from; {redo}")
    groups = [read_bucket_group(p) for p in group_paths]
    n_classes = len(class_names)
    minima = np.empty((len(labels), sum(len(g["buckets"]) for g in groups), n_classes), np.float32)
    start = 0
    for path, group in zip(distance_paths, groups):
        part = read_bucket_minima(path)
        minima[:, start:start + part.shape[1]] = part
        start += part.shape[1]
    members = [np.asarray(b["sample_ids"], np.int64) for g in groups for b in g["buckets"]]
    pool_images, pool_labels, _ = training_pool(train_path, inserted_path)
    bucket_of_id = np.full(len(pool_labels), -1, np.int64)
    for b, ids in enumerate(members):
        bucket_of_id[ids] = b

    def bucket_of(ids):
        found = bucket_of_id[np.asarray(ids, np.int64)]
        if (found < 0).any():
            raise PipelineError(f"training sample {int(np.asarray(ids)[found < 0][0])} is not in the run's training set")
        return found

    feed = bucket_feeds(model_buckets)
    dev = learners.pick_device(device)
    info = shards[0]
    methods = [c[len("radius_"):] for c in table.columns if c.startswith("radius_")]
    ens = {"model_buckets": model_buckets, "feed": feed, "offsets": circulant_offsets(feed),
           "learner": learners.get(learner_name), "params": params, "scale": record["scale"],
           "versions": info.get("versions", 1), "methods": methods, "n_classes": n_classes,
           "n_buckets": len(members), "hash": info["hash"], "members": members, "bucket_of": bucket_of,
           "train_ids": np.sort(np.concatenate(members)) if members else np.zeros(0, np.int64),
           "pool_images": pool_images, "pool_labels": pool_labels, "features": features, "device": dev,
           "shard_size": len(shards[0]["models"]),
           "train_rows": {"rows": None, "filled": np.zeros(len(pool_labels), bool)}}
    preds, votes = predict_all(minima, ens)
    for m in methods:
        column = "prediction_roe" if m.endswith("_roe") else "prediction"
        if not np.array_equal(table[column].to_numpy(np.int64), preds[m]):
            raise PipelineError(f"{certificates_path}: its {label_of(m)} predictions are not those of the run's models "
                                f"(recomputed from its distances); {redo}")
    clean = {"minima": minima, "inputs": torch.from_numpy(features).to(dev), "images": images, "labels": labels,
             "preds": preds, "votes": votes,
             "radius": {m: table[f"radius_{m}"].to_numpy(np.int64) for m in methods}}
    return ens, clean


def attack_run(run, family, settings, seed, radii, distance_paths, group_paths, shard_paths, certificates_path,
               features_path, test_path, train_path, inserted_path, learner, learner_params, test_limit=None,
               device="auto", threads=1, result_out=None, edits_out=None) -> str:
    """Run one attack family on a run; write its result JSON and edits folder; return a one-line summary."""
    import torch

    from ..attacks import backdoor, label_flip, targeted

    check_folder(result_out)
    check_folder(edits_out)
    torch.set_num_threads(max(1, threads))
    family_module = {"targeted": targeted, "label_flip": label_flip, "backdoor": backdoor}.get(family)
    if family_module is None:
        raise PipelineError(f"unknown attack {family!r}; choose from targeted, label_flip, backdoor")
    ens, clean = load_ensemble(distance_paths, group_paths, shard_paths, certificates_path, features_path, test_path,
                               train_path, inserted_path, learner, learner_params, test_limit, device)
    if family == "backdoor" and not 0 <= settings["target_class"] < ens["n_classes"]:
        raise PipelineError(f"runs.{run}.attacks.backdoor.target_class: {settings['target_class']} is not a class of "
                            f"the dataset (0..{ens['n_classes'] - 1})")
    if family == "backdoor" and settings["patch"] > min(clean["images"].shape[1:3]):
        raise PipelineError(f"runs.{run}.attacks.backdoor.patch: {settings['patch']} pixels is larger than the images "
                            f"({clean['images'].shape[1]} x {clean['images'].shape[2]})")
    clean["radii"] = list(radii)
    rng = np.random.default_rng([seed, FAMILY_SEEDS[family]])
    result, edits = family_module.run(ens, clean, settings, rng)
    result.update({"run": run, "seed": seed, "settings": settings, "methods": ens["methods"],
                   "n_test": len(clean["labels"]), "n_buckets": ens["n_buckets"], "n_models": len(ens["model_buckets"])})
    write_edits(edits_out, family, edits)
    write_result(result_out, result)
    return (f"{family} attack on {run}: {len(edits)} attacks, checked against {result['certificates_checked']} "
            "certified predictions, none beaten")


def attack_summary(run, result_paths, metrics_out, curve_out, plot_out) -> dict:
    """The families' results of a run in one metrics file, one CSV (one column per curve, by budget) and one
    figure (a panel per family); returns the metrics."""
    for out in (metrics_out, curve_out, plot_out):
        check_folder(out)
    return write_summary(metrics_out, curve_out, plot_out, run, [read_result(p) for p in result_paths])
