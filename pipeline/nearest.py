"""Shared nearest-neighbour distances (docs/design.md#shared-distances).

A nearest-neighbour base model scores class c by its smallest distance from the test sample to a training
sample of class c. The smallest distance over a model's training set is the smallest of the smallest
distances over its buckets, so the distances from every test sample to every training sample are computed
once, reduced per bucket and class (``bucket_minima``), and each model's minima are the minimum over its
buckets (``model_minima``). With exact-integer features (hog_nn's quantisation) every squared distance is
an exact float32 integer, so a model's minima are bit for bit those of the model computed on its own: it
still depends on its own training subset only, whatever else shares the computation.
"""

import numpy as np

BLOCK_BYTES = 2**27  # bytes of one block of squared distances (test rows x training columns) in flight


def bucket_minima(test, train, train_labels, train_buckets, n_buckets: int, n_classes: int):
    """Smallest squared distance per test sample, bucket and class: float32[n_test, n_buckets, n_classes].

    test float32[n_test, D], train float32[M, D]: torch tensors of exact-integer features on one device
    (every squared distance and partial sum below 2**24, see hog_nn.quantisation_scale); train_labels
    int64[M] in [0, n_classes); train_buckets int64[M] in [0, n_buckets). inf where a bucket holds no
    sample of the class. Blocks of test rows bound the memory (BLOCK_BYTES).
    """
    import torch

    device = train.device
    key = torch.from_numpy(np.asarray(train_buckets, np.int64) * n_classes + np.asarray(train_labels, np.int64))
    key = key.to(device)
    out = torch.full((len(test), n_buckets * n_classes), float("inf"), device=device)
    if len(train) == 0:
        return out.reshape(len(test), n_buckets, n_classes).cpu().numpy()
    train_sq = (train * train).sum(1)
    test_sq = (test * test).sum(1, keepdim=True)
    step = max(1, BLOCK_BYTES // (4 * len(train)))
    for start in range(0, len(test), step):
        block = slice(start, start + step)
        sq = test_sq[block] + train_sq[None, :] - 2.0 * test[block] @ train.T  # exact integers
        out[block].scatter_reduce_(1, key.expand(len(sq), -1), sq, reduce="amin", include_self=True)
    return out.reshape(len(test), n_buckets, n_classes).cpu().numpy()


def model_minima(minima: np.ndarray, model_rows: np.ndarray, models: slice | None = None,
                 offsets=None) -> np.ndarray:
    """Each model's minima: the elementwise minimum over its buckets. float32[n_test, n_models, C].

    minima float32[n_test, n_b, C] (bucket_minima of every bucket, in bucket order); model_rows
    int64[n_models, d]: the index in ``minima``'s bucket axis of each of the model's d buckets; ``models``:
    only these models (all when None). ``offsets``: the layout's circulant offsets s_j when model i trains on
    buckets (i - s_j) mod n_b (FA's layout, DPA's with s = 0; certify.buckets.circulant_offsets), read as (at
    most two) slices per offset; None: the buckets are gathered.
    """
    n_b = minima.shape[1]
    ids = np.arange(len(model_rows))[models or slice(0, len(model_rows))]
    if offsets is None or len(ids) == 0:
        parts = (minima[:, model_rows[ids, j]] for j in range(model_rows.shape[1]))
    else:  # models lo..hi-1 read buckets (lo - s) .. (hi - 1 - s) mod n_b
        starts = ((ids[0] - int(s)) % n_b for s in offsets)
        parts = (minima[:, lo:lo + len(ids)] if lo + len(ids) <= n_b else np.concatenate(
            [minima[:, lo:], minima[:, :lo + len(ids) - n_b]], axis=1) for lo in starts)
    out = np.array(next(parts), copy=True)
    for part in parts:
        np.minimum(out, part, out=out)
    return out


def model_scores(minima: np.ndarray, model_rows: np.ndarray, learner, scale: float, versions: int = 1,
                 models: slice | None = None, offsets=None) -> np.ndarray:
    """Class scores of nearest-neighbour models from bucket minima (see model_minima): float32[n_test, n_models, C].

    ``learner``: the learner module (its scores_from_min_sq); a DPA* model's ``versions`` (identical: a
    nearest-neighbour model has no seed) summed in float32 as the predict step sums them.
    """
    scores = learner.scores_from_min_sq(model_minima(minima, model_rows, models, offsets), scale)
    if versions > 1:
        scores = np.repeat(scores[:, :, None], versions, axis=2).sum(axis=2, dtype=np.float32)
    return scores
