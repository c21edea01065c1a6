"""Metrics and curves of a run, written by the certify stage: ``metrics/<run>.json`` and
``plots/<run>_certified_accuracy.{csv,png}``; read by the report stage (and DVC).

Metrics JSON, in this key order: run, dataset, method, k, d, versions, hash, learner, methods (name ->
display label), n_train, n_test, n_models, clean_accuracy, base_model_accuracy, certified_accuracy
(method -> radius -> fraction), median_radius, median_radius_plus_one, partition_size (min, mean,
median, max), provenance (see pipeline/stages/certify.py). The curve CSV is wide: ``radius``, then one
certified-accuracy column per method, every radius 0..max.
"""

import json
from pathlib import Path

from ..atomic import atomic_path, write_json, write_text
from ..errors import PipelineError


def write_metrics(path, metrics: dict) -> None:
    write_json(path, metrics, sort_keys=False)


# Keys of a run's metrics (written by the certify stage) that the report reads; the
# mapping ones hold one entry per certificate method.
METRICS_KEYS = ("run", "dataset", "method", "k", "d", "learner", "n_models", "n_train", "n_test", "partition_size",
                "base_model_accuracy")
METRICS_MAPPINGS = ("methods", "clean_accuracy", "certified_accuracy", "median_radius", "median_radius_plus_one")


def rerun_certify(path: Path, run=None, option="--metrics") -> str:
    """The fix for a bad input of the report: the certify step of its run writes it."""
    return (f"re-run certify for run {(run or path.stem)!r} (snakemake --force {path} rewrites it), "
            f"or leave that file out of {option}")


def load_metrics(paths) -> list[dict]:
    """Every run's metrics JSON; a missing, unreadable or incomplete one is a PipelineError."""
    all_metrics = []
    for path in map(Path, paths):
        try:
            metrics = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PipelineError(f"{path}: metrics file not found; {rerun_certify(path)}") from None
        except OSError as err:
            raise PipelineError(f"{path}: cannot read the metrics file ({err.strerror or err}); "
                                f"{rerun_certify(path)}") from None
        except ValueError as err:  # JSONDecodeError, UnicodeDecodeError
            raise PipelineError(f"{path}: not a metrics file (not valid JSON: {err}); {rerun_certify(path)}") from None
        if not isinstance(metrics, dict):
            raise PipelineError(f"{path}: not a metrics file (a JSON {type(metrics).__name__}, not an object); "
                                f"{rerun_certify(path)}")
        run = metrics.get("run") if isinstance(metrics.get("run"), str) else None
        missing = [key for key in METRICS_KEYS + METRICS_MAPPINGS if key not in metrics]
        missing += [key for key in METRICS_MAPPINGS if key in metrics and not isinstance(metrics[key], dict)]
        if not missing and not (isinstance(metrics["partition_size"], dict)
                                and {"min", "mean", "max"} <= set(metrics["partition_size"])):
            missing = ["partition_size.min/mean/max"]
        if not missing:
            methods = set(metrics["methods"])
            missing = [f"{key}.{method}" for key in METRICS_MAPPINGS for method in sorted(methods)
                       if method not in metrics[key]]
        if missing:
            raise PipelineError(f"{path}: not a complete metrics file of the certify step (missing or malformed: "
                                f"{', '.join(missing)}); {rerun_certify(path, run)}")
        all_metrics.append(metrics)
    return all_metrics


def curve_csv(curves: dict) -> str:
    """Wide CSV text from {method: (radii int[R], accuracy float[R])}."""
    top = max(len(r) for r, _ in curves.values())
    lines = ["radius," + ",".join(curves)]
    for r in range(top):
        lines.append(f"{r}," + ",".join(f"{acc[min(r, len(acc) - 1)]:.6f}" for _, acc in curves.values()))
    return "\n".join(lines) + "\n"


def read_curve(path) -> dict:
    """{method: (radii int[R], accuracy float[R])} from a curve CSV (curve_csv); a PipelineError when unreadable."""
    import numpy as np

    path = Path(path)
    try:
        lines = path.read_text().splitlines()
        methods = lines[0].split(",")[1:]
        table = np.array([[float(v) for v in line.split(",")] for line in lines[1:]], dtype=np.float64)
        if lines[0].split(",")[0] != "radius" or not methods or table.ndim != 2 or table.shape[1] != len(methods) + 1:
            raise ValueError("not a curve table")
    except (OSError, IndexError, ValueError) as err:
        run = path.stem.removesuffix("_certified_accuracy")
        raise PipelineError(f"{path}: not a certified-accuracy curve ({err}); {rerun_certify(path, run, '--curves')}") \
            from None
    radii = table[:, 0].astype(np.int64)
    return {m: (radii, table[:, i + 1]) for i, m in enumerate(methods)}


def write_curve(path, curves: dict) -> None:
    write_text(path, curve_csv(curves))


def plot_curves(path, curves: dict, title: str) -> None:
    """The curves as a step plot (PNG): {label: (radii, accuracy)}."""
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
