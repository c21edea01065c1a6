"""Partitioning training samples into buckets and base-model training sets (docs/design.md#partitioning).

A sample's bucket depends only on that sample (its pixels), so adding or deleting samples
changes only the buckets -- and so only the base models -- that held them.
"""

import hashlib
import random

import numpy as np

from .errors import PipelineError
from .resources import CHUNK_BYTES  # pixels hashed at once (images may be read from disk: StoredImages)

HASHES = ("pixel_sum", "sha256")
FA_OFFSET_SEED = 1000000207




def by_chunks(images, fn, join=np.concatenate):
    """``fn`` over consecutive chunks of rows of ``images`` (an array or StoredImages), results joined: what
    ``fn(images)`` gives, in bounded memory."""
    row_bytes = max(1, int(np.prod(images.shape[1:])))
    step = max(1, CHUNK_BYTES // row_bytes)
    parts = [fn(images[start:start + step]) for start in range(0, len(images), step)]
    return join(parts) if parts else fn(np.zeros((0, *images.shape[1:]), np.uint8))


def pixel_sum_hash(images: np.ndarray) -> np.ndarray:
    """Sum of all uint8 pixel values (all channels) per sample: int64[N]. The papers' hash."""
    return by_chunks(images, lambda x: x.reshape(len(x), -1).sum(axis=1, dtype=np.int64))


def sha256_hash(images: np.ndarray) -> np.ndarray:
    """First 8 bytes of SHA-256 of each image's C-ordered bytes, as uint64[N] (an option, not the default)."""
    from .data.images import original_hash_arrays

    return by_chunks(images, lambda x: sha256_prefix(original_hash_arrays(x)["sha256"]))


def sha256_prefix(digests: np.ndarray) -> np.ndarray:
    """First 8 bytes of SHA-256 digests uint8[N, 32], big-endian, as uint64[N] (as in sha256_hash)."""
    return np.ascontiguousarray(digests[:, :8], dtype=np.uint8).view(">u8").ravel().astype(np.uint64)


def assign_buckets(images: np.ndarray, n_buckets: int, hash_name: str = "pixel_sum", originals=None) -> np.ndarray:
    """Bucket of every sample: hash mod n_buckets, int64[N].

    ``originals``: for images resized at preparation (variable-size datasets), the original
    images' hash inputs {"pixel_sum": int64[N], "sha256": uint8[N, 32]} (data.load_hash_inputs);
    the hash is then that of the original image, not of ``images``.
    """
    if hash_name == "pixel_sum":
        sums = pixel_sum_hash(images) if originals is None else np.asarray(originals["pixel_sum"], dtype=np.int64)
        return sums % n_buckets
    if hash_name == "sha256":
        values = sha256_hash(images) if originals is None else sha256_prefix(originals["sha256"])
        return (values % np.uint64(n_buckets)).astype(np.int64)
    raise PipelineError(f"unknown hash {hash_name!r}; choose from {', '.join(HASHES)}")


def fa_offsets(k: int, d: int) -> list[int]:
    """FA's d distinct bucket offsets s_j: CPython random.seed(1000000207); random.sample(range(k*d), d)."""
    rng = random.Random(FA_OFFSET_SEED)
    return rng.sample(range(k * d), d)


def model_buckets(method: str, k: int, d: int) -> np.ndarray:
    """Buckets each base model trains on: int64[n_models, d]. DPA: model i <- bucket i."""
    if method == "dpa":
        return np.arange(k, dtype=np.int64)[:, None]
    if method == "fa":
        n_buckets = k * d
        offsets = np.asarray(fa_offsets(k, d), dtype=np.int64)
        return (np.arange(n_buckets, dtype=np.int64)[:, None] - offsets[None, :]) % n_buckets
    raise PipelineError(f"unknown method {method!r}; choose dpa or fa")


def content_order(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Permutation sorting samples by content: np.lexsort with keys [label, pixel_0, ..., pixel_last].

    lexsort's last key is primary, so the last pixel decides first and the label last.
    """
    if len(labels) == 0:
        return np.zeros(0, dtype=np.int64)
    keys = np.concatenate([labels.reshape(1, -1), images.reshape(len(images), -1).T.astype(np.int64)])
    return np.lexsort(keys)


def content_ranks(images: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Dense rank of every sample in content order (equal label and pixels: equal rank): int64[N].

    Sorting any subset by (rank, position) gives content_order of that subset, since np.lexsort is stable.
    Computed with one lexsort over the pixels packed 8 to a key (big-endian, so that comparing keys
    compares the pixels in content_order's priority: last pixel first), not one key per pixel.
    """
    n = len(labels)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    flat = np.ascontiguousarray(images.reshape(n, -1)[:, ::-1], dtype=np.uint8)  # last pixel first
    width = -(-flat.shape[1] // 8) * 8
    padded = np.zeros((n, width), dtype=np.uint8)
    padded[:, :flat.shape[1]] = flat
    packed = padded.view(">u8")  # [n, width / 8]: key 0 holds the 8 highest-priority pixels
    keys = [np.asarray(labels, dtype=np.int64)] + [packed[:, j] for j in range(packed.shape[1] - 1, -1, -1)]
    order = np.lexsort(keys)
    changed = np.ones(n, dtype=bool)
    changed[1:] = (packed[order[1:]] != packed[order[:-1]]).any(axis=1) | (
        np.asarray(labels)[order[1:]] != np.asarray(labels)[order[:-1]])
    ranks = np.empty(n, dtype=np.int64)
    ranks[order] = np.cumsum(changed) - 1
    return ranks


def sample_digests(images: np.ndarray, labels: np.ndarray) -> list[str]:
    """SHA-256 per sample over (label as int64 little-endian, image bytes): the content identity.

    ``images``: an array or StoredImages (read in chunks)."""
    lab = np.asarray(labels, dtype="<i8")
    done = 0

    def chunk(x):
        nonlocal done
        flat = np.ascontiguousarray(x.reshape(len(x), int(np.prod(x.shape[1:]))))
        first, done = done, done + len(flat)
        return [hashlib.sha256(lab[first + i].tobytes() + flat[i].tobytes()).hexdigest() for i in range(len(flat))]

    return by_chunks(images, chunk, join=lambda parts: [d for part in parts for d in part])


def subset_digest(digests) -> str:
    """Digest of an ordered training subset: SHA-256 over its per-sample digests."""
    h = hashlib.sha256()
    for digest in digests:
        h.update(bytes.fromhex(digest))
    return h.hexdigest()


def shard_ranges(n_models: int, shard_size: int) -> list[range]:
    """Consecutive model-id ranges of at most ``shard_size`` models."""
    return [range(s, min(s + shard_size, n_models)) for s in range(0, n_models, shard_size)]


def n_shards(method: str, k: int, d: int, shard_size: int) -> int:
    n_models = k * (d if method == "fa" else 1)
    return -(-n_models // shard_size)


def model_training_sets(images, labels, sample_ids, buckets, buckets_of_model, ranks=None):
    """Sample ids of every base model's training set, in content order: list of int64 arrays (and the rows).

    ``ranks``: content_ranks of all the samples, or None: each set is then ordered from its own rows (read
    from ``images``, an array or StoredImages, one set at a time: memory does not grow with the dataset).
    Both give content_order of every set (ties by position in the set), so the same sets.
    """
    n_buckets = int(buckets_of_model.max()) + 1 if buckets_of_model.size else 0
    order_by_bucket = np.argsort(buckets, kind="stable")
    starts = np.searchsorted(buckets[order_by_bucket], np.arange(n_buckets + 1))
    members = [order_by_bucket[starts[b]:starts[b + 1]] for b in range(n_buckets)]
    sets = []
    for bucket_list in buckets_of_model:
        rows = np.concatenate([members[b] for b in bucket_list])
        own = content_ranks(images[rows], labels[rows]) if ranks is None else ranks[rows]
        sets.append(rows[np.argsort(own, kind="stable")])  # = content_order(images[rows], labels[rows])
    return [np.asarray(sample_ids)[rows] for rows in sets], sets


VERSION_SEED_STRIDE = 1_000_000


def model_seeds(model_id: int, versions: int = 1) -> list[int]:
    """Seeds of base model ``model_id``: version v (DPA*) gets model_id + v * 1,000,000.

    Version 0 is the model id itself (plain DPA/FA); seeds are distinct while there are fewer
    than a million models.
    """
    return [model_id + v * VERSION_SEED_STRIDE for v in range(versions)]


def bucket_groups(bucket_ids, bucket_rows, sample_ids, digests, group_size: int) -> list[dict]:
    """Buckets in groups of ``group_size`` consecutive ids: JSON-ready dicts, one per group.

    Group g holds buckets g*group_size .. (g+1)*group_size - 1 (of ``n_buckets`` in all), each with its content-ordered
    ``sample_ids`` and ``subset_sha256`` (as a model's training set); ``bucket_rows[b]``: rows of
    bucket b in content order. What the shared nearest-neighbour distances are computed for
    (pipeline/nearest.py): a bucket's per-class minimum distances depend only on its samples.
    """
    sample_ids = np.asarray(sample_ids)
    groups = []
    for g, ids in enumerate(shard_ranges(len(bucket_ids), group_size)):
        groups.append({"group": g, "n_buckets": len(bucket_ids), "buckets": [{
            "bucket": int(bucket_ids[b]),
            "sample_ids": sample_ids[bucket_rows[b]].tolist(),
            "subset_sha256": subset_digest(digests[r] for r in bucket_rows[b]),
        } for b in ids]})
    return groups


def partition(images, labels, sample_ids, method="dpa", k=1, d=1, hash_name="pixel_sum", shard_size=100, versions=1,
              originals=None):
    """Assign samples to buckets and base models (``originals``: see assign_buckets).

    Returns (assignment, shards, groups): ``assignment`` a dict of columns sample_id, bucket, digest;
    ``shards`` a list of JSON-ready dicts, one per shard, listing its models with their seeds
    (one per DPA* version), buckets, content-ordered sample ids and the digest of their ordered
    training set; ``groups`` the buckets in groups of ``shard_size`` (bucket_groups; there are as
    many buckets as models, so as many groups as shards).
    """
    if method == "dpa":
        d = 1
    n_buckets = k * d
    buckets = assign_buckets(images, n_buckets, hash_name, originals)
    buckets_of_model = model_buckets(method, k, d)
    digests = sample_digests(images, labels)
    id_sets, row_sets = model_training_sets(images, labels, sample_ids, buckets, buckets_of_model)
    empty = [i for i, rows in enumerate(row_sets) if len(rows) == 0]
    if empty:
        raise PipelineError(
            f"{len(empty)} of {len(row_sets)} base models get no training samples (first: model {empty[0]}); "
            f"{len(labels)} samples are too few for k={k}" + (f", d={d}" if method == "fa" else "")
            + ": lower k in params.yaml or use more training data"
        )
    shards = []
    for s, models in enumerate(shard_ranges(len(row_sets), shard_size)):
        shards.append({
            "shard": s, "method": method, "k": k, "d": d, "n_buckets": n_buckets, "hash": hash_name,
            "versions": versions,
            "models": [{
                "model_id": i,
                "seeds": model_seeds(i, versions),
                "buckets": buckets_of_model[i].tolist(),
                "sample_ids": id_sets[i].tolist(),
                "subset_sha256": subset_digest(digests[r] for r in row_sets[i]),
            } for i in models],
        })
    if method == "dpa":  # model i <- bucket i: the same content-ordered sets
        bucket_rows = row_sets
    else:
        _, bucket_rows = model_training_sets(images, labels, sample_ids, buckets,
                                             np.arange(n_buckets, dtype=np.int64)[:, None])
    groups = bucket_groups(np.arange(n_buckets), bucket_rows, sample_ids, digests, shard_size)
    assignment = {"sample_id": np.asarray(sample_ids, dtype=np.int64), "bucket": buckets, "digest": digests}
    return assignment, shards, groups
