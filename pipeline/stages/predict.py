"""Predict stage (rules/predict.smk): votes of every model of one shard on every test sample and, for runs with
Run-Off Election, the run-off pass: once every shard's votes are in, which classes each round-1 finalist beats
in each of the shard's models (pipeline/artifacts/runoff.py).

The checkpoint must match the shard file and the learner spec (name, params, code), or it is refused
as stale; the predictions and run-off files record what they were computed from
(docs/design.md#provenance). Test samples are scored in chunks, so memory does not grow with the test set.
"""

import numpy as np

from .. import learners, provenance
from ..artifacts.checkpoints import checkpoint_scores, load_checked_checkpoint
from ..artifacts.predictions import load_chunk, predictions_table, predictions_writer, read_record
from ..artifacts.runoff import finalists_digest, run_finalists, runoff_table, runoff_writer
from ..artifacts.splits import load_test_subset, test_digests
from ..atomic import check_folder
from ..certify.roe import finalist_beats
from ..certify.votes import votes_from_logits
from ..errors import PipelineError
from ..resources import test_chunk_size


def shard_scores(model_path, shard_path, test_path, learner_name, learner_params, test_limit, device, threads):
    """(record, model ids, n_classes, chunks): the provenance record the shard's outputs carry, and an iterator of
    (first test sample, scores float32[n_models, n, C]) over the first ``test_limit`` test samples."""
    import torch

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
        "test": test_digests(images, labels),
    }

    def chunks():
        step = test_chunk_size(images.shape[1:])
        for start in range(0, len(images), step):
            scores = checkpoint_scores(learner, checkpoint, images[start:start + step], dev)
            if not np.isfinite(scores).any(axis=-1).all() or np.isnan(scores).any():
                raise PipelineError(f"{model_path}: a model produced NaN or all -inf scores; check the learner "
                                    "parameters (e.g. a lower learning rate) and train again")
            yield start, scores

    return record, model_ids, len(class_names), chunks()


def predict_shard(model_path, shard_path, test_path, learner_name, learner_params, test_limit=None, device="auto",
                  threads=1, out=None):
    """Votes of every model of the shard on the first ``test_limit`` test samples, written to ``out``."""
    check_folder(out)
    record, model_ids, _, chunks = shard_scores(model_path, shard_path, test_path, learner_name, learner_params,
                                                test_limit, device, threads)
    with predictions_writer(out, record, len(model_ids)) as write:
        for start, scores in chunks:
            write(predictions_table(model_ids, votes_from_logits(scores), start))


def runoff_shard(model_path, shard_path, test_path, prediction_paths, own_predictions, learner_name, learner_params,
                 n_models: int, test_limit=None, device="auto", threads=1, out=None):
    """The shard's run-off bits: for every test sample and model, which classes each finalist beats, the finalists
    taken from every shard's votes (``prediction_paths``, ``n_models`` models in all; ``own_predictions``: this
    shard's, whose votes the scores recomputed here must give again). Written to ``out``."""
    check_folder(out)
    record, model_ids, n_classes, chunks = shard_scores(model_path, shard_path, test_path, learner_name,
                                                        learner_params, test_limit, device, threads)
    own = read_record(own_predictions)
    if (own.get("checkpoint_sha256"), own.get("test")) != (record["checkpoint_sha256"], record["test"]):
        raise PipelineError(f"{own_predictions}: predicted from another checkpoint or test set than {model_path} and "
                            f"{test_path}; delete it and run snakemake again (it re-predicts the shard)")
    m1, m2 = run_finalists(prediction_paths, record["test"]["n_test"], n_models, n_classes)
    record["finalists_sha256"] = finalists_digest(m1, m2)
    with runoff_writer(out, record, len(model_ids)) as write:
        for start, scores in chunks:
            stop = start + scores.shape[1]
            votes = load_chunk([own_predictions], start, stop, len(model_ids), model_ids=sorted(model_ids))
            if not np.array_equal(votes, votes_from_logits(scores).T[:, np.argsort(model_ids)]):
                raise PipelineError(f"{own_predictions}: its votes differ from the scores {model_path} gives now "
                                    "(the device computes them differently from run to run); set device: cpu, or "
                                    "delete the shard's predictions and run snakemake again")
            by_test = np.ascontiguousarray(scores.transpose(1, 0, 2))  # [n, n_models, C]
            write(runoff_table(model_ids, finalist_beats(by_test, m1[start:stop], m2[start:stop]), start))
