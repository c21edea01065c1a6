"""Deleting and inserting training samples retrains only the shards whose content changed (per-model path),
or recomputes only the distances of the bucket groups whose content changed (shared distances).

Counts the jobs Snakemake runs, checks that untouched checkpoints (distance files) keep their bytes, and
that the incrementally updated results equal a run from scratch with the same edits.
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
    """Apply ``params`` and run: at most n*d models change; per-model path: only their shards retrain; shared
    distances: only the bucket groups holding the (at most n) changed buckets are recomputed. Returns the jobs."""
    shared = params["runs"]["tiny"].get("shared_distances", True) and params["runs"]["tiny"]["learner"]["name"] in (
        "orient_nn", "hog_nn")
    files = {"shards": "work/tiny/partition/shard_*.json", "groups": "work/tiny/partition/buckets_*.json",
             "outputs": "work/tiny/distances/buckets_*.parquet" if shared else "work/tiny/models/*"}
    before = {key: file_bytes(project, pattern) for key, pattern in files.items()}
    write_params(project, params)
    jobs = executed_jobs(snakemake(project))
    after = {key: file_bytes(project, pattern) for key, pattern in files.items()}
    models_before, models_after = base_models(before["shards"]), base_models(after["shards"])
    changed_models = [i for i in models_after if models_after[i] != models_before[i]]
    assert 1 <= len(changed_models) <= n_edits * d
    stem = lambda names: {name.split(".")[0] for name in names}  # noqa: E731
    if shared:
        changed_groups = stem(changed(before["groups"], after["groups"]))
        assert 1 <= jobs.get("distances", 0) == len(changed_groups) <= n_edits, jobs
        assert "train" not in jobs and "predict" not in jobs and "test_features" not in jobs, jobs
        # recomputed: exactly the groups whose bucket-group file changed; every other distances file keeps its bytes
        assert stem(changed(before["outputs"], after["outputs"])) == changed_groups
    else:
        changed_shards = stem(changed(before["shards"], after["shards"]))
        assert 1 <= jobs.get("train", 0) == jobs.get("predict", 0) == len(changed_shards) <= len(changed_models), jobs
        # retrained: exactly the shards whose shard file changed; every other checkpoint keeps its bytes
        assert stem(changed(before["outputs"], after["outputs"])) == changed_shards
    assert jobs.get("certify") == 1 and jobs.get("prepare") is None
    return jobs


def test_deleting_and_inserting_samples_recomputes_only_changed_bucket_groups(tmp_path, mnist_raw_dir, mnist_prepared):
    """Shared distances (the per-model path's edits: the FA test below and tests/test_faults.py)."""
    params = tiny_params(mnist_raw_dir.parent, k=30, shard_size=6)  # 5 bucket groups of 6 buckets
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
    assert file_bytes(project, "work/tiny/partition/*.json") == file_bytes(scratch, "work/tiny/partition/*.json")


@pytest.mark.parametrize("shared", [True, False], ids=["shared_distances", "per_model"])
def test_fa_deletion_touches_only_one_bucket_group_or_the_shards_of_its_d_models(tmp_path, mnist_raw_dir, shared):
    params = tiny_params(mnist_raw_dir.parent, method="fa", k=10, d=4, shard_size=4, roe=False,  # 40 models
                         shared_distances=shared)
    project = make_project(tmp_path / "fa", params)
    snakemake(project)
    (project / "edits/remove.txt").write_text("7\n")
    params["runs"]["tiny"]["exclude"] = "edits/remove.txt"
    jobs = edit_and_rerun(project, params, 1, d=4)
    if shared:  # the d models of the edited bucket share its one distances job
        assert jobs.get("distances") == 1
    assert json.loads((project / "metrics/tiny.json").read_text())["n_train"] == 1999


def test_missing_exclusion_list_stops_with_a_clear_message(tmp_path, mnist_raw_dir):
    project = make_project(tmp_path / "missing", tiny_params(mnist_raw_dir.parent, exclude="edits/none.txt"))
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert "runs.tiny.exclude: file edits/none.txt not found; create it" in result.stdout + result.stderr
    assert not any((project / d).exists() for d in ("work", "metrics", "plots", "report", "data"))
