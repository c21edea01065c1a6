"""Deleting and inserting training samples retrains only the shards whose content changed.

Counts the jobs Snakemake runs, checks that untouched checkpoints keep their bytes, and that the
incrementally updated results equal a run from scratch with the same edits.
"""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.data import load_split

from .conftest import executed_jobs, make_project, snakemake, tiny_params, write_params

pytestmark = pytest.mark.workflow


def file_bytes(project, pattern):
    return {p.name: p.read_bytes() for p in sorted(project.glob(pattern))}


def changed(before: dict, after: dict) -> set:
    return {name for name in after if before.get(name) != after[name]}


def edit_and_rerun(project, params, n_edits):
    """Apply ``params`` and run; return the jobs run and the shard/checkpoint files that changed."""
    shards, models = file_bytes(project, "work/tiny/partition/shard_*.json"), file_bytes(project, "work/tiny/models/*")
    write_params(project, params)
    jobs = executed_jobs(snakemake(project))
    new_shards, new_models = file_bytes(project, "work/tiny/partition/shard_*.json"), file_bytes(project,
                                                                                                "work/tiny/models/*")
    changed_shards = {name.replace(".json", "") for name in changed(shards, new_shards)}
    changed_models = {name.replace(".pt", "") for name in changed(models, new_models)}
    assert 1 <= jobs.get("train", 0) <= n_edits, jobs
    assert jobs.get("train", 0) == jobs.get("predict", 0) == len(changed_shards), (jobs, changed_shards)
    assert changed_models == changed_shards  # the other checkpoints keep their bytes
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


def test_missing_exclusion_list_stops_with_a_clear_message(tmp_path, mnist_raw_dir):
    project = make_project(tmp_path / "missing", tiny_params(mnist_raw_dir.parent, exclude="edits/none.txt"))
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert "runs.tiny.exclude: file edits/none.txt not found; create it" in result.stdout + result.stderr
    assert not any((project / d).exists() for d in ("work", "metrics", "plots", "report", "data"))
