"""Certify stage (rules/certify.smk): gather the votes (and scores) of all models, certify every test sample,
write certificates (pipeline/artifacts/certificates.py), metrics and the curve (pipeline/artifacts/metrics.py).

The models' votes come from the predict step's files (one per shard) and, for Run-Off Election, which classes
the finalists beat from its run-off files; or, for a nearest-neighbour learner, the models' scores from the
shared bucket distances (one file per bucket group): each model's scores are the minimum over its buckets
(docs/design.md#shared-distances). Inputs whose recorded provenance does not match the current
partition files, learner spec and test set are refused as stale (docs/design.md#provenance); the outputs
record the provenance they come from.
"""

import os

import numpy as np

from .. import learners, provenance
from ..artifacts.certificates import write_certificates
from ..artifacts.distances import checked_distances, open_bucket_minima, read_bucket_record, read_row_group
from ..artifacts.metrics import plot_curves, write_curve, write_metrics
from ..artifacts.partition_files import read_layout
from ..artifacts.predictions import load_chunk, read_record
from ..artifacts.runoff import RERUN, finalists_digest, load_beats, run_finalists
from ..artifacts.splits import load_test_subset, test_digests
from ..atomic import check_folder
from ..certify import METHODS, label_of, needs_feed, needs_run_off, run_off_data
from ..certify.buckets import bucket_feeds, circulant_offsets, map_chunks
from ..certify.figures import certified_accuracy, curve, median_radius
from ..certify.votes import votes_from_logits
from ..errors import PipelineError
from ..nearest import model_scores
from ..resources import CERTIFY_CHUNK_MB, MB


def prediction_chunks(prediction_paths, n_test, n_models, n_classes, runoff_paths=None):
    """(start, stop, votes int16[n, n_models], beats bool[n, n_models, 2, C] or None) from predictions files (and
    run-off files), in chunks of bounded memory."""
    per_test = n_models * (2 + (2 * n_classes + n_classes // 4 + 2 if runoff_paths else 0))
    step = max(1, CERTIFY_CHUNK_MB * MB // per_test)  # bounded memory for one chunk of votes (and beats)
    for start in range(0, n_test, step):
        stop = min(start + step, n_test)
        votes = load_chunk(prediction_paths, start, stop, n_models)
        beats = load_beats(runoff_paths, start, stop, n_models, n_classes) if runoff_paths else None
        yield start, stop, votes, beats


SCORE_BLOCK_BYTES = 2**20  # minima of the models scored at once by one thread


def distance_chunks(distance_paths, model_buckets, n_test, n_classes, learner, versions, methods):
    """(start, stop, votes, beats or None: see prediction_chunks) of nearest-neighbour models from bucket-distance
    files (in bucket order), a few row groups at a time (about CERTIFY_CHUNK_MB of minima): each model's scores
    from the minimum over its buckets (model_buckets int64[n_models, d]), computed for slices of models on all
    cores; a DPA* model's scores summed over its versions as the predict step sums them; the finalists' beats
    from those scores when one of ``methods`` needs them."""
    files = [open_bucket_minima(p) for p in distance_paths]
    records = [read_bucket_record(p) for p in distance_paths]
    step, scale = records[0]["row_group_tests"], records[0]["scale"]  # the same in every file (checked_distances)
    n_groups = -(-n_test // step)
    for path, f in zip(distance_paths, files):
        if f.metadata.num_row_groups != n_groups:
            raise PipelineError(f"{path}: {f.metadata.num_row_groups} row groups, expected {n_groups}; delete it "
                                "and run snakemake again (it recomputes the distances)")
    n_models = len(model_buckets)
    offsets = circulant_offsets(bucket_feeds(model_buckets))  # FA's (and DPA's) buckets: read as slices
    file_starts = np.cumsum([0] + [len(r["buckets"]) for r in records])  # first bucket of every file
    per_cell = 4 + (2 if needs_run_off(methods) else 0)  # float32 scores (and the finalists' beats) per class
    per_group = max(1, CERTIFY_CHUNK_MB * MB // max(1, per_cell * step * n_classes * n_models))
    for first in range(0, n_groups, per_group):
        groups = range(first, min(first + per_group, n_groups))

        rows = [min(i * step + step, n_test) - i * step for i in groups]
        minima = np.empty((sum(rows), file_starts[-1], n_classes), dtype=np.float32)  # [tests, buckets, C]

        def read(file_index: slice):  # every row group of the chunk from some of the files, into minima
            for j in range(len(files))[file_index]:
                for i, top in zip(groups, np.cumsum([0] + rows)):
                    minima[top:top + rows[i - first], file_starts[j]:file_starts[j + 1]] = read_row_group(
                        files[j], distance_paths[j], i, i * step, len(records[j]["buckets"]), n_classes)

        map_chunks(read, len(files), 1)
        n = minima.shape[0]
        logits = np.empty((n, n_models, n_classes), dtype=np.float32)
        votes = np.empty((n, n_models), dtype=np.int16)
        block = max(1, SCORE_BLOCK_BYTES // (4 * n * n_classes))  # models whose minima stay in the CPU's cache

        def scores(models: slice):
            for lo in range(models.start, models.stop, block):
                sub = slice(lo, min(lo + block, models.stop))
                s = model_scores(minima, model_buckets, learner, scale, versions, sub, offsets)  # [n, sub, C]
                logits[:, sub] = s
                votes[:, sub] = votes_from_logits(s)

        map_chunks(scores, n_models, -(-n_models // (os.cpu_count() or 1)))
        yield first * step, first * step + n, votes, run_off_data(methods, votes, logits, n_classes)


def certify_all(chunks, labels, methods, n_classes, feed=None):
    """Predictions and radii of every method, chunk by chunk over the test samples (``chunks``: an iterable of
    (start, stop, votes int16[n, n_models], beats bool[n, n_models, 2, C] or None) covering them in order).

    Returns ({method: (prediction int64[n_test], radius int64[n_test])}, base-model accuracy).
    """
    out = {m: (np.empty(len(labels), np.int64), np.empty(len(labels), np.int64)) for m in methods}
    correct_votes = n_votes = 0
    covered = 0
    for start, stop, votes, beats in chunks:
        if start != covered or votes.shape[0] != stop - start:
            raise PipelineError(f"scores of test samples {start}..{stop - 1} came out of order (expected from {covered} "
                                "on); delete the run's predictions or distances and run snakemake again")
        covered = stop
        y = labels[start:stop]
        correct_votes += int((votes == y[:, None]).sum())
        n_votes += votes.size
        for m in methods:
            prediction, radius = METHODS[m]["certify"](votes, beats, y, n_classes, feed)
            out[m][0][start:stop], out[m][1][start:stop] = prediction, radius
    if covered != len(labels):
        raise PipelineError(f"scores cover {covered} of {len(labels)} test samples; delete the run's predictions or "
                            "distances and run snakemake again")
    return out, correct_votes / max(1, n_votes)


def checked_provenance(prediction_paths, shard_paths, shards, spec: dict, test: dict) -> dict:
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
        record = checked_record(path, shard_path, shard, spec, test, fix, read_record(path))
        checkpoints.append(record["checkpoint_sha256"])
    models = sorted((m for s in shards for m in s["models"]), key=lambda m: m["model_id"])
    return {"test": test, "partition_sha256": provenance.partition_digest(models), "learner": spec,
            "checkpoints_sha256": provenance.canonical_digest(checkpoints)}


def checked_record(path, shard_path, shard: dict, spec: dict, test: dict, fix: str, record: dict) -> dict:
    """The provenance ``record`` of a predictions or run-off file, refused unless it is for ``shard``, the learner
    ``spec`` and the ``test`` set."""
    if record.get("shard") != shard["shard"]:
        raise PipelineError(f"{path}: holds shard {record.get('shard')}, expected shard {shard['shard']} of "
                            f"{shard_path}; {fix}")
    provenance.check_models(path, record["models"], shard_path, shard, fix)
    provenance.check_learner(path, record["learner"], spec, fix)
    if record["test"] != test:
        raise PipelineError(f"{path}: stale, computed on another test set ({record['test']['n_test']} samples, "
                            f"images SHA-256 {record['test']['images_sha256'][:12]}..., expected {test['n_test']}, "
                            f"{test['images_sha256'][:12]}...); {fix}")
    return record


def checked_runoff(runoff_paths, prediction_paths, shard_paths, shards, spec: dict, test: dict, n_models: int,
                   n_classes: int) -> None:
    """Refuse run-off files that are not for the current shard files, learner spec and test set, not from the
    checkpoints the predictions come from, or not for the finalists of the predictions' votes."""
    if len(runoff_paths) != len(prediction_paths):
        raise PipelineError(f"{len(runoff_paths)} run-off files for {len(prediction_paths)} predictions files; give "
                            "one per shard, in the same order")
    expected = finalists_digest(*run_finalists(prediction_paths, test["n_test"], n_models, n_classes))
    for path, predictions, shard_path, shard in zip(runoff_paths, prediction_paths, shard_paths, shards):
        fix = f"delete {path} and run snakemake again (it redoes the shard's run-off pass)"
        record = checked_record(path, shard_path, shard, spec, test, fix, read_record(path, RERUN))
        if record["checkpoint_sha256"] != read_record(predictions)["checkpoint_sha256"]:
            raise PipelineError(f"{path}: computed from another checkpoint than {predictions}; {fix}")
        if record.get("finalists_sha256") != expected:
            raise PipelineError(f"{path}: computed for other finalists than the votes of the run's predictions give "
                                f"(a shard was predicted again since); {fix}")


def certify_run(run, dataset, prediction_paths, shard_paths, test_path, test_limit, radii, methods, learner,
                learner_params, certificates_out, metrics_out, curve_out, plot_out, distance_paths=None,
                group_paths=None, runoff_paths=None):
    """Certify every test sample of a run and write certificates, metrics, curve and plot; return the metrics.

    The models' votes come from ``prediction_paths`` (one per shard) and, for Run-Off Election, the finalists'
    beats from ``runoff_paths`` (one per shard); or, for a nearest-neighbour learner, the models' scores from
    ``distance_paths`` with their ``group_paths`` (one per bucket group; prediction_paths then None).
    """
    for out in (certificates_out, metrics_out, curve_out, plot_out):
        check_folder(out)
    shards, models, buckets, sizes = read_layout(shard_paths)
    images, labels, class_names = load_test_subset(test_path, test_limit)
    spec = provenance.learner_spec(learner, learners.resolve_params(learner, learner_params))
    test = test_digests(images, labels)
    versions = shards[0].get("versions", 1)
    if distance_paths:
        origin = checked_distances(distance_paths, group_paths, models, buckets, spec, test)
        chunks = distance_chunks(distance_paths, buckets, len(labels), len(class_names), learners.get(learner),
                                 versions, methods)
    else:
        origin = checked_provenance(prediction_paths, shard_paths, shards, spec, test)
        if needs_run_off(methods):
            if not runoff_paths:
                raise PipelineError(f"Run-Off Election ({', '.join(m for m in methods if m.endswith('_roe'))}) needs "
                                    "every shard's run-off file (--runoff); run snakemake, which makes them")
            checked_runoff(runoff_paths, prediction_paths, shard_paths, shards, spec, test, len(models),
                           len(class_names))
        chunks = prediction_chunks(prediction_paths, len(labels), len(models), len(class_names),
                                   runoff_paths if needs_run_off(methods) else None)
    feed = bucket_feeds(buckets) if needs_feed(methods) else None
    results, base_accuracy = certify_all(chunks, labels, methods, len(class_names), feed)
    write_certificates(certificates_out, labels, results, origin)

    info = shards[0]
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
