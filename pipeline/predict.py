"""Predict stage: scores and votes of every model of one shard on every test sample."""

from pathlib import Path

import numpy as np

from . import learners
from .atomic import write_parquet
from .certify.votes import votes_from_logits
from .data import load_split
from .errors import PipelineError


def load_checkpoint(path) -> dict:
    import torch

    if not Path(path).is_file():
        raise PipelineError(f"{path}: checkpoint missing; run the train step first (snakemake does)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise PipelineError(f"{path}: unreadable checkpoint ({type(err).__name__}); delete it and train again") from None


def test_subset(test_path, test_limit=None):
    images, labels, class_names = load_split(test_path)
    if test_limit is not None:
        images, labels = images[:test_limit], labels[:test_limit]
    return images, labels, class_names


ROW_GROUP_TESTS = 512  # test samples per Parquet row group, so certify can read test chunks


def predictions_table(model_ids, logits: np.ndarray, with_logits: bool):
    """Long table, one row per (test sample, model), ordered by test sample then model:
    test_id int32, model_id int32, vote int16 [, logits float32[C]].

    logits: float32[n_models, n_test, C].
    """
    import pyarrow as pa

    n_models, n_test, n_classes = logits.shape
    by_test = np.ascontiguousarray(logits.transpose(1, 0, 2))  # [n_test, n_models, C]
    columns = {
        "test_id": pa.array(np.repeat(np.arange(n_test, dtype=np.int32), n_models)),
        "model_id": pa.array(np.tile(np.asarray(model_ids, dtype=np.int32), n_test)),
        "vote": pa.array(votes_from_logits(by_test).reshape(-1)),
    }
    if with_logits:
        columns["logits"] = pa.FixedSizeListArray.from_arrays(pa.array(by_test.reshape(-1)), n_classes)
    return pa.table(columns)


def model_logits(learner, ckpt: dict, images, device) -> np.ndarray:
    """Scores float32[n_models, n_test, C]; a DPA* model's scores are the sum over its versions."""
    n_versions = len(ckpt["models"][0]["versions"])
    states = [v for m in ckpt["models"] for v in m["versions"]]
    per_version = learner.predict(states, images, ckpt["n_classes"], ckpt["params"], device)
    per_version = per_version.reshape(len(ckpt["models"]), n_versions, *per_version.shape[1:])
    return per_version[:, 0] if n_versions == 1 else per_version.sum(axis=1, dtype=np.float32)


def predict_shard(model_path, test_path, test_limit=None, with_logits=False, device="auto", threads=1, out=None):
    import torch

    torch.set_num_threads(max(1, threads))
    ckpt = load_checkpoint(model_path)
    images, _, class_names = test_subset(test_path, test_limit)
    if list(images.shape[1:]) != list(ckpt["image_shape"]) or len(class_names) != ckpt["n_classes"]:
        raise PipelineError(
            f"{test_path}: test images {list(images.shape[1:])} with {len(class_names)} classes do not match the "
            f"models in {model_path} ({ckpt['image_shape']}, {ckpt['n_classes']} classes); prepare the test set of "
            "the same dataset"
        )
    learner = learners.get(ckpt["learner"])
    dev = learners.pick_device(device)
    logits = model_logits(learner, ckpt, images, dev)
    if not np.isfinite(logits).any(axis=-1).all() or np.isnan(logits).any():
        raise PipelineError(f"{model_path}: a model produced NaN or all -inf scores; check the learner parameters "
                            "(e.g. a lower learning rate) and train again")
    table = predictions_table([m["model_id"] for m in ckpt["models"]], logits, with_logits)
    write_parquet(out, table, row_group_size=ROW_GROUP_TESTS * len(ckpt["models"]))
