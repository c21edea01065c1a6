"""Certify stage (rules/certify.smk): gather the votes (and scores) of all models, certify every test sample,
write certificates (pipeline/artifacts/certificates.py), metrics and the curve (pipeline/artifacts/metrics.py).

Predictions whose recorded provenance does not match the current shard files, learner spec and test
set are refused as stale (docs/design.md#provenance); the outputs record the provenance they come from.
"""

import numpy as np

from .. import learners, provenance
from ..artifacts.certificates import write_certificates
from ..artifacts.metrics import plot_curves, write_curve, write_metrics
from ..artifacts.partition_files import read_layout
from ..artifacts.predictions import load_chunk, read_record
from ..artifacts.splits import load_test_subset, test_digests
from ..atomic import check_folder
from ..certify import METHODS, label_of, needs_feed, needs_logits
from ..certify.buckets import bucket_feeds
from ..certify.figures import certified_accuracy, curve, median_radius
from ..errors import PipelineError
from ..resources import CERTIFY_CHUNK_MB, MB


def certify_all(prediction_paths, labels, n_classes, n_models, methods, feed=None):
    """Predictions and radii of every method, chunk by chunk over the test samples.

    Returns ({method: (prediction int64[n_test], radius int64[n_test])}, base-model accuracy).
    """
    with_logits = needs_logits(methods)
    per_test = n_models * (3 + (4 * n_classes if with_logits else 0))
    step = max(1, CERTIFY_CHUNK_MB * MB // per_test)  # bounded memory for one chunk of votes (and logits)
    out = {m: (np.empty(len(labels), np.int64), np.empty(len(labels), np.int64)) for m in methods}
    correct_votes = 0
    for start in range(0, len(labels), step):
        stop = min(start + step, len(labels))
        votes, logits = load_chunk(prediction_paths, start, stop, n_models, with_logits)
        y = labels[start:stop]
        correct_votes += int((votes == y[:, None]).sum())
        for m in methods:
            prediction, radius = METHODS[m]["certify"](votes, logits, y, n_classes, feed)
            out[m][0][start:stop], out[m][1][start:stop] = prediction, radius
    return out, correct_votes / max(1, len(labels) * n_models)


def checked_provenance(prediction_paths, shard_paths, shards, spec: dict, test: dict, with_logits: bool) -> dict:
    """Refuse predictions that do not come from the current shard files, learner spec and test set.

    Returns the run's provenance: test-set digests, partition digest, learner spec and the digest of
    the checkpoints the predictions were computed from.
    """
    if len(prediction_paths) != len(shard_paths):
        raise PipelineError(f"{len(prediction_paths)} predictions files for {len(shard_paths)} shard files; give one "
                            "per shard, in the same order")
    checkpoints = []
    for path, shard_path, shard in zip(prediction_paths, shard_paths, shards):
        fix = f"delete {path} and run snakemake again (it re-predicts the shard, retraining it where needed)"
        record = read_record(path)
        if record.get("shard") != shard["shard"]:
            raise PipelineError(f"{path}: holds shard {record.get('shard')}, expected shard {shard['shard']} of "
                                f"{shard_path}; {fix}")
        provenance.check_models(path, record["models"], shard_path, shard, fix)
        provenance.check_learner(path, record["learner"], spec, fix)
        if record["test"] != test:
            raise PipelineError(f"{path}: stale, computed on another test set ({record['test']['n_test']} samples, "
                                f"images SHA-256 {record['test']['images_sha256'][:12]}..., expected {test['n_test']}, "
                                f"{test['images_sha256'][:12]}...); {fix}")
        if with_logits and not record["logits"]:
            raise PipelineError(f"{path}: holds votes only, but Run-Off Election needs every model's scores; {fix}")
        checkpoints.append(record["checkpoint_sha256"])
    models = sorted((m for s in shards for m in s["models"]), key=lambda m: m["model_id"])
    layout = [{"model_id": m["model_id"], "buckets": m["buckets"], "seeds": m["seeds"],
               "subset_sha256": m["subset_sha256"]} for m in models]
    return {"test": test, "partition_sha256": provenance.canonical_digest(layout), "learner": spec,
            "checkpoints_sha256": provenance.canonical_digest(checkpoints)}


def certify_run(run, dataset, prediction_paths, shard_paths, test_path, test_limit, radii, methods, learner,
                learner_params, certificates_out, metrics_out, curve_out, plot_out):
    """Certify every test sample of a run and write certificates, metrics, curve and plot; return the metrics."""
    for out in (certificates_out, metrics_out, curve_out, plot_out):
        check_folder(out)
    shards, models, buckets, sizes = read_layout(shard_paths)
    images, labels, class_names = load_test_subset(test_path, test_limit)
    spec = provenance.learner_spec(learner, learners.resolve_params(learner, learner_params))
    origin = checked_provenance(prediction_paths, shard_paths, shards, spec, test_digests(images, labels),
                                needs_logits(methods))
    feed = bucket_feeds(buckets) if needs_feed(methods) else None
    results, base_accuracy = certify_all(prediction_paths, labels, len(class_names), len(models), methods, feed)
    write_certificates(certificates_out, labels, results, origin)

    info = shards[0]
    versions = info.get("versions", 1)
    median = {m: median_radius(r) for m, (_, r) in results.items()}
    metrics = {
        "run": run, "dataset": dataset, "method": info["method"], "k": info["k"], "d": info["d"],
        "versions": versions, "hash": info["hash"], "learner": learner,
        "methods": {m: label_of(m, versions) for m in methods},
        "n_train": int(len({i for m in models for i in m["sample_ids"]})), "n_test": int(len(labels)),
        "n_models": len(models),
        "clean_accuracy": {m: float((p == labels).mean()) for m, (p, _) in results.items()},
        "base_model_accuracy": base_accuracy,
        "certified_accuracy": {m: {str(r): float(a) for r, a in zip(radii, certified_accuracy(res, radii))}
                               for m, (_, res) in results.items()},
        "median_radius": median,
        "median_radius_plus_one": {m: (None if v is None else v + 1) for m, v in median.items()},
        "partition_size": {"min": int(sizes.min()), "mean": float(sizes.mean()),
                           "median": float(np.median(sizes)), "max": int(sizes.max())},
        "provenance": origin,
    }
    write_metrics(metrics_out, metrics)
    curves = {m: curve(r) for m, (_, r) in results.items()}
    write_curve(curve_out, curves)
    title = f"{run}: {label_of(info['method'], versions)} k={info['k']}" + (f" d={info['d']}" if info["method"] == "fa" else "")
    plot_curves(plot_out, {metrics["methods"][m]: c for m, c in curves.items()}, f"{title}, {learner}")
    return metrics
