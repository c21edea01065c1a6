"""The nearest-neighbour learners (orient_nn, hog_nn) decide in exact arithmetic: their scores do not depend on
threads, BLAS kernels or CPU vector instructions, and equal a plain integer reference on inputs built to contain
ties and near-ties."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from pipeline.learners import hog_nn, orient_nn, resolve_params
from pipeline.learners.features import deskew, rotate

from .conftest import REPO

LEARNERS = {"orient_nn": orient_nn, "hog_nn": hog_nn}
PARAMS = {name: resolve_params(name, {}) for name in LEARNERS}
SCALES = {"orient_nn": 2.0 ** 11, "hog_nn": 2.0 ** 14}  # the defaults on 28 x 28 images


def near_tie_data(seed=0, name="hog_nn"):
    """Training subsets holding exact duplicates and one-pixel variants of each other (ties and near-ties
    in distance), and test images equal to or one pixel away from training images."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(12, 28, 28), dtype=np.uint8)
    base[:, :4] = 0  # MNIST-like empty border
    variants = base.copy()
    variants[:, 14, 14] ^= 1  # one pixel off by one: distances within rounding of each other
    images = np.concatenate([base, base, variants])  # exact duplicates with other labels: exact ties
    labels = np.concatenate([np.arange(12) % 10, (np.arange(12) + 3) % 10, (np.arange(12) + 5) % 10])
    test = np.concatenate([base[:6], variants[6:], rotate(base[:4], 3)])
    states = [LEARNERS[name].fit(images[i::3], labels[i::3], 10, 0, PARAMS[name], "cpu") for i in range(3)]
    return states, test


def reference_scores(states, test, name):
    """The same scores computed with int64 numpy arithmetic, one model and one test image at a time."""
    learner, params = LEARNERS[name], PARAMS[name]
    test_f = learner.features(test, params)
    scale = learner.quantisation_scale(params, test_f.shape[1])
    t = np.rint(test_f * scale).astype(np.int64)
    out = np.empty((len(states), len(test), 10), np.float32)
    for m, state in enumerate(states):
        images, labels = learner.augmented(state["images"].numpy(), state["labels"].numpy(), params)
        r = np.rint(learner.features(images, {**params, "deskew": False}) * scale).astype(np.int64)
        for j in range(len(test)):
            d = ((r - t[j]) ** 2).sum(axis=1)  # exact squared distances
            for c in range(10):
                best = d[labels == c].min() if (labels == c).any() else None
                out[m, j, c] = -np.inf if best is None else np.float32(-float(best) / scale ** 2)
    return out


@pytest.mark.parametrize("name", LEARNERS)
def test_scores_equal_an_exact_integer_reference_on_ties_and_near_ties(name):
    states, test = near_tie_data(name=name)
    fast = LEARNERS[name].predict(states, test, 10, PARAMS[name], torch.device("cpu"))
    assert np.array_equal(fast, reference_scores(states, test, name))
    ties = (fast == fast.max(axis=-1, keepdims=True)).sum(axis=-1)
    assert (ties > 1).any()  # the data does hold exact ties between classes (votes go to the smaller class)


@pytest.mark.parametrize("name", LEARNERS)
def test_quantised_distances_stay_exact_in_float32(name, mnist_train):
    """The scale's bound holds on real features: every squared norm (hence every partial sum) is < 2**23."""
    learner, params = LEARNERS[name], PARAMS[name]
    states, test = near_tie_data(name=name)
    images = np.concatenate([test, states[0]["images"].numpy(), mnist_train[0][:300]])
    feats = learner.features(images, params)
    scale = learner.quantisation_scale(params, feats.shape[1])
    q = np.rint(feats * scale)
    assert (q >= 0).all() and 2 * (q ** 2).sum(axis=1).max() <= learner.EXACT_LIMIT
    assert (feats ** 2).sum(axis=1).max() <= learner.norm_bound(params)
    assert scale == SCALES[name]


SCRIPT = """
import json, sys, numpy as np, torch
from tests.test_exact import near_tie_data, PARAMS, LEARNERS
torch.set_num_threads({threads})
states, test = near_tie_data(1, "{name}")
out = LEARNERS["{name}"].predict(states, test, 10, PARAMS["{name}"], torch.device("cpu"))
print(json.dumps(out.tobytes().hex()))
"""


@pytest.mark.parametrize("name", LEARNERS)
@pytest.mark.parametrize("threads, env", [(2, {"ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                                                "OPENBLAS_CORETYPE": "Nehalem"})])
def test_scores_do_not_depend_on_threads_or_vector_instructions(threads, env, name):
    """The same predict run with 1 thread and default kernels, and with 2 threads, no vector kernels in
    torch and SSE-only BLAS kernels (numpy's too: orient_nn's integer matrix products), gives identical bytes."""
    def run(n, extra):
        result = subprocess.run([sys.executable, "-c", SCRIPT.format(threads=n, name=name)],
                                capture_output=True, text=True, cwd=REPO, env={**os.environ, **extra}, check=True)
        return json.loads(result.stdout.strip().splitlines()[-1])

    assert run(1, {}) == run(threads, env)


def test_deskew_and_rotate_map_each_image_by_itself():
    rng = np.random.default_rng(3)
    images = (rng.integers(0, 2, size=(6, 28, 28)) * 120).astype(np.uint8)
    assert np.array_equal(deskew(images[2:3])[0], deskew(images)[2])
    assert np.array_equal(rotate(images[1:2], -10)[0], rotate(images, -10)[1])


def test_orientation_pooling_maps_each_image_by_itself_with_exact_integer_weights():
    """orient_nn's features of an image do not depend on the other images of the batch, and its blur and pooling
    weights are the integers the docs give (computed once from the parameters)."""
    from pipeline.learners.features import gaussian_weights, orientation_pooling, pooling_levels

    rng = np.random.default_rng(5)
    images = (rng.integers(0, 2, size=(5, 28, 28)) * 200).astype(np.uint8)
    assert np.array_equal(orientation_pooling(images[3:4])[0], orientation_pooling(images)[3])
    assert gaussian_weights(np.arange(-3, 4), 0.7, 8).tolist() == [0, 4, 92, 256, 92, 4, 0]
    first, second = pooling_levels(28, np.array([1.5, 13.5]), 2.0)
    assert first[0, :4].tolist() == [12367, 15880, 15880, 12367] and (first < 2 ** 14).all()
    assert (second[first > 0] == 0).all() and 0 < second.max() < 2 ** 14 and (second > 0).sum() > 0
