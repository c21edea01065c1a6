"""Large datasets in bounded memory (docs/datasets.md#imagenet-64x64-at-scale): synthetic ImageNet64 files,
streamed preparation, prepared images read row by row, a partition identical to the in-memory one, jobs that
read only their rows, and the scaling benchmark's path on a small synthetic set."""

import hashlib
import json
import zipfile

import numpy as np
import pytest

from pipeline.artifacts import splits
from pipeline.artifacts.splits import open_split_images, save_split
from pipeline.data import imagenet64
from pipeline.data.prepared import prepare
from pipeline.errors import PipelineError

SPEC = {"format": "imagenet64", "test_path": None, "resize": None, "channels": 3}


def small_chunks(monkeypatch, n_bytes=5000):
    """Chunks of a few rows wherever splits are streamed (so that every chunk boundary is crossed)."""
    from pipeline import partition

    for module in (splits, partition):
        monkeypatch.setattr(module, "CHUNK_BYTES", n_bytes)


def test_synthetic_files_are_in_the_official_format_and_reproducible(tmp_path):
    imagenet64.write_synthetic(tmp_path / "a", 53, 7, seed=3, side=8, log=lambda _: None)
    imagenet64.write_synthetic(tmp_path / "b", 53, 7, seed=3, side=8, log=lambda _: None)
    imagenet64.write_synthetic(tmp_path / "c", 53, 7, seed=4, side=8, log=lambda _: None)
    names = imagenet64.TRAIN_FILES + [imagenet64.TEST_FILE]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == sorted(names)
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert (tmp_path / "a/val_data.npz").read_bytes() != (tmp_path / "c/val_data.npz").read_bytes()
    sizes = []
    for name in names:
        with np.load(tmp_path / "a" / name, allow_pickle=False) as npz:
            assert npz["data"].dtype == np.uint8 and npz["data"].shape[1] == 3 * 8 * 8
            assert npz["labels"].min() >= 1 and npz["labels"].max() <= 1000
            sizes.append(len(npz["labels"]))
    assert sizes == [6, 6, 6, 5, 5, 5, 5, 5, 5, 5, 7]
    images, labels = imagenet64.read_batch(tmp_path / "a" / names[0])
    with np.load(tmp_path / "a" / names[0]) as npz:  # planar RGB rows -> [N, S, S, 3]
        assert np.array_equal(images[:, 2, 5, 1], npz["data"][:, 64 + 2 * 8 + 5]) and np.array_equal(labels + 1,
                                                                                                      npz["labels"])


@pytest.mark.parametrize("resize", [None, [5, 6]])
def test_streamed_preparation_equals_reading_everything_at_once(tmp_path, monkeypatch, resize):
    """Prepared in chunks of a few rows (compressed and stored batches mixed), the splits hold what reading
    every batch whole gives, with the digests of those arrays."""
    from pipeline.data.images import stack_images

    raw = tmp_path / "raw"
    imagenet64.write_synthetic(raw, 40, 9, seed=1, side=8, log=lambda _: None)
    with np.load(raw / "train_data_batch_2.npz") as npz:  # a compressed batch reads the same
        np.savez_compressed(raw / "train_data_batch_2.npz", data=npz["data"], labels=npz["labels"])
    small_chunks(monkeypatch)
    prepare("syn", None, tmp_path / "out", [], log=lambda _: None, spec={**SPEC, "path": str(raw), "resize": resize})
    for split, files in (("train", imagenet64.TRAIN_FILES), ("test", [imagenet64.TEST_FILE])):
        parts = [imagenet64.read_batch(raw / f) for f in files]
        images, labels = np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])
        if resize:
            stacked = stack_images(list(images), resize, "x")
            images, originals = stacked["images"], stacked["originals"]
        with np.load(tmp_path / "out" / f"{split}.npz") as npz:
            assert np.array_equal(npz["images"], images) and np.array_equal(npz["labels"], labels)
            assert str(npz["images_sha256"]) == hashlib.sha256(images.tobytes()).hexdigest()
            if resize:
                assert np.array_equal(npz["original_pixel_sum"], originals["pixel_sum"])
                assert np.array_equal(npz["original_sha256"], originals["sha256"])
        stored, stored_labels, names = open_split_images(tmp_path / "out" / f"{split}.npz")
        assert stored.shape == images.shape and np.array_equal(stored_labels, labels) and len(names) == 1000


def test_stored_images_index_as_the_array_does(tmp_path, rng):
    images = rng.integers(0, 256, (37, 4, 5, 3), dtype=np.uint8)
    save_split(tmp_path / "s.npz", images, np.arange(37) % 10, [str(c) for c in range(10)], "x")
    stored, _, _ = open_split_images(tmp_path / "s.npz")
    assert stored.shape == images.shape and len(stored) == 37 and stored.nbytes == images.nbytes
    ids = rng.integers(0, 37, 50)  # any order, repeats
    assert np.array_equal(stored[ids], images[ids]) and np.array_equal(stored[[]], images[[]])
    for key in (slice(None), slice(3, 30, 4), slice(-5, None), 7, -1):
        assert np.array_equal(stored[key], images[key])
    assert np.array_equal(np.asarray(stored), images)
    extra = rng.integers(0, 256, (6, 4, 5, 3), dtype=np.uint8)
    pool = stored.with_extra(30, extra)  # the first 30 prepared rows, then 6 inserted
    expect = np.concatenate([images[:30], extra])
    assert len(pool) == 36 and np.array_equal(pool[ids % 36], expect[ids % 36])
    kept = np.array([35, 0, 31, 2, 29])
    assert np.array_equal(pool.subset(kept)[[4, 0, 0, 2]], expect[kept][[4, 0, 0, 2]])
    assert np.array_equal(stored.head(3)[:], images[:3])
    with pytest.raises(IndexError):
        stored[np.array([37])]


def test_partition_from_stored_images_equals_the_in_memory_partition(tmp_path, rng, monkeypatch):
    """Hash, digests and each model's content order computed a chunk or a model at a time from the prepared file
    give the shard and bucket-group files of ordering everything at once (global content ranks), edits included:
    duplicate images, an exclusion list, inserted samples; DPA and FA; both hashes."""
    from pipeline.edits import edited_training_set
    from pipeline.partition import content_ranks, model_training_sets, partition

    images = rng.integers(0, 3, (400, 6, 6, 3), dtype=np.uint8)
    images[50:60] = images[0]  # duplicates: ties in content order
    labels = rng.integers(0, 5, 400)
    labels[55:60] = 4
    save_split(tmp_path / "train.npz", images, labels, [str(c) for c in range(5)], "x")
    np.savez(tmp_path / "insert.npz", x=rng.integers(0, 3, (7, 6, 6, 3), dtype=np.uint8), y=rng.integers(0, 5, 7))
    (tmp_path / "exclude.txt").write_text("3\n51\n383\n")  # 383: an inserted sample
    small_chunks(monkeypatch)
    edited = edited_training_set(tmp_path / "train.npz", 380, tmp_path / "insert.npz", tmp_path / "exclude.txt")
    assert isinstance(edited["images"], splits.StoredImages)
    in_memory = np.asarray(edited["images"])

    def global_ranks(images, labels, sample_ids, buckets, buckets_of_model, ranks=None):
        return model_training_sets(images, labels, sample_ids, buckets, buckets_of_model,
                                   content_ranks(np.asarray(images), labels))

    for method, k, d, hash_name in (("dpa", 9, 1, "pixel_sum"), ("fa", 5, 3, "sha256"), ("fa", 4, 2, "pixel_sum")):
        streamed = partition(edited["images"], edited["labels"], edited["ids"], method, k, d, hash_name, 3)
        with monkeypatch.context() as m:
            import pipeline.partition as part

            m.setattr(part, "model_training_sets", global_ranks)
            whole = partition(in_memory, edited["labels"], edited["ids"], method, k, d, hash_name, 3)
        assert json.dumps(streamed[1:]) == json.dumps(whole[1:])
        assert all(np.array_equal(streamed[0][c], whole[0][c]) for c in ("sample_id", "bucket"))
        assert streamed[0]["digest"] == whole[0]["digest"]


def test_a_job_reads_only_the_rows_it_uses(tmp_path, rng):
    """A byte changed in the prepared file where shard 1's samples lie: partition refuses the file (it checks all of
    it), shard 0 still trains to the same checkpoint (it reads only its own rows), shard 1 is refused."""
    from pipeline.stages.partition import partition_run
    from pipeline.stages.train import train_shard

    images = rng.integers(0, 256, (120, 8, 8, 3), dtype=np.uint8)
    save_split(tmp_path / "train.npz", images, rng.integers(0, 10, 120), [str(c) for c in range(10)], "x")
    partition_run(tmp_path / "train.npz", "dpa", 4, 1, "pixel_sum", 2, 1, 2, tmp_path / "part")
    params = {"epochs": 1, "width": 2, "batch_size": 4}
    train_shard(tmp_path / "part/shard_0.json", tmp_path / "train.npz", "small_cnn", params, "cpu", 1,
                tmp_path / "before.pt", tmp_path / "part/inserted.npz")
    row = json.loads((tmp_path / "part/shard_1.json").read_text())["models"][0]["sample_ids"][0]
    stored, _, _ = open_split_images(tmp_path / "train.npz")
    data = bytearray((tmp_path / "train.npz").read_bytes())
    data[stored.offset + row * 192 + 5] ^= 1
    (tmp_path / "train.npz").write_bytes(bytes(data))
    with pytest.raises(PipelineError, match="contents do not match their stored SHA-256"):
        partition_run(tmp_path / "train.npz", "dpa", 4, 1, "pixel_sum", 2, 1, 2, tmp_path / "part2")
    train_shard(tmp_path / "part/shard_0.json", tmp_path / "train.npz", "small_cnn", params, "cpu", 1,
                tmp_path / "after.pt", tmp_path / "part/inserted.npz")
    assert (tmp_path / "after.pt").read_bytes() == (tmp_path / "before.pt").read_bytes()
    with pytest.raises(PipelineError, match="model 2's training samples differ from the prepared data"):
        train_shard(tmp_path / "part/shard_1.json", tmp_path / "train.npz", "small_cnn", params, "cpu", 1,
                    tmp_path / "shard_1.pt", tmp_path / "part/inserted.npz")
    assert not (tmp_path / "shard_1.pt").exists()


def test_damaged_prepared_files_are_refused_by_the_row_reader(tmp_path, rng):
    images = rng.integers(0, 256, (20, 4, 4), dtype=np.uint8)
    save_split(tmp_path / "s.npz", images, np.arange(20) % 3, ["a", "b", "c"], "x")
    whole = (tmp_path / "s.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(whole[:200])
    with pytest.raises(PipelineError, match="cut.npz: corrupt prepared data .*delete it and run snakemake again"):
        open_split_images(tmp_path / "cut.npz")
    with zipfile.ZipFile(tmp_path / "zipped.npz", "w", zipfile.ZIP_DEFLATED) as z:  # not as prepare writes it
        with zipfile.ZipFile(tmp_path / "s.npz") as src:
            for name in src.namelist():
                z.writestr(name, src.read(name))
    with pytest.raises(PipelineError, match="zipped.npz: corrupt prepared data"):
        open_split_images(tmp_path / "zipped.npz")
    with np.load(tmp_path / "s.npz") as npz:
        arrays = dict(npz)
    arrays["labels"] = arrays["labels"][::-1].copy()
    np.savez(tmp_path / "labels.npz", **arrays)
    with pytest.raises(PipelineError, match="labels.npz: contents do not match their stored SHA-256"):
        open_split_images(tmp_path / "labels.npz")


def test_scaling_benchmark_path_on_a_small_synthetic_set(tmp_path):
    """The benchmark's path at N = 20,000 (k = 16, 1,000 classes): every job of the pipeline's CLI runs, certify
    takes the run-off files, and those are at most 1/8 of the float32 scores they replace."""
    import argparse

    from benchmarks.imagenet64_scaling import one_size

    args = argparse.Namespace(n_val=300, partition_size=1250, shard_size=2, seed=0, keep=True)
    result = one_size(tmp_path / "n20000", 20_000, args)
    assert result["k"] == 16 and result["shards"] == 8 and result["n_val"] == 300
    assert set(result["jobs"]) == {"prepare", "partition", "train", "predict", "runoff", "certify"}
    assert all(job["peak_rss_mib"] > 0 for job in result["jobs"].values())
    assert result["runoff_fraction_of_scores"] <= 1 / 8
    metrics = json.loads((tmp_path / "n20000/run/metrics.json").read_text())
    assert metrics["n_models"] == 16 and metrics["methods"] == {"dpa": "DPA", "dpa_roe": "DPA+ROE"}
    assert 1100 <= metrics["partition_size"]["min"] <= metrics["partition_size"]["max"] <= 1400
