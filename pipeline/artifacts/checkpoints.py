"""Checkpoints: ``work/<run>/models/shard_<s>.pt``, written by the train stage, one per shard.

A dict readable with ``torch.load(weights_only=True)``: ``learner``, ``params``, ``n_classes``,
``class_names``, ``image_shape``, ``shard``, ``models`` (per base model ``model_id``, ``seeds``,
``n_samples`` and ``versions``: one learner state per DPA* version), ``provenance`` (the learner spec
and every model's record, see pipeline.provenance) and ``content_sha256`` over all of that, so damaged
bytes that still unpickle are refused. Saved through memory, so equal content gives equal bytes.
"""

import hashlib
import io
from pathlib import Path

import numpy as np

from .. import provenance
from ..atomic import write_bytes
from ..errors import PipelineError
from .partition_files import read_shard

RETRAIN = "delete it and run snakemake again (it retrains the shard)"


def save_checkpoint(path, checkpoint: dict) -> None:
    """Write ``checkpoint`` with its content digest. torch.save goes to memory first: saved to a path, the
    zip's root folder would be named after the temporary file, and equal checkpoints differ in bytes."""
    import torch

    buffer = io.BytesIO()
    torch.save({**checkpoint, "content_sha256": provenance.content_digest(checkpoint)}, buffer)
    write_bytes(path, buffer.getvalue())


def load_checkpoint(path):
    """(checkpoint without its digest, SHA-256 of the file), refused when missing, unreadable or damaged.
    The file is read once, for both."""
    if not Path(path).is_file():
        raise PipelineError(f"{path}: checkpoint missing; run the train step first (snakemake does)")
    return load_checkpoint_bytes(Path(path).read_bytes(), path)


def load_checkpoint_bytes(data: bytes, what, fix=RETRAIN):
    """(checkpoint without its digest, SHA-256 of ``data``) from a checkpoint file's bytes (``what`` names it),
    read with ``torch.load(weights_only=True)`` and refused when unreadable or damaged."""
    import torch

    try:
        checkpoint = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as err:
        raise PipelineError(f"{what}: unreadable checkpoint ({type(err).__name__}); {fix}") from None
    if not isinstance(checkpoint, dict) or "content_sha256" not in checkpoint:
        raise PipelineError(f"{what}: not a checkpoint of this pipeline's train step (or written by an older "
                            f"version); {fix}")
    stored = checkpoint.pop("content_sha256")
    if provenance.content_digest(checkpoint) != stored:
        raise PipelineError(f"{what}: damaged checkpoint (its content does not match its SHA-256); {fix}")
    return checkpoint, hashlib.sha256(data).hexdigest()


def load_checked_checkpoint(path, shard_path, spec: dict):
    """(checkpoint, file SHA-256) as load_checkpoint, refused unless trained on the subsets of the shard file
    at ``shard_path`` with the learner spec ``spec``."""
    checkpoint, file_sha256 = load_checkpoint(path)
    shard = read_shard(shard_path)
    fix = f"retrain it: delete {path} and run snakemake again"
    record = checkpoint.get("provenance")
    if record is None:
        raise PipelineError(f"{path}: records no provenance (written by an older version); {fix}")
    provenance.check_learner(str(path), record["learner"], spec, fix)
    provenance.check_models(str(path), record["models"], shard_path, shard, fix)
    return checkpoint, file_sha256


def checkpoint_scores(learner, checkpoint: dict, images, device) -> np.ndarray:
    """Scores float32[n_models, n_test, C]; a DPA* model's scores are the sum over its versions."""
    n_versions = len(checkpoint["models"][0]["versions"])
    states = [v for m in checkpoint["models"] for v in m["versions"]]
    per_version = learner.predict(states, images, checkpoint["n_classes"], checkpoint["params"], device)
    per_version = per_version.reshape(len(checkpoint["models"]), n_versions, *per_version.shape[1:])
    return per_version[:, 0] if n_versions == 1 else per_version.sum(axis=1, dtype=np.float32)
