"""Deleting and inserting training samples retrains only the shards whose content changed.

Counts the jobs Snakemake runs, checks that untouched checkpoints keep their bytes, and that the
incrementally updated results equal a run from scratch with the same edits.
"""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.artifacts.splits import load_split

from .conftest import executed_jobs, file_bytes, make_project, snakemake, tiny_params, write_params

pytestmark = pytest.mark.workflow


def changed(before: dict, after: dict) -> set:
    return {name for name in after if before.get(name) != after[name]}


def base_models(shard_files: dict) -> dict:
    """model id -> its entry (buckets, sample ids, digest) over all shard files."""
    return {m["model_id"]: m for text in shard_files.values() for m in json.loads(text)["models"]}


def edit_and_rerun(project, params, n_edits, d=1):
    """Apply ``params`` and run: at most n*d models and only their shards retrain; return the jobs run."""
    shards, checkpoints = file_bytes(project, "work/tiny/partition/shard_*.json"), file_bytes(project,
                                                                                             "work/tiny/models/*")
    write_params(project, params)
    jobs = executed_jobs(snakemake(project))
    new_shards, new_checkpoints = (file_bytes(project, "work/tiny/partition/shard_*.json"),
                                   file_bytes(project, "work/tiny/models/*"))
    models_before, models_after = base_models(shards), base_models(new_shards)
    changed_models = [i for i in models_after if models_after[i] != models_before[i]]
    assert 1 <= len(changed_models) <= n_edits * d
    changed_shards = {name.replace(".json", "") for name in changed(shards, new_shards)}
    assert 1 <= jobs.get("train", 0) == jobs.get("predict", 0) == len(changed_shards) <= len(changed_models), jobs
    # retrained: exactly the shards whose shard file changed; every other checkpoint keeps its bytes
    assert {name.replace(".pt", "") for name in changed(checkpoints, new_checkpoints)} == changed_shards
    assert jobs.get("certify") == 1 and jobs.get("prepare") is None
    return jobs


def test_deleting_and_inserting_samples_retrains_only_changed_shards(tmp_path, mnist_raw_dir, mnist_prepared):
    params = tiny_params(mnist_raw_dir.parent, k=30, shard_size=6)  # 5 shards of 6 models
    project = make_project(tmp_path / "edited", params)
    snakemake(project)
    assert json.loads((project / "metrics/tiny.json").read_text())["n_train"] == 2000

    # delete 2 samples
    (project / "edits").mkdir(exist_ok=True)
    (project / "edits/remove.txt").write_text("# unlearn\n17\n1234\n")
    params["runs"]["tiny"]["exclude"] = "edits/remove.txt"
    edit_and_rerun(project, params, 2)
    assert json.loads((project / "metrics/tiny.json").read_text())["n_train"] == 1998

    # insert 3 samples (three test images, as ids 2000, 2001, 2002)
    test_images, test_labels, _ = load_split(mnist_prepared / "test.npz")
    np.savez(project / "edits/add.npz", x=test_images[-3:], y=test_labels[-3:])
    params["runs"]["tiny"]["insert"] = "edits/add.npz"
    edit_and_rerun(project, params, 3)
    assert json.loads((project / "metrics/tiny.json").read_text())["n_train"] == 2001

    # nothing is left to do, and the result is what a run from scratch with the same edits gives
    assert "Nothing to be done" in snakemake(project, "-n").stdout
    scratch = make_project(tmp_path / "scratch", params)
    (scratch / "edits").mkdir(exist_ok=True)
    for name in ("remove.txt", "add.npz"):
        (scratch / "edits" / name).write_bytes((project / "edits" / name).read_bytes())
    snakemake(scratch, "work/tiny/certificates.parquet")
    assert pq.read_table(project / "work/tiny/certificates.parquet").equals(
        pq.read_table(scratch / "work/tiny/certificates.parquet"))
    assert file_bytes(project, "work/tiny/partition/shard_*.json") == file_bytes(scratch,
                                                                                "work/tiny/partition/shard_*.json")


def test_fa_deletion_retrains_only_the_shards_of_the_d_models_it_touches(tmp_path, mnist_raw_dir):
    params = tiny_params(mnist_raw_dir.parent, method="fa", k=10, d=4, shard_size=4, roe=False)  # 40 models
    project = make_project(tmp_path / "fa", params)
    snakemake(project)
    (project / "edits/remove.txt").write_text("7\n")
    params["runs"]["tiny"]["exclude"] = "edits/remove.txt"
    edit_and_rerun(project, params, 1, d=4)
    assert json.loads((project / "metrics/tiny.json").read_text())["n_train"] == 1999


def test_missing_exclusion_list_stops_with_a_clear_message(tmp_path, mnist_raw_dir):
    project = make_project(tmp_path / "missing", tiny_params(mnist_raw_dir.parent, exclude="edits/none.txt"))
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert "runs.tiny.exclude: file edits/none.txt not found; create it" in result.stdout + result.stderr
    assert not any((project / d).exists() for d in ("work", "metrics", "plots", "report", "data"))
