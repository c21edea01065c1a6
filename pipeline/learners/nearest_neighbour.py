"""What the nearest-neighbour learners (hog_nn, orient_nn) share: a base model is its own training subset
(with fixed augmented copies: rotations of its deskewed images), and it scores class c by minus the
Euclidean distance from the test sample to the nearest of its samples of class c, in a fixed per-image
feature space (scores: minus the squared distance, which orders classes as the distance does; a class
absent from the subset scores -inf). Nothing is fitted to any data, so a model
depends on its own subset alone.

Exact arithmetic (docs/design.md#determinism): features are quantised to integers with a scale fixed by
the parameters and the feature count (``quantisation_scale``), small enough that every squared distance,
and every partial sum of the products that make it, is an integer below 2**24. float32 represents
those exactly, so the matrix products give the same distances whatever the BLAS library, the CPU's
vector instructions, the number of threads or the grouping of samples (per model, or per bucket shared
by several models: pipeline/nearest.py); nearest neighbours, scores, votes and ties do not depend on
the machine.
"""

import numpy as np

from ..progress import bar
from .features import deskew, rotate

EXACT_LIMIT = 2**24  # float32 holds every integer up to here exactly
FEATURE_CHUNK_PIXELS = 2**21  # images mapped to features at once (bounds the memory of the feature maps)


def quantisation_scale(norm_bound: float, n_features: int, learner: str) -> float:
    """The largest power of two s such that features quantised as rint(s * f) keep every squared distance
    exact in float32, for non-negative features with ||f||^2 <= ``norm_bound``.

    ||rint(s f)|| <= s sqrt(B) + sqrt(D) / 2 =: V; features are non-negative, so ||a||^2 + ||b||^2 and
    2 a.b (and all their partial sums) are at most 2 V^2; 2 V^2 <= 2**24 is the condition.
    """
    v_max = np.sqrt(EXACT_LIMIT / 2)
    s = (v_max - np.sqrt(n_features) / 2) / np.sqrt(norm_bound)
    if s < 1:
        raise ValueError(f"{learner}: {n_features} features are too many for exact float32 distances")
    return float(2.0 ** np.floor(np.log2(s)))


def chunked(fn, images: np.ndarray) -> np.ndarray:
    """``fn`` (a per-image map to float[n, D]) over ``images`` in chunks of about FEATURE_CHUNK_PIXELS pixels."""
    step = max(1, FEATURE_CHUNK_PIXELS // max(1, int(np.prod(images.shape[1:]))))
    if len(images) <= step:
        return fn(images)
    return np.concatenate([fn(images[s:s + step]) for s in range(0, len(images), step)])


def augmented(images: np.ndarray, labels: np.ndarray, params: dict):
    """The training images (deskewed if asked) and their rotated copies, with labels repeated."""
    if params["deskew"]:
        images = deskew(images)
    copies = [images] + [rotate(images, angle) for angle in params["rotations"]]
    return np.concatenate(copies), np.tile(labels, len(copies))


def features(feature_map, images: np.ndarray, params: dict) -> np.ndarray:
    """``feature_map`` of the images, deskewed first if asked: float64[N, D]."""
    return feature_map(deskew(images) if params["deskew"] else images, params)


def embed_test(feature_map, norm_bound: float, learner: str, images: np.ndarray, params: dict):
    """Test images (deskewed if asked) as exact-integer features: (float32[N, D], scale)."""
    feats = chunked(lambda x: features(feature_map, x, params), images)
    scale = quantisation_scale(norm_bound, feats.shape[1], learner)
    return np.rint(feats * scale).astype(np.float32), scale


def embed_train(feature_map, images: np.ndarray, labels: np.ndarray, params: dict, scale: float):
    """Training images with their rotated copies as exact-integer features: (float32[M, D], labels int64[M],
    rows int64[M]: the index in ``images`` each feature row comes from). M = len(images) x (1 + rotations)."""
    own_images, own_labels = augmented(images, np.asarray(labels, np.int64), params)
    feats = chunked(lambda x: feature_map(x, params), own_images)
    rows = np.tile(np.arange(len(images), dtype=np.int64), len(own_images) // max(1, len(images)))
    return np.rint(feats * scale).astype(np.float32), own_labels, rows


def scores_from_min_sq(min_sq: np.ndarray, scale: float) -> np.ndarray:
    """Class scores float32 (same shape) from the smallest squared distances between quantised features
    (float32 exact integers): minus the squared distance in feature units, -min_sq / scale**2, exact (a power
    of two), so scores order the classes exactly as the distances do (a square root rounded to float32 could
    tie distinct distances); inf (no training sample of the class) gives -inf."""
    return np.multiply(min_sq, np.float32(-1.0 / (scale * scale)), dtype=np.float32)


def fit(images, labels, n_classes, seed, params, device):
    """A nearest-neighbour model is its training set: the subset's images and labels."""
    import torch

    return {"images": torch.from_numpy(np.ascontiguousarray(images)),
            "labels": torch.from_numpy(np.asarray(labels, np.int64))}


def predict(embed_test_fn, embed_train_fn, states, images, n_classes, params, device):
    """Scores float32[n_models, n_test, n_classes]: -(squared distance) to the nearest sample of each class.

    Each model's features and distances are computed on their own (test set x its subset, with its
    rotated copies), in exact arithmetic, so its scores are bit for bit a function of its subset,
    whatever other models share the shard; memory holds one model's features at a time. The shared
    path (pipeline/nearest.py, docs/design.md#shared-distances) gives the same scores bit for bit.
    """
    import torch

    from ..nearest import bucket_minima

    test_q, scale = embed_test_fn(images, params)
    test = torch.from_numpy(test_q).to(device)
    out = np.empty((len(states), len(test_q), n_classes), dtype=np.float32)
    for m, state in enumerate(bar(states, desc="predict")):
        train_q, own_labels, _ = embed_train_fn(state["images"].numpy(), state["labels"].numpy(), params, scale)
        one_bucket = np.zeros(len(own_labels), dtype=np.int64)
        min_sq = bucket_minima(test, torch.from_numpy(train_q).to(device), own_labels, one_bucket, 1, n_classes)
        out[m] = scores_from_min_sq(min_sq[:, 0], scale)
    return out


def bound(name: str, feature_map, norm_bound):
    """The learner interface's functions for one feature map (``feature_map(images, params) -> float64[N, D]``,
    images already deskewed where asked; ``norm_bound(params)``: a bound of ||f||^2):
    (features, quantisation_scale, embed_test, embed_train, predict)."""

    def features_of(images: np.ndarray, params: dict) -> np.ndarray:
        """Features of (deskewed) images: float64[N, D]."""
        return features(feature_map, images, params)

    def quantisation_scale_of(params: dict, n_features: int) -> float:
        return quantisation_scale(norm_bound(params), n_features, name)

    def embed_test_of(images: np.ndarray, params: dict):
        """Test images as exact-integer features: (float32[N, D], scale)."""
        return embed_test(feature_map, norm_bound(params), name, images, params)

    def embed_train_of(images: np.ndarray, labels: np.ndarray, params: dict, scale: float):
        """Training images with their rotated copies as exact-integer features (see embed_train)."""
        return embed_train(feature_map, images, labels, params, scale)

    def predict_of(states, images, n_classes, params, device):
        """Scores float32[n_models, n_test, n_classes], every model on its own (see predict)."""
        return predict(embed_test_of, embed_train_of, states, images, n_classes, params, device)

    return features_of, quantisation_scale_of, embed_test_of, embed_train_of, predict_of
