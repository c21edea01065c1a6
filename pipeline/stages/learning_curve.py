"""Learning-curve stage (rules/study.smk, docs/studies.md#learning-curve): the learner trained on random subsets
of one size, every draw, and the test accuracy of each; ``learning_curve_summary`` (pipeline/stages/study.py)
fits the curve."""

import numpy as np

from .. import learners
from ..artifacts.learning_curve import write_point
from ..artifacts.splits import array_digest, load_split, load_test_subset, test_digests
from ..atomic import check_folder
from ..certify.votes import votes_from_logits
from ..errors import PipelineError
from ..provenance import learner_spec
from ..studies import subset


def curve_point(train_path, test_path, learner_name, learner_params, size, seeds, sample_seed, train_limit=None,
                test_limit=None, device="auto", threads=1, out=None) -> dict:
    """Test accuracy of the learner trained on ``seeds`` random subsets of ``size`` training samples (one subset
    when ``size`` is the whole training set): the subsets are nested across sizes (pipeline.studies.subset)."""
    import torch

    check_folder(out)
    torch.set_num_threads(max(1, threads))
    learner = learners.get(learner_name)
    params = learners.resolve_params(learner_name, learner_params)
    dev = learners.pick_device(device)
    images, labels, class_names = load_split(train_path)
    n_train = min(train_limit or len(labels), len(labels))
    if not 1 <= size <= n_train:
        raise PipelineError(f"learning curve: size {size} is outside 1..{n_train}, the training samples of "
                            f"{train_path}; run snakemake again (it plans the sizes from the prepared data once they "
                            "exist), or lower the study's max_size")
    test_images, test_labels, _ = load_test_subset(test_path, test_limit)
    draws = 1 if size == n_train else seeds
    states = []
    for draw in range(draws):
        ids = subset(n_train, size, sample_seed, draw)
        states.append(learner.fit(images[ids], labels[ids], len(class_names), draw, params, dev))
    scores = learner.predict(states, test_images, len(class_names), params, dev)  # [draws, n_test, C]
    accuracy = [float(np.mean(votes_from_logits(s) == test_labels)) for s in scores]
    point = {"size": int(size), "n_train": int(n_train), "n_test": int(len(test_labels)), "accuracy": accuracy,
             "sample_seed": int(sample_seed), "learner": learner_spec(learner_name, params),
             "train": {"n_train": int(n_train), "labels_sha256": array_digest(np.ascontiguousarray(labels[:n_train])),
                       "images_sha256": array_digest(np.ascontiguousarray(images[:n_train]))},
             "test": test_digests(test_images, test_labels), "n_classes": len(class_names)}
    write_point(out, point)
    return point
