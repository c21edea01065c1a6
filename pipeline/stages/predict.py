"""Predict stage (rules/predict.smk): scores and votes of every model of one shard on every test sample.

The checkpoint must match the shard file and the learner spec (name, params, code), or it is refused
as stale; the predictions file (pipeline/artifacts/predictions.py) records what it was computed from
(docs/design.md#provenance). Test samples are scored in chunks, so memory does not grow with the test set.
"""

import numpy as np

from .. import learners, provenance
from ..artifacts.checkpoints import checkpoint_scores, load_checked_checkpoint
from ..artifacts.predictions import predictions_writer
from ..artifacts.splits import load_test_subset, test_digests
from ..atomic import check_folder
from ..errors import PipelineError
from ..resources import test_chunk_size


def predict_shard(model_path, shard_path, test_path, learner_name, learner_params, test_limit=None, with_logits=False,
                  device="auto", threads=1, out=None):
    """Score the first ``test_limit`` test samples with every model of the shard; write the predictions to ``out``."""
    import torch

    check_folder(out)
    torch.set_num_threads(max(1, threads))
    spec = provenance.learner_spec(learner_name, learners.resolve_params(learner_name, learner_params))
    checkpoint, checkpoint_sha256 = load_checked_checkpoint(model_path, shard_path, spec)
    images, labels, class_names = load_test_subset(test_path, test_limit)
    if list(images.shape[1:]) != list(checkpoint["image_shape"]) or len(class_names) != checkpoint["n_classes"]:
        raise PipelineError(
            f"{test_path}: test images {list(images.shape[1:])} with {len(class_names)} classes do not match the "
            f"models in {model_path} ({checkpoint['image_shape']}, {checkpoint['n_classes']} classes); prepare the "
            "test set of the same dataset"
        )
    learner = learners.get(checkpoint["learner"])
    dev = learners.pick_device(device)
    model_ids = [m["model_id"] for m in checkpoint["models"]]
    record = {
        "shard": checkpoint["shard"], "learner": checkpoint["provenance"]["learner"],
        "models": checkpoint["provenance"]["models"], "checkpoint_sha256": checkpoint_sha256,
        "logits": bool(with_logits), "test": test_digests(images, labels),
    }
    step = test_chunk_size(images.shape[1:])
    with predictions_writer(out, record, len(model_ids)) as write:
        for start in range(0, len(images), step):
            logits = checkpoint_scores(learner, checkpoint, images[start:start + step], dev)
            if not np.isfinite(logits).any(axis=-1).all() or np.isnan(logits).any():
                raise PipelineError(f"{model_path}: a model produced NaN or all -inf scores; check the learner "
                                    "parameters (e.g. a lower learning rate) and train again")
            write(model_ids, logits, with_logits, start)
