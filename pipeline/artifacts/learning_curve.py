"""Learning-curve points (docs/studies.md#learning-curve), written by pipeline/stages/learning_curve.py:
``work/studies/<study>/learning_curve/n<size>.json``, one subset size: the test accuracy of every subset drawn,
with the learner spec (code digest included) and the digests of the training and test data."""

import json
from pathlib import Path

from ..atomic import write_json
from ..errors import PipelineError

POINT_KEYS = {"size", "n_train", "n_test", "accuracy", "learner", "train", "test", "sample_seed", "n_classes"}


def read_record(path, keys: set, what: str) -> dict:
    """A JSON object holding at least ``keys``, else one clear error naming ``what`` it should be."""
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, ValueError) as err:
        raise PipelineError(f"{path}: unreadable {what} ({type(err).__name__}: {err}); delete it and run snakemake "
                            "again") from None
    if not isinstance(record, dict) or not keys <= set(record):
        raise PipelineError(f"{path}: not a {what} of the study step; delete it and run snakemake again")
    return record


def write_point(path, point: dict) -> None:
    write_json(path, point)


def read_point(path) -> dict:
    return read_record(path, POINT_KEYS, "learning-curve point")
