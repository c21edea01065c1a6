"""Certify stage: gather votes of all models, certify, and write certificates, metrics and the curve."""

from pathlib import Path

import numpy as np

from .atomic import atomic_path, write_json, write_parquet, write_text
from .certify import dpa
from .errors import PipelineError
from .metrics import certified_accuracy, curve, median_radius
from .predict import test_subset
from .train import read_shard

METHODS = {"dpa": dpa.certify}


def gather_votes(prediction_paths, n_test: int, n_models: int) -> np.ndarray:
    """votes int16[n_test, n_models] from the per-shard long tables; column j is model j.

    Every (test sample, model) pair must appear exactly once.
    """
    import pyarrow.parquet as pq

    votes = np.full((n_test, n_models), -1, dtype=np.int16)
    seen = np.zeros((n_test, n_models), dtype=np.uint8)
    for path in prediction_paths:
        table = pq.read_table(path, columns=["test_id", "model_id", "vote"])
        t = table["test_id"].to_numpy()
        m = table["model_id"].to_numpy()
        if t.size and (t.min() < 0 or t.max() >= n_test or m.min() < 0 or m.max() >= n_models):
            raise PipelineError(f"{path}: test or model ids out of range (expected {n_test} test samples, "
                                f"{n_models} models); re-run predict with the current data and partition")
        if len(np.unique(t.astype(np.int64) * n_models + m)) != len(t):
            raise PipelineError(f"{path}: a (test sample, model) pair appears twice; re-run predict for this shard")
        votes[t, m] = table["vote"].to_numpy()
        seen[t, m] += 1
    if not (seen == 1).all():
        raise PipelineError(f"predictions cover {int((seen > 0).sum())} of {n_test * n_models} (test, model) pairs "
                            "exactly once; re-run predict for every shard of this run")
    return votes


def plot_curves(path, curves: dict, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for method, (radii, accuracy) in curves.items():
        ax.step(radii, 100 * accuracy, where="post", label=method.upper())
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


def certify_run(run, dataset, prediction_paths, shard_paths, test_path, test_limit, radii, methods, learner,
                certificates_out, metrics_out, curve_out, plot_out):
    import pyarrow as pa

    shards = [read_shard(p) for p in shard_paths]
    models = [m for s in shards for m in s["models"]]
    sizes = np.array([len(m["sample_ids"]) for m in models])
    images, labels, class_names = test_subset(test_path, test_limit)
    votes = gather_votes(prediction_paths, len(labels), len(models))
    columns = {"test_id": np.arange(len(labels), dtype=np.int32), "label": labels.astype(np.int16)}
    results = {}
    for method in methods:
        prediction, radius = METHODS[method](votes, labels, len(class_names))
        columns.setdefault("prediction", prediction.astype(np.int16))
        columns[f"radius_{method}"] = radius.astype(np.int32)
        results[method] = radius
    write_parquet(certificates_out, pa.table(columns))

    curves = {m: curve(r) for m, r in results.items()}
    first = methods[0]
    median = {m: median_radius(r) for m, r in results.items()}
    metrics = {
        "run": run, "dataset": dataset, "method": shards[0]["method"], "k": shards[0]["k"], "d": shards[0]["d"],
        "hash": shards[0]["hash"], "learner": learner,
        "n_train": int(len({i for m in models for i in m["sample_ids"]})), "n_test": int(len(labels)),
        "n_models": len(models),
        "clean_accuracy": float((results[first] >= 0).mean()),
        "base_model_accuracy": float((votes == labels[:, None]).mean()),
        "certified_accuracy": {m: {str(r): float(a) for r, a in zip(radii, certified_accuracy(res, radii))}
                               for m, res in results.items()},
        "median_radius": median,
        "median_radius_plus_one": {m: (None if v is None else v + 1) for m, v in median.items()},
        "partition_size": {"min": int(sizes.min()), "mean": float(sizes.mean()),
                           "median": float(np.median(sizes)), "max": int(sizes.max())},
    }
    write_json(metrics_out, metrics, sort_keys=False)
    write_text(curve_out, curve_csv(curves))
    plot_curves(plot_out, curves, f"{run}: {metrics['method'].upper()} k={metrics['k']}, {learner}")
    return metrics
