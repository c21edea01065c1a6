"""Published certified-accuracy curves, overlaid on the report's comparison plot (docs/running.md#reference-curves).

A CSV file (``reference_curves`` in params.yaml; configs/reference_curves.csv ships the papers' numbers) with one
row per (curve, radius) and the columns

| column | content |
|---|---|
| ``curve`` | the curve's name (rows of one curve share it) |
| ``dataset`` | the dataset it was measured on (a built-in or user dataset name); overlaid on runs of that dataset |
| ``method``, ``k``, ``d``, ``learner`` | what was certified: dpa, fa, dpa_roe or fa_roe; partitions; FA's d; base model |
| ``radius`` | the radius (inserted + removed training samples), an integer >= 0 |
| ``certified_accuracy`` | in %, 0..100, as papers print it |
| ``source`` | where the number comes from (paper, table); the same for all rows of a curve |
"""

import csv
import math
from pathlib import Path

from .errors import PipelineError

COLUMNS = ("curve", "dataset", "method", "k", "d", "learner", "radius", "certified_accuracy", "source")
METHOD_LABELS = {"dpa": "DPA", "fa": "FA", "dpa_roe": "DPA+ROE", "fa_roe": "FA+ROE"}


def read_references(path) -> list[dict]:
    """The curves of a reference CSV: [{curve, dataset, label, source, radii int[R], accuracy float[R] (fractions)}],
    in the file's order, radii increasing. A malformed file is a PipelineError naming the line and the fix."""
    path = Path(path)
    fix = (f"correct {path} (columns: {', '.join(COLUMNS)}; docs/running.md#reference-curves) or set "
           "reference_curves: null in params.yaml")
    try:
        with path.open(newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            header = reader.fieldnames or []
            rows = list(reader)
    except (OSError, UnicodeDecodeError, csv.Error) as err:
        raise PipelineError(f"{path}: unreadable reference curves ({err}); {fix}") from None
    missing = [c for c in COLUMNS if c not in header]
    if missing:
        raise PipelineError(f"{path}: no column {', '.join(missing)}; {fix}")
    curves = {}
    for line, row in enumerate(rows, start=2):
        where = f"{path}, line {line}"
        try:
            radius, accuracy = int(row["radius"]), float(row["certified_accuracy"])
            k, d = int(row["k"]), int(row["d"])
        except (TypeError, ValueError):
            message = f"{where}: radius, k and d must be integers and certified_accuracy a number; {fix}"
            raise PipelineError(message) from None
        if radius < 0 or not math.isfinite(accuracy) or not 0 <= accuracy <= 100 or k < 1 or d < 1:
            raise PipelineError(f"{where}: radius >= 0, k and d >= 1 and certified_accuracy in % (0..100) expected; "
                                f"{fix}")
        if row["method"] not in METHOD_LABELS:
            raise PipelineError(f"{where}: method {row['method']!r}; one of {', '.join(METHOD_LABELS)}; {fix}")
        if not row["curve"] or not row["source"]:
            raise PipelineError(f"{where}: every row needs its curve's name and the source of its number; {fix}")
        key = row["curve"]
        label = (f"{METHOD_LABELS[row['method']]} {row['learner']} k={k}" + (f" d={d}" if d > 1 else ""))
        curve = curves.setdefault(key, {"curve": key, "dataset": row["dataset"], "label": label,
                                        "source": row["source"], "radii": [], "accuracy": []})
        if (curve["dataset"], curve["label"], curve["source"]) != (row["dataset"], label, row["source"]):
            raise PipelineError(f"{where}: curve {key!r} changes its dataset, method, k, d, learner or source; give "
                                f"each curve its own name; {fix}")
        if curve["radii"] and radius <= curve["radii"][-1]:
            raise PipelineError(f"{where}: curve {key!r}'s radii must increase; {fix}")
        curve["radii"].append(radius)
        curve["accuracy"].append(accuracy / 100)
    return list(curves.values())
