"""Train stage (rules/train.smk): every base model of one shard, each on its own content-ordered subset.

Writes the shard's checkpoint (pipeline/artifacts/checkpoints.py), which records the learner spec
and every model's subset digest and seeds (docs/design.md#provenance).
"""

import numpy as np

from .. import learners
from ..artifacts.checkpoints import save_checkpoint
from ..artifacts.partition_files import read_shard
from ..atomic import check_folder
from ..edits import training_pool
from ..errors import PipelineError
from ..partition import sample_digests, subset_digest
from ..progress import bar
from ..provenance import learner_spec, model_records


def training_subset(images, labels, model: dict, shard_path):
    """The model's samples in its stored (content) order, checked against the stored digest."""
    ids = np.asarray(model["sample_ids"], dtype=np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= len(labels)):
        raise PipelineError(f"{shard_path}: model {model['model_id']} names samples outside the training set; "
                            "re-run the partition step (snakemake --forcerun partition_<run>)")
    x, y = images[ids], labels[ids]
    if subset_digest(sample_digests(x, y)) != model["subset_sha256"]:
        raise PipelineError(f"{shard_path}: model {model['model_id']}'s training samples differ from the prepared "
                            "data; re-run the partition step (snakemake --forcerun partition_<run>)")
    return x, y


def train_shard(shard_path, train_path, learner_name, learner_params, device="auto", threads=1, out=None,
                inserted_path=None):
    """Fit every model of the shard (each DPA* version with its own seed) and save them to ``out``.

    Sample ids refer to the prepared split followed by the inserted samples of ``inserted_path``
    (the partition step's inserted.npz; None: the prepared split alone), see pipeline.edits.
    """
    import torch

    check_folder(out)  # before the work, not after
    torch.set_num_threads(max(1, threads))
    learner = learners.get(learner_name)
    params = learners.resolve_params(learner_name, learner_params)
    dev = learners.pick_device(device)
    shard = read_shard(shard_path)
    images, labels, class_names = training_pool(train_path, inserted_path)
    models = []
    for model in bar(shard["models"], desc=f"train shard {shard['shard']} ({learner_name})"):
        x, y = training_subset(images, labels, model, shard_path)
        versions = [learner.fit(x, y, len(class_names), seed, params, dev) for seed in model["seeds"]]
        models.append({"model_id": model["model_id"], "seeds": model["seeds"], "n_samples": len(y),
                       "versions": versions})
    checkpoint = {
        "learner": learner_name, "params": params, "n_classes": len(class_names), "class_names": class_names,
        "image_shape": list(images.shape[1:]), "shard": shard["shard"], "models": models,
        # what the models were computed from: checked by predict against the shard file and params
        "provenance": {"learner": learner_spec(learner_name, params), "models": model_records(shard["models"])},
    }
    save_checkpoint(out, checkpoint)
