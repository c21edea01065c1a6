"""Certify stage: gather votes of all models, certify, and write certificates, metrics and the curve."""

import json

import numpy as np

from . import provenance
from .atomic import atomic_path, check_folder, write_json, write_parquet, write_text
from .certify import dpa, fa, roe
from .certify.buckets import bucket_feeds
from .data.prepared import array_digest
from .errors import PipelineError
from .metrics import certified_accuracy, curve, median_radius
from .predict import test_subset
from .train import read_shard

# name -> (needs logits, certify(votes, logits, labels, n_classes, feed) -> (prediction, radius))
METHODS = {
    "dpa": (False, lambda v, z, y, n, feed: dpa.certify(v, y, n)),
    "fa": (False, lambda v, z, y, n, feed: fa.certify(v, y, n, feed)),
    "dpa_roe": (True, lambda v, z, y, n, feed: roe.certify_dpa(v, z, y, n)),
    "fa_roe": (True, lambda v, z, y, n, feed: roe.certify_fa(v, z, y, n, feed)),
}
CHUNK_BYTES = 256 * 2**20  # memory for one chunk of test samples' votes (and logits)


def label_of(name: str, versions: int = 1) -> str:
    """Display name: dpa -> DPA, fa_roe -> FA+ROE, DPA with several versions -> DPA*."""
    base, _, extra = name.partition("_")
    base = base.upper() + ("*" if versions > 1 and base == "dpa" else "")
    return base + ("+ROE" if extra == "roe" else "")


def read_layout(shard_paths):
    """Models of the run by explicit model id: (shards, model_buckets int64[n_models, d], sizes int64[n_models])."""
    shards = [read_shard(p) for p in shard_paths]
    models = sorted((m for s in shards for m in s["models"]), key=lambda m: m["model_id"])
    if [m["model_id"] for m in models] != list(range(len(models))):
        raise PipelineError("shard files do not hold model ids 0..n-1 exactly once; delete them and run snakemake "
                            "again (the partition step rewrites them)")
    buckets = np.array([m["buckets"] for m in models], dtype=np.int64)
    sizes = np.array([len(m["sample_ids"]) for m in models], dtype=np.int64)
    return shards, models, buckets, sizes


def load_chunk(prediction_paths, start: int, stop: int, n_models: int, with_logits: bool):
    """votes int16[stop - start, n_models] (column j = model j) and, if asked, logits float32[..., C].

    Every (test sample, model) pair of the chunk must appear exactly once: all pairs are seen and
    the files hold exactly as many rows as there are pairs (so none appears twice).
    """
    import pyarrow.parquet as pq

    n = stop - start
    votes = np.full((n, n_models), -1, dtype=np.int16)
    seen = np.zeros((n, n_models), dtype=bool)
    rows = 0
    logits = None
    columns = ["test_id", "model_id", "vote"] + (["logits"] if with_logits else [])
    for path in prediction_paths:
        try:
            table = pq.read_table(path, columns=columns, filters=[("test_id", ">=", start), ("test_id", "<", stop)],
                                  page_checksum_verification=True)
        except Exception as err:
            raise PipelineError(f"{path}: unreadable predictions ({type(err).__name__}: {' '.join(str(err).split())}); "
                                "delete it and run snakemake again (it re-predicts the shard)") from None
        t = table["test_id"].to_numpy().astype(np.int64) - start
        m = table["model_id"].to_numpy().astype(np.int64)
        if m.size and (m.min() < 0 or m.max() >= n_models):
            raise PipelineError(f"{path}: model ids out of range (the run has {n_models} models); "
                                "re-run predict with the current partition")
        votes[t, m] = table["vote"].to_numpy()
        seen[t, m] = True
        rows += len(t)
        if with_logits:
            flat = table["logits"].combine_chunks()
            values = flat.flatten().to_numpy().reshape(len(t), -1)
            if logits is None:
                logits = np.empty((n, n_models, values.shape[1]), dtype=np.float32)
            logits[t, m] = values
    if rows != n * n_models or not seen.all():
        raise PipelineError(f"predictions of test samples {start}..{stop - 1} hold {rows} rows for {int(seen.sum())} of "
                            f"{n * n_models} (test sample, model) pairs, each expected exactly once; re-run predict for "
                            "every shard of this run")
    return votes, logits


def certify_all(prediction_paths, labels, n_classes, n_models, methods, feed=None):
    """Predictions and radii of every method, chunk by chunk over the test samples.

    Returns ({method: (prediction int64[n_test], radius int64[n_test])}, base-model accuracy).
    """
    with_logits = any(METHODS[m][0] for m in methods)
    per_test = n_models * (3 + (4 * n_classes if with_logits else 0))
    step = max(1, CHUNK_BYTES // per_test)
    out = {m: (np.empty(len(labels), np.int64), np.empty(len(labels), np.int64)) for m in methods}
    correct_votes = 0
    for start in range(0, len(labels), step):
        stop = min(start + step, len(labels))
        votes, logits = load_chunk(prediction_paths, start, stop, n_models, with_logits)
        y = labels[start:stop]
        correct_votes += int((votes == y[:, None]).sum())
        for m in methods:
            prediction, radius = METHODS[m][1](votes, logits, y, n_classes, feed)
            out[m][0][start:stop], out[m][1][start:stop] = prediction, radius
    return out, correct_votes / max(1, len(labels) * n_models)


def plot_curves(path, curves: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for method, (radii, accuracy) in curves.items():
        ax.step(radii, 100 * accuracy, where="post", label=method)
    ax.set_xlabel("radius (inserted + removed training samples)")
    ax.set_ylabel("certified accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xlim(left=0)
    ax.grid(alpha=0.3)
    ax.legend()
    ax.set_title(title)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)


def curve_csv(curves: dict) -> str:
    """Wide CSV: radius, then one certified-accuracy column per method, every radius 0..max."""
    top = max(len(r) for r, _ in curves.values())
    lines = ["radius," + ",".join(curves)]
    for r in range(top):
        lines.append(f"{r}," + ",".join(f"{acc[min(r, len(acc) - 1)]:.6f}" for _, acc in curves.values()))
    return "\n".join(lines) + "\n"


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
        record = provenance.read_predictions_record(path)
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
    """Certify every test sample of a run and write certificates, metrics, curve and plot.

    Refuses predictions whose recorded provenance does not match the current shard files, learner
    spec (``learner``, ``learner_params``) and test set; the outputs record that provenance.
    """
    import pyarrow as pa

    from .learners import resolve_params

    for out in (certificates_out, metrics_out, curve_out, plot_out):
        check_folder(out)
    shards, models, buckets, sizes = read_layout(shard_paths)
    images, labels, class_names = test_subset(test_path, test_limit)
    test = {"n_test": len(labels), "images_sha256": array_digest(images), "labels_sha256": array_digest(labels)}
    spec = provenance.learner_spec(learner, resolve_params(learner, learner_params))
    origin = checked_provenance(prediction_paths, shard_paths, shards, spec, test,
                                any(METHODS[m][0] for m in methods))
    feed = bucket_feeds(buckets) if any(m.startswith("fa") for m in methods) else None
    results, base_accuracy = certify_all(prediction_paths, labels, len(class_names), len(models), methods, feed)

    columns = {"test_id": np.arange(len(labels), dtype=np.int32), "label": labels.astype(np.int16)}
    for m, (prediction, radius) in results.items():
        suffix = "_roe" if m.endswith("_roe") else ""
        columns.setdefault(f"prediction{suffix}", prediction.astype(np.int16))
        columns[f"radius_{m}"] = radius.astype(np.int32)
    table = pa.table(columns).replace_schema_metadata({provenance.PREDICTIONS_KEY: json.dumps(origin, sort_keys=True)})
    write_parquet(certificates_out, table)

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
    write_json(metrics_out, metrics, sort_keys=False)
    curves = {m: curve(r) for m, (_, r) in results.items()}
    write_text(curve_out, curve_csv(curves))
    title = f"{run}: {label_of(info['method'], versions)} k={info['k']}" + (f" d={info['d']}" if info["method"] == "fa" else "")
    plot_curves(plot_out, {metrics["methods"][m]: c for m, c in curves.items()}, f"{title}, {learner}")
    return metrics
