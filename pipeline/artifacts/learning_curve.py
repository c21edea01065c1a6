"""Learning-curve points (docs/studies.md#learning-curve), written by pipeline/stages/learning_curve.py:
``work/studies/<study>/learning_curve/n<size>.json``, one subset size: the test accuracy of every subset drawn,
with the learner spec (code digest included) and the digests of the training and test data."""

from ..atomic import write_json
from .records import read_json_record

POINT_KEYS = {"size", "n_train", "n_test", "accuracy", "learner", "train", "test", "sample_seed", "n_classes"}


def write_point(path, point: dict) -> None:
    write_json(path, point)


def read_point(path) -> dict:
    return read_json_record(path, POINT_KEYS, "learning-curve point")
