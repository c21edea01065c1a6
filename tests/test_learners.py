"""Learner contract: deterministic, each model a function of its own subset only."""

import numpy as np
import pytest
import torch

from pipeline import learners
from pipeline.errors import PipelineError
from pipeline.learners import hog_nn, nin, torch_common

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def data(mnist_train):
    images, labels, _ = mnist_train
    return images[:300], labels[:300], images[300:400]


LEARNER_CASES = [("hog_nn", {}), ("small_cnn", {"epochs": 1, "width": 8}), ("nin", {"epochs": 1})]


@pytest.mark.parametrize("name, params", LEARNER_CASES)
def test_same_subset_and_seed_give_identical_logits(data, name, params):
    images, labels, test = data
    learner, params = learners.get(name), learners.resolve_params(name, params)
    runs = [learner.predict([learner.fit(images[:100], labels[:100], 10, 3, params, CPU)], test, 10, params, CPU)
            for _ in range(2)]
    assert runs[0].shape == (1, 100, 10) and runs[0].dtype == np.float32
    assert np.array_equal(runs[0], runs[1])


@pytest.mark.parametrize("name, params", LEARNER_CASES)
def test_model_scores_do_not_depend_on_other_models_in_the_shard(data, name, params):
    images, labels, test = data
    learner, params = learners.get(name), learners.resolve_params(name, params)
    a = learner.fit(images[:100], labels[:100], 10, 0, params, CPU)
    b = learner.fit(images[100:200], labels[100:200], 10, 1, params, CPU)
    c = learner.fit(images[200:260], labels[200:260], 10, 2, params, CPU)
    alone = learner.predict([a], test, 10, params, CPU)[0]
    assert np.array_equal(learner.predict([a, b], test, 10, params, CPU)[0], alone)
    assert np.array_equal(learner.predict([c, a], test, 10, params, CPU)[1], alone)


def test_hog_nn_scores_are_negative_nearest_squared_distances_per_class(data):
    images, labels, test = data
    params = learners.resolve_params("hog_nn", {})
    subset = np.flatnonzero(labels[:100] != 3)  # class 3 absent from this model's subset
    scores = hog_nn.predict([hog_nn.fit(images[subset], labels[subset], 10, 0, params, CPU)], test, 10, params, CPU)[0]
    assert np.isneginf(scores[:, 3]).all()
    # Training images are deskewed and enter with their rotated copies; test images are deskewed.
    train_images, train_labels = hog_nn.augmented(images[subset], labels[subset], params)
    assert len(train_images) == 3 * len(subset)
    train_f = hog_nn.features(train_images, {**params, "deskew": False})
    test_f = hog_nn.features(test, params)
    scale = hog_nn.quantisation_scale(params, test_f.shape[1])
    t, r = (np.rint(f * scale).astype(np.int64) for f in (test_f, train_f))  # the exact-integer features
    squared = ((t[:, None, :] - r[None, :, :]) ** 2).sum(-1)
    for c in (0, 1, 7):
        expected = (-squared[:, train_labels == c].min(axis=1) / scale ** 2).astype(np.float32)
        assert np.array_equal(scores[:, c], expected)


def test_normalization_statistics_are_the_models_own(data):
    images = data[0][:50]
    mean, std = torch_common.normalization_stats(images)
    pixels = images.astype(np.float64) / 255
    assert np.allclose(mean.numpy(), [pixels.mean()], atol=1e-6)
    assert np.allclose(std.numpy(), [pixels.std(ddof=1)], atol=1e-6)
    colour = np.random.default_rng(0).integers(0, 256, size=(6, 8, 8, 3), dtype=np.uint8)
    mean, std = torch_common.normalization_stats(colour)
    assert np.allclose(mean.numpy(), (colour / 255).mean(axis=(0, 1, 2)), atol=1e-6)
    assert np.allclose(std.numpy(), (colour / 255).reshape(-1, 3).std(axis=0, ddof=1), atol=1e-6)


def test_unknown_learner_and_parameter():
    with pytest.raises(PipelineError, match="unknown learner 'svm'"):
        learners.get("svm")
    with pytest.raises(PipelineError, match="no parameter 'epochz'"):
        learners.resolve_params("small_cnn", {"epochz": 3})


def test_nin_architecture_and_schedule():
    model = nin.build(1, 10)
    convs = [m for m in model if isinstance(m, torch.nn.Conv2d)]
    assert [(c.in_channels, c.out_channels, c.kernel_size[0]) for c in convs] == [
        (1, 192, 5), (192, 160, 1), (160, 96, 1), (96, 192, 5), (192, 192, 1), (192, 192, 1),
        (192, 192, 3), (192, 192, 1), (192, 192, 1)]
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in model) == 9
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)
    params = learners.resolve_params("nin", {})
    opt = torch.optim.SGD(model.parameters(), lr=params["lr"])
    sched = nin.multistep(params)(opt, steps_per_epoch=2)
    lrs = []
    for _ in range(200 * 2):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == 0.1 and lrs[119] == 0.1 and lrs[120] == pytest.approx(0.02)  # x0.2 after epoch 60
    assert lrs[240] == pytest.approx(0.004) and lrs[320] == pytest.approx(0.0008) and lrs[-1] == pytest.approx(0.0008)


def test_nin_resize_and_flip_augmentation():
    from pipeline.learners import torch_common as tc

    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    out = tc.crop_and_flip(x, 1, torch.tensor([[1, 1], [0, 2]]), torch.tensor([False, True]))
    assert torch.equal(out[0], x[0])  # centre crop, no flip
    expected = torch.nn.functional.pad(x[1], (1, 1, 1, 1))[:, 0:4, 2:6].flip(2)
    assert torch.equal(out[1], expected)
    assert nin.prepared_tensor(np.zeros((3, 30, 40, 3), np.uint8), {"resize": 48}).shape == (3, 3, 48, 48)
