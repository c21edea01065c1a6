"""Partitioning (docs/design.md#partitioning): hash, sizes, content order, stability of shard files."""

import json
import os

import numpy as np
import pytest

from pipeline.artifacts.partition_files import write_partition
from pipeline.errors import PipelineError
from pipeline.partition import (
    assign_buckets,
    content_order,
    fa_offsets,
    model_buckets,
    partition,
    pixel_sum_hash,
    subset_digest,
)


def test_pixel_sum_hash_and_buckets(rng):
    images = rng.integers(0, 256, size=(50, 4, 5, 3), dtype=np.uint8)
    sums = np.array([int(img.astype(np.int64).sum()) for img in images])
    assert pixel_sum_hash(images).tolist() == sums.tolist()
    assert assign_buckets(images, 7).tolist() == (sums % 7).tolist()
    assert assign_buckets(images, 7, "sha256").min() >= 0 and assign_buckets(images, 7, "sha256").max() < 7


def test_dpa_partition_covers_every_sample_once(mnist_train):
    images, labels, _ = mnist_train
    images, labels = images[:3000], labels[:3000]
    assignment, shards, groups = partition(images, labels, np.arange(3000), "dpa", k=30, shard_size=7)
    models = [m for s in shards for m in s["models"]]
    assert [m["model_id"] for m in models] == list(range(30)) and [m["seeds"] for m in models] == [[i] for i in range(30)]
    assert [len(s["models"]) for s in shards] == [7, 7, 7, 7, 2]
    ids = np.concatenate([m["sample_ids"] for m in models])
    assert sorted(ids.tolist()) == list(range(3000))
    sums = pixel_sum_hash(images)
    for m in models:
        assert m["buckets"] == [m["model_id"]]
        assert (sums[m["sample_ids"]] % 30 == m["model_id"]).all()
    sizes = np.bincount(sums % 30, minlength=30)
    assert [len(m["sample_ids"]) for m in models] == sizes.tolist()
    assert assignment["bucket"].tolist() == (sums % 30).tolist()


def test_content_order_is_lexsort_with_last_pixel_primary(rng):
    images = rng.integers(0, 3, size=(40, 2, 2), dtype=np.uint8)  # few values: many ties on late keys
    labels = rng.integers(0, 3, size=40)
    order = content_order(images, labels)
    key = lambda i: tuple(images[i].reshape(-1)[::-1].tolist()) + (int(labels[i]),)  # noqa: E731
    assert [key(i) for i in order] == sorted(key(i) for i in range(40))


def test_training_order_does_not_depend_on_dataset_order(mnist_train, rng):
    images, labels, _ = mnist_train
    images, labels = images[:1000], labels[:1000]
    _, shards, _ = partition(images, labels, np.arange(1000), "dpa", k=10, shard_size=10)
    perm = rng.permutation(1000)
    _, shuffled, _ = partition(images[perm], labels[perm], perm, "dpa", k=10, shard_size=10)
    for a, b in zip(shards[0]["models"], shuffled[0]["models"]):
        assert a["subset_sha256"] == b["subset_sha256"]
        assert (images[a["sample_ids"]] == images[b["sample_ids"]]).all()


def test_removing_one_sample_changes_exactly_one_shard_file(mnist_train, tmp_path):
    images, labels, _ = mnist_train
    n = 2000
    assignment, shards, groups = partition(images[:n], labels[:n], np.arange(n), "dpa", k=20, shard_size=4)
    assert write_partition(tmp_path, assignment, shards, groups) == [0, 1, 2, 3, 4]
    before = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in tmp_path.glob("*_*.json")}
    keep = np.arange(n) != 1234
    assignment, shards, groups = partition(images[:n][keep], labels[:n][keep], np.arange(n)[keep], "dpa", k=20, shard_size=4)
    changed = write_partition(tmp_path, assignment, shards, groups)
    bucket = int(pixel_sum_hash(images[1234:1235])[0] % 20)
    assert changed == [bucket // 4]
    for p in tmp_path.glob("*_*.json"):  # shard files and bucket-group files alike
        same = (p.read_bytes(), p.stat().st_mtime_ns) == before[p.name]
        assert same == (p.name not in (f"shard_{bucket // 4}.json", f"buckets_{bucket // 4}.json")), p.name
    assert 1234 not in json.loads((tmp_path / f"shard_{bucket // 4}.json").read_text())["models"][bucket % 4]["sample_ids"]


def test_shard_files_are_rewritten_atomically_and_stale_ones_removed(mnist_train, tmp_path):
    images, labels, _ = mnist_train
    assignment, shards, groups = partition(images[:500], labels[:500], np.arange(500), "dpa", k=6, shard_size=2)
    write_partition(tmp_path, assignment, shards, groups)
    assignment, shards, groups = partition(images[:500], labels[:500], np.arange(500), "dpa", k=6, shard_size=3)
    write_partition(tmp_path, assignment, shards, groups)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["assignment.parquet", "buckets_0.json", "buckets_1.json",
                                                          "shard_0.json", "shard_1.json"]
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_empty_partition_is_a_clear_error(mnist_train):
    images, labels, _ = mnist_train
    with pytest.raises(PipelineError, match="get no training samples.*lower k"):
        partition(images[:50], labels[:50], np.arange(50), "dpa", k=500, shard_size=10)


def test_fa_offsets_and_model_buckets():
    assert sorted(fa_offsets(50, 16)) == [37, 90, 102, 110, 157, 206, 280, 284, 304, 323, 331, 363, 492, 509, 536, 777]
    offsets = fa_offsets(5, 3)
    buckets = model_buckets("fa", 5, 3)
    assert buckets.shape == (15, 3)
    for i in range(15):
        assert buckets[i].tolist() == [(i - s) % 15 for s in offsets]
    assert model_buckets("dpa", 4, 1).tolist() == [[0], [1], [2], [3]]


@pytest.mark.parametrize("method,k,d", [("dpa", 12, 1), ("fa", 6, 3)])
def test_bucket_groups_list_every_bucket_in_content_order(mnist_train, method, k, d):
    """Bucket-group files: every bucket once, in groups of shard_size, with its samples in content order and
    the digest a model with that training set would carry; a model's samples are the union of its buckets'."""
    images, labels, _ = mnist_train
    n = 900
    ids = np.arange(n) * 3  # ids need not be row numbers
    assignment, shards, groups = partition(images[:n], labels[:n], ids, method, k, d, shard_size=5)
    assert len(groups) == len(shards)
    buckets = [b for g in groups for b in g["buckets"]]
    assert [b["bucket"] for b in buckets] == list(range(k * d))
    assert all(g["group"] == i and len(g["buckets"]) <= 5 for i, g in enumerate(groups))
    row_of = {int(i): r for r, i in enumerate(ids)}
    for b in buckets:
        rows = [row_of[i] for i in b["sample_ids"]]
        assert (assignment["bucket"][rows] == b["bucket"]).all()
        assert sorted(rows) == sorted(np.flatnonzero(assignment["bucket"] == b["bucket"]).tolist())
        assert (content_order(images[rows], labels[rows]) == np.arange(len(rows))).all()
        assert b["subset_sha256"] == subset_digest(assignment["digest"][r] for r in rows)
    for model in (m for s in shards for m in s["models"]):
        union = sorted(i for bucket in model["buckets"] for i in buckets[bucket]["sample_ids"])
        assert sorted(model["sample_ids"]) == union


def test_content_ranks_order_every_subset_as_content_order_does(mnist_train):
    """Sorting a subset by (content rank, position) is content_order of the subset, duplicates included."""
    from pipeline.partition import content_ranks

    images, labels, _ = mnist_train
    rng = np.random.default_rng(4)
    rows = np.concatenate([np.arange(400), [5, 5, 17, 17, 17]])  # exact duplicates (same label and pixels)
    x, y = images[rows].copy(), labels[rows].copy()
    x[400:403, 0, 0] = [1, 0, 2]  # near-duplicates that differ in the lowest-priority pixel only
    y[404] = (y[404] + 1) % 10  # same pixels, another label
    ranks = content_ranks(x, y)
    for _ in range(20):
        subset = rng.choice(len(y), 60, replace=False)
        subset = np.concatenate([subset, [400, 401, 402, 403, 404, 5, 17]])
        expected = subset[content_order(x[subset], y[subset])]
        assert np.array_equal(subset[np.argsort(ranks[subset], kind="stable")], expected)
    assert np.array_equal(np.argsort(ranks, kind="stable"), content_order(x, y))
