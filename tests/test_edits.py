"""Editing the training set: exclusion lists, insertion files, and how few models an edit touches."""

import json

import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.artifacts.splits import save_split
from pipeline.edits import check_edit_files, kept_ids, load_insertions, read_exclusions, training_pool
from pipeline.errors import PipelineError
from pipeline.partition import partition


def test_exclusion_list_format(tmp_path):
    path = tmp_path / "remove.txt"
    path.write_text("# samples to delete\n12\n\n  3  # a comment\n12\n0\n")
    assert read_exclusions(path).tolist() == [0, 3, 12]


@pytest.mark.parametrize("line", ["-1", "1.5", "abc", "3 4"])
def test_exclusion_list_with_a_bad_line(tmp_path, line):
    path = tmp_path / "remove.txt"
    path.write_text(f"1\n{line}\n")
    with pytest.raises(PipelineError, match=r"remove.txt, line 2: .* is not a sample id"):
        read_exclusions(path)


def test_excluded_id_outside_the_training_set():
    assert kept_ids(5, np.array([1, 3])).tolist() == [0, 2, 4]
    with pytest.raises(PipelineError, match=r"names sample 9, but the training set has 5 samples \(ids 0..4"):
        kept_ids(5, np.array([1, 9]))


def write_npz(path, **arrays):
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize("arrays, message", [
    (dict(x=np.zeros((2, 4, 4), np.uint8)), r"has arrays \['x'\], not x and y"),
    (dict(x=np.zeros((2, 4, 4), np.float32), y=np.zeros(2, int)), "x is float32 of shape"),
    (dict(x=np.zeros((2, 5, 4), np.uint8), y=np.zeros(2, int)), r"x is uint8 of shape \[2, 5, 4\]"),
    (dict(x=np.zeros((2, 4, 4), np.uint8), y=np.zeros(3, int)), "y has 3 labels for 2 images"),
    (dict(x=np.zeros((2, 4, 4), np.uint8), y=np.array([0, 10])), "label 10 is out of range"),
    (dict(x=np.zeros((2, 4, 4), np.uint8), y=np.array([-1, 0])), "label -1 is out of range"),
])
def test_bad_insertion_files(tmp_path, arrays, message):
    path = write_npz(tmp_path / "add.npz", **arrays)
    with pytest.raises(PipelineError, match=message):
        load_insertions(path, (4, 4), 10)


def test_insertion_file_that_is_not_an_npz(tmp_path):
    path = tmp_path / "add.npz"
    path.write_text("not an archive")
    with pytest.raises(PipelineError, match="cannot read the insertion file"):
        load_insertions(path, (4, 4), 10)


def test_missing_edit_files_are_named(tmp_path):
    runs = {"r": {"exclude": str(tmp_path / "gone.txt"), "insert": None}}
    with pytest.raises(PipelineError, match=r"runs.r.exclude: file .*gone.txt not found; create it"):
        check_edit_files(runs)


def small_dataset(rng, n=300):
    images = rng.integers(0, 256, size=(n, 4, 4), dtype=np.uint8)
    labels = rng.integers(0, 10, size=n)
    return images, labels


def models_by_id(shards):
    return {m["model_id"]: m for s in shards for m in s["models"]}


@pytest.mark.parametrize("method, k, d", [("dpa", 17, 1), ("fa", 7, 3)])
@pytest.mark.parametrize("n_edit", [1, 3, 8])
def test_an_edit_of_n_samples_changes_at_most_n_times_d_models(rng, method, k, d, n_edit):
    images, labels = small_dataset(rng)
    ids = np.arange(len(labels))
    _, before, _ = partition(images, labels, ids, method, k, d, shard_size=4)
    # delete n samples
    gone = rng.choice(len(labels), n_edit, replace=False)
    keep = np.setdiff1d(ids, gone)
    _, after, _ = partition(images[keep], labels[keep], keep, method, k, d, shard_size=4)
    changed = {i for i, m in models_by_id(after).items() if m != models_by_id(before)[i]}
    assert 1 <= len(changed) <= n_edit * d
    # exactly the models that held a deleted sample changed
    held = {i for i, m in models_by_id(before).items() if set(m["sample_ids"]) & set(gone.tolist())}
    assert changed == held
    # insert n samples (new ids after the existing ones)
    new_images, new_labels = small_dataset(rng, n_edit)
    all_images, all_labels = np.concatenate([images, new_images]), np.concatenate([labels, new_labels])
    _, grown, _ = partition(all_images, all_labels, np.arange(len(all_labels)), method, k, d, shard_size=4)
    changed = {i for i, m in models_by_id(grown).items() if m != models_by_id(before)[i]}
    assert 1 <= len(changed) <= n_edit * d
    new_ids = set(range(len(labels), len(all_labels)))
    assert changed == {i for i, m in models_by_id(grown).items() if set(m["sample_ids"]) & new_ids}


def test_partition_cli_applies_the_edits(tmp_path, rng):
    images, labels = small_dataset(rng, 200)
    save_split(tmp_path / "train.npz", images, labels, [str(c) for c in range(10)], "toy")
    (tmp_path / "remove.txt").write_text("0\n5\n151\n")  # 151: the second inserted sample
    extra_images, extra_labels = small_dataset(rng, 3)
    write_npz(tmp_path / "add.npz", x=extra_images, y=extra_labels)
    out = tmp_path / "partition"
    argv = ["partition", "--train", str(tmp_path / "train.npz"), "--k", "5", "--shard-size", "5",
            "--expect-shards", "1", "--train-limit", "150", "--insert", str(tmp_path / "add.npz"),
            "--exclude", str(tmp_path / "remove.txt"), "--out-dir", str(out)]
    assert main(argv) == 0
    shard = json.loads((out / "shard_0.json").read_text())
    used = sorted(i for m in shard["models"] for i in m["sample_ids"])
    assert used == sorted(set(range(153)) - {0, 5, 151})
    # the train step sees the same ids: inserted sample 152 is the third row of add.npz
    all_images, all_labels, _ = training_pool(tmp_path / "train.npz", out / "inserted.npz")
    assert len(all_labels) == 153
    assert (all_images[152] == extra_images[2]).all() and all_labels[152] == extra_labels[2]


def test_partition_cli_error_leaves_no_output(tmp_path, rng, capsys):
    images, labels = small_dataset(rng, 50)
    save_split(tmp_path / "train.npz", images, labels, [str(c) for c in range(10)], "toy")
    (tmp_path / "remove.txt").write_text("50\n")
    out = tmp_path / "partition"
    argv = ["partition", "--train", str(tmp_path / "train.npz"), "--k", "5", "--shard-size", "5",
            "--expect-shards", "1", "--exclude", str(tmp_path / "remove.txt"), "--out-dir", str(out)]
    assert main(argv) == 2
    assert "names sample 50, but the training set has 50 samples" in capsys.readouterr().err
    assert not out.exists()


def test_train_step_rejects_an_inserted_file_that_does_not_fit(tmp_path, rng):
    images, labels = small_dataset(rng, 20)
    save_split(tmp_path / "train.npz", images, labels, [str(c) for c in range(10)], "toy")
    (tmp_path / "broken.npz").write_text("not an archive")
    with pytest.raises(PipelineError, match="broken.npz: unreadable .*; delete it and run snakemake again"):
        training_pool(tmp_path / "train.npz", tmp_path / "broken.npz")
    write_npz(tmp_path / "other.npz", x=np.zeros((1, 5, 5), np.uint8), y=np.zeros(1, np.int64), first_id=np.int64(20))
    with pytest.raises(PipelineError, match="other.npz: does not fit .*train.npz; delete it and run snakemake"):
        training_pool(tmp_path / "train.npz", tmp_path / "other.npz")
    write_npz(tmp_path / "beyond.npz", x=np.zeros((0, 4, 4), np.uint8), y=np.zeros(0, np.int64), first_id=np.int64(21))
    with pytest.raises(PipelineError, match="beyond.npz: does not fit"):
        training_pool(tmp_path / "train.npz", tmp_path / "beyond.npz")
