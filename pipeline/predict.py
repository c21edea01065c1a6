"""Predict stage: scores and votes of every model of one shard on every test sample."""

import json
from pathlib import Path

import numpy as np

from . import learners, provenance
from .atomic import atomic_path, check_folder
from .certify.votes import votes_from_logits
from .data import load_split
from .data.prepared import array_digest
from .errors import PipelineError


def load_checkpoint(path) -> dict:
    import torch

    if not Path(path).is_file():
        raise PipelineError(f"{path}: checkpoint missing; run the train step first (snakemake does)")
    fix = "delete it and run snakemake again (it retrains the shard)"
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise PipelineError(f"{path}: unreadable checkpoint ({type(err).__name__}); {fix}") from None
    if not isinstance(ckpt, dict) or "content_sha256" not in ckpt:
        raise PipelineError(f"{path}: not a checkpoint of this pipeline's train step (or written by an older "
                            f"version); {fix}")
    stored = ckpt.pop("content_sha256")
    if provenance.content_digest(ckpt) != stored:
        raise PipelineError(f"{path}: damaged checkpoint (its content does not match its SHA-256); {fix}")
    return ckpt


def test_subset(test_path, test_limit=None):
    images, labels, class_names = load_split(test_path)
    if test_limit is not None:
        images, labels = images[:test_limit], labels[:test_limit]
    return images, labels, class_names


ROW_GROUP_TESTS = 512  # test samples per Parquet row group, so certify can read test chunks
TEST_CHUNK_PIXELS = 2**23  # test pixels scored at once (bounds predict's memory; all of MNIST's test set)


def predictions_table(model_ids, logits: np.ndarray, with_logits: bool, first_test: int = 0):
    """Long table, one row per (test sample, model), ordered by test sample then model:
    test_id int32, model_id int32, vote int16 [, logits float32[C]].

    logits: float32[n_models, n_test, C], scores of test samples first_test, first_test + 1, ...
    """
    import pyarrow as pa

    n_models, n_test, n_classes = logits.shape
    by_test = np.ascontiguousarray(logits.transpose(1, 0, 2))  # [n_test, n_models, C]
    columns = {
        "test_id": pa.array(np.repeat(np.arange(first_test, first_test + n_test, dtype=np.int32), n_models)),
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


def test_chunk_size(image_shape) -> int:
    """Test samples per chunk: a multiple of ROW_GROUP_TESTS holding about TEST_CHUNK_PIXELS pixels."""
    pixels = max(1, int(np.prod(image_shape)))
    return max(ROW_GROUP_TESTS, TEST_CHUNK_PIXELS // pixels // ROW_GROUP_TESTS * ROW_GROUP_TESTS)


def checked_checkpoint(model_path, shard_path, learner_name, learner_params) -> dict:
    """The checkpoint, refused unless it was trained on the shard file's subsets with the current learner spec."""
    from .train import read_shard

    ckpt = load_checkpoint(model_path)
    fix = f"retrain it: delete {model_path} and run snakemake again"
    record = ckpt.get("provenance")
    if record is None:
        raise PipelineError(f"{model_path}: records no provenance (written by an older version); {fix}")
    expected = provenance.learner_spec(learner_name, learners.resolve_params(learner_name, learner_params))
    provenance.check_learner(str(model_path), record["learner"], expected, fix)
    provenance.check_models(str(model_path), record["models"], shard_path, read_shard(shard_path), fix)
    return ckpt


def predict_shard(model_path, shard_path, test_path, learner_name, learner_params, test_limit=None, with_logits=False,
                  device="auto", threads=1, out=None):
    """Scores and votes of the shard's models on the test set, written as a predictions table to ``out``.

    The checkpoint must match the shard file and the learner spec (name, params, code); the table's
    schema metadata records what it was computed from (see pipeline.provenance). Test samples are
    processed in chunks (``test_chunk_size``), so memory does not grow with the test set.
    """
    import pyarrow.parquet as pq
    import torch

    check_folder(out)
    torch.set_num_threads(max(1, threads))
    ckpt = checked_checkpoint(model_path, shard_path, learner_name, learner_params)
    images, labels, class_names = test_subset(test_path, test_limit)
    if list(images.shape[1:]) != list(ckpt["image_shape"]) or len(class_names) != ckpt["n_classes"]:
        raise PipelineError(
            f"{test_path}: test images {list(images.shape[1:])} with {len(class_names)} classes do not match the "
            f"models in {model_path} ({ckpt['image_shape']}, {ckpt['n_classes']} classes); prepare the test set of "
            "the same dataset"
        )
    learner = learners.get(ckpt["learner"])
    dev = learners.pick_device(device)
    model_ids = [m["model_id"] for m in ckpt["models"]]
    record = {
        "shard": ckpt["shard"], "learner": ckpt["provenance"]["learner"], "models": ckpt["provenance"]["models"],
        "checkpoint_sha256": provenance.file_digest(model_path), "logits": bool(with_logits),
        "test": {"n_test": len(labels), "images_sha256": array_digest(images), "labels_sha256": array_digest(labels)},
    }
    step = test_chunk_size(images.shape[1:])
    with atomic_path(out) as tmp:
        writer = None
        for start in range(0, len(images), step):
            logits = model_logits(learner, ckpt, images[start:start + step], dev)
            if not np.isfinite(logits).any(axis=-1).all() or np.isnan(logits).any():
                raise PipelineError(f"{model_path}: a model produced NaN or all -inf scores; check the learner "
                                    "parameters (e.g. a lower learning rate) and train again")
            table = predictions_table(model_ids, logits, with_logits, first_test=start)
            if writer is None:
                schema = table.schema.with_metadata({provenance.PREDICTIONS_KEY: json.dumps(record, sort_keys=True)})
                writer = pq.ParquetWriter(tmp, schema, write_page_checksum=True)
            writer.write_table(table.replace_schema_metadata(writer.schema.metadata),
                               row_group_size=ROW_GROUP_TESTS * len(model_ids))
        if writer is None:
            raise PipelineError(f"{test_path}: no test samples; check test_limit in params.yaml")
        writer.close()
