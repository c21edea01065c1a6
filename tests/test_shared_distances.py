"""Shared nearest-neighbour distances (docs/design.md#shared-distances): the same votes, scores and certificates
as training and predicting every model on its own; a base model still depends on its own subset only."""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch

from pipeline.artifacts.distances import read_bucket_minima
from pipeline.artifacts.partition_files import write_partition
from pipeline.artifacts.splits import save_split
from pipeline.errors import PipelineError
from pipeline.nearest import bucket_minima, model_minima
from pipeline.partition import partition
from pipeline.stages.certify import certify_run, distance_chunks, prediction_chunks
from pipeline.stages.distances import bucket_distances, write_test_features
from pipeline.stages.predict import predict_shard, runoff_shard
from pipeline.stages.train import train_shard

N_TEST = 40


def test_bucket_minima_are_brute_force_minima():
    """Per bucket and class, the smallest squared distance (inf where the bucket has none of the class), exactly;
    and a model's minima are the minima over its buckets."""
    rng = np.random.default_rng(0)
    test = rng.integers(0, 60, (7, 5)).astype(np.float32)
    train = rng.integers(0, 60, (30, 5)).astype(np.float32)
    labels, buckets = rng.integers(0, 3, 30), rng.integers(0, 4, 30)
    labels[buckets == 2] = 0  # bucket 2 has class 0 only; bucket 3 may be empty of some classes
    got = bucket_minima(torch.from_numpy(test), torch.from_numpy(train), labels, buckets, 5, 3)
    assert got.shape == (7, 5, 3) and got.dtype == np.float32
    sq = ((test[:, None, :].astype(np.int64) - train[None].astype(np.int64)) ** 2).sum(-1)
    for b in range(5):
        for c in range(3):
            cols = (buckets == b) & (labels == c)
            expected = sq[:, cols].min(1) if cols.any() else np.full(7, np.inf)
            assert (got[:, b, c] == expected).all(), (b, c)
    model_rows = np.array([[0, 1], [2, 3], [4, 0]])
    assert (model_minima(got, model_rows) == np.minimum(got[:, model_rows[:, 0]], got[:, model_rows[:, 1]])).all()


@pytest.mark.parametrize("method,k,d", [("fa", 7, 3), ("dpa", 9, 1), ("fa", 5, 4)])
def test_model_minima_over_model_slices_equal_the_plain_gather(method, k, d):
    """FA's rotations (and DPA's identity) are read as slices, for any range of models: the same as gathering."""
    from pipeline.certify.buckets import bucket_feeds, circulant_offsets
    from pipeline.partition import model_buckets

    rows = model_buckets(method, k, d)
    minima = np.random.default_rng(1).integers(0, 100, (6, k * d, 3)).astype(np.float32)
    expected = minima[:, rows].min(axis=2)
    offsets = circulant_offsets(bucket_feeds(rows))
    assert offsets is not None  # the slices path is the one under test
    for models in (slice(0, k * d), slice(2, k * d - 1), slice(k * d - 3, k * d), slice(4, 4)):
        assert np.array_equal(model_minima(minima, rows, models, offsets), expected[:, models])
        assert np.array_equal(model_minima(minima, rows, models), expected[:, models])


def run_both_paths(root, prepared, method, k, d, versions, images, labels, ids=None):
    """Partition, then (a) train and predict every shard, (b) test features and bucket distances.
    Returns (shard paths, prediction paths, distance paths, group paths)."""
    ids = np.arange(len(labels)) if ids is None else ids  # rows of the prepared split
    assignment, shards, groups = partition(images, labels, ids, method, k, d, shard_size=4,
                                           versions=versions)
    for folder in ("partition", "models", "predictions", "runoff", "distances"):
        (root / folder).mkdir(parents=True)
    write_partition(root / "partition", assignment, shards, groups)
    shard_paths = [root / f"partition/shard_{s}.json" for s in range(len(shards))]
    group_paths = [root / f"partition/buckets_{g}.json" for g in range(len(groups))]
    predictions, distances = [], []
    for s, shard_path in enumerate(shard_paths):
        train_shard(shard_path, prepared / "train.npz", "hog_nn", {}, "cpu", 1, root / f"models/shard_{s}.pt")
        predict_shard(root / f"models/shard_{s}.pt", shard_path, prepared / "test.npz", "hog_nn", {}, N_TEST,
                      "cpu", 1, root / f"predictions/shard_{s}.parquet")
        predictions.append(root / f"predictions/shard_{s}.parquet")
    n_models = sum(len(s["models"]) for s in shards)
    for s, shard_path in enumerate(shard_paths):
        runoff_shard(root / f"models/shard_{s}.pt", shard_path, prepared / "test.npz", predictions, predictions[s],
                     "hog_nn", {}, n_models, N_TEST, "cpu", 1, root / f"runoff/shard_{s}.parquet")
    write_test_features(prepared / "test.npz", "hog_nn", {}, N_TEST, root / "distances/test_features.npz")
    for g, group_path in enumerate(group_paths):
        bucket_distances(group_path, prepared / "train.npz", None, root / "distances/test_features.npz", "hog_nn", {},
                         "cpu", 1, root / f"distances/buckets_{g}.parquet")
        distances.append(root / f"distances/buckets_{g}.parquet")
    return shard_paths, predictions, distances, group_paths


@pytest.mark.parametrize("method,k,d,versions,n", [("fa", 4, 3, 1, 500), ("fa", 10, 8, 1, 300), ("dpa", 7, 1, 2, 500)])
def test_shared_distances_give_each_models_own_scores_and_certificates(mnist_prepared, mnist_train, tmp_path,
                                                                       method, k, d, versions, n):
    """The issue's test: on small FA runs (one with empty buckets) and DPA* with two versions, every model's votes
    and scores from the shared computation are bit for bit those of training and predicting it on its own, and
    so are all certificates (with ROE, and FA's bucket feeds)."""
    images, labels, _ = mnist_train
    shard_paths, predictions, distances, groups = run_both_paths(tmp_path, mnist_prepared, method, k, d, versions,
                                                                 images[:n], labels[:n])
    if n == 300:
        assert any(not b["sample_ids"] for g in groups for b in json.loads(g.read_text())["buckets"])
    from pipeline.artifacts.partition_files import read_layout
    from pipeline.learners import hog_nn

    _, models, buckets, _ = read_layout(shard_paths)
    runoff = sorted(tmp_path.glob("runoff/*.parquet"), key=lambda p: int(p.stem.split("_")[1]))
    methods = [method, f"{method}_roe"]
    per_model = list(prediction_chunks(predictions, N_TEST, len(models), 10, runoff))
    shared = list(distance_chunks(distances, buckets, N_TEST, 10, hog_nn, versions, methods))
    votes_a = np.concatenate([c[2] for c in per_model])
    votes_b = np.concatenate([c[2] for c in shared])
    beats_a = np.concatenate([c[3] for c in per_model])
    beats_b = np.concatenate([c[3] for c in shared])
    assert votes_a.shape == (N_TEST, k * d) and (votes_a == votes_b).all()
    assert beats_a.shape == (N_TEST, k * d, 2, 10) and np.array_equal(beats_a, beats_b)

    outs = {}
    for name, kwargs in (("per_model", {"prediction_paths": predictions, "runoff_paths": runoff}),
                         ("shared", {"prediction_paths": None, "distance_paths": distances, "group_paths": groups})):
        out = tmp_path / name
        out.mkdir()
        args = dict(run="r", dataset="mnist", shard_paths=shard_paths, test_path=mnist_prepared / "test.npz",
                    test_limit=N_TEST, radii=[0, 1, 2], methods=methods, learner="hog_nn", learner_params={},
                    certificates_out=out / "c.parquet", metrics_out=out / "m.json", curve_out=out / "c.csv",
                    plot_out=out / "c.png")
        outs[name] = certify_run(**args, **kwargs)
        outs[name + "_table"] = pq.read_table(out / "c.parquet").to_pandas()
    assert outs["per_model_table"].equals(outs["shared_table"])
    for key in ("clean_accuracy", "certified_accuracy", "median_radius", "base_model_accuracy"):
        assert outs["per_model"][key] == outs["shared"][key], key
    assert "distances_sha256" in outs["shared"]["provenance"]


def test_a_bucket_distance_depends_only_on_its_own_samples(mnist_prepared, mnist_train, tmp_path):
    """Changing the samples of one bucket (another training image in its place) changes that bucket's minima
    only: the distances of the others are bit for bit the same."""
    images, labels, _ = mnist_train
    root_a, root_b = tmp_path / "a", tmp_path / "b"
    _, _, dist_a, _ = run_both_paths(root_a, mnist_prepared, "dpa", 8, 1, 1, images[:300], labels[:300])
    keep = np.ones(300, bool)
    keep[17] = False  # one sample removed: one bucket changes
    _, _, dist_b, groups_b = run_both_paths(root_b, mnist_prepared, "dpa", 8, 1, 1, images[:300][keep], labels[:300][keep],
                                      np.flatnonzero(keep))
    from pipeline.partition import assign_buckets

    changed = int(assign_buckets(images[17:18], 8)[0])
    a = np.concatenate([read_bucket_minima(p) for p in dist_a], axis=1)
    b = np.concatenate([read_bucket_minima(p) for p in dist_b], axis=1)
    assert a.shape == b.shape == (N_TEST, 8, 10)
    same = [(a[:, i] == b[:, i]).all() for i in range(8)]
    assert same == [i != changed for i in range(8)]


def test_stale_distances_are_refused(mnist_prepared, mnist_train, tmp_path):
    """Distances of other buckets, or of another learner setting, are refused by certify with one message."""
    images, labels, _ = mnist_train
    shard_paths, _, distances, groups = run_both_paths(tmp_path, mnist_prepared, "dpa", 8, 1, 1, images[:300],
                                                       labels[:300])
    out = tmp_path / "out"
    out.mkdir()
    args = dict(run="r", dataset="mnist", prediction_paths=None, shard_paths=shard_paths,
                test_path=mnist_prepared / "test.npz", test_limit=N_TEST, radii=[0], methods=["dpa"],
                learner="hog_nn", certificates_out=out / "c.parquet", metrics_out=out / "m.json",
                curve_out=out / "c.csv", plot_out=out / "c.png")
    with pytest.raises(PipelineError, match="stale, its buckets' samples are not those of"):
        certify_run(**args, learner_params={}, distance_paths=distances[::-1], group_paths=groups)
    with pytest.raises(PipelineError, match=r"stale, computed with other learner settings \(learner parameters differ "
                                            r"\(orientations\)\)"):
        certify_run(**args, learner_params={"orientations": 8}, distance_paths=distances, group_paths=groups)
    assert not list(out.iterdir())


def test_distances_refuse_training_data_changed_behind_the_partition(mnist_prepared, mnist_train, tmp_path):
    images, labels, classes = mnist_train
    _, _, _, groups = run_both_paths(tmp_path / "r", mnist_prepared, "dpa", 8, 1, 1, images[:300], labels[:300])
    bucket = json.loads(groups[0].read_text())["buckets"][0]
    images = images.copy()
    images[bucket["sample_ids"][0]] ^= 1
    save_split(tmp_path / "train.npz", images, labels, classes, "edited")
    out = tmp_path / "d.parquet"
    with pytest.raises(PipelineError, match="bucket 0's samples differ from the prepared data"):
        bucket_distances(groups[0], tmp_path / "train.npz", None, tmp_path / "r/distances/test_features.npz", "hog_nn",
                         {}, "cpu", 1, out)
    assert not out.exists()


def test_damaged_bucket_group_files_are_refused(mnist_prepared, mnist_train, tmp_path):
    """A bucket-group file whose content no longer matches its self-digest is refused by the distances step and by
    certify, with the fix."""
    from pipeline.artifacts.partition_files import read_bucket_group

    images, labels, _ = mnist_train
    _, _, _, groups = run_both_paths(tmp_path / "r", mnist_prepared, "dpa", 8, 1, 1, images[:300], labels[:300])
    group = json.loads(groups[0].read_text())
    group["buckets"][0]["sample_ids"] = group["buckets"][0]["sample_ids"][1:]  # one sample dropped by hand
    groups[0].write_text(json.dumps(group))
    with pytest.raises(PipelineError, match="damaged bucket-group file .*delete it and run snakemake again"):
        read_bucket_group(groups[0])
    out = tmp_path / "d.parquet"
    with pytest.raises(PipelineError, match="damaged bucket-group file"):
        bucket_distances(groups[0], mnist_prepared / "train.npz", None, tmp_path / "r/distances/test_features.npz",
                         "hog_nn", {}, "cpu", 1, out)
    assert not out.exists()
