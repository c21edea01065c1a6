"""DVC: `dvc repro` reproduces the tiny run, metrics and plots are declared, and a push / clone / pull
round trip through a local-folder remote retrains nothing."""

import json

import pyarrow.parquet as pq
import pytest

from .conftest import executed_jobs, file_bytes, make_project, run, snakemake, tiny_params, write_params

pytestmark = pytest.mark.workflow


def test_dvc_repro_metrics_and_plots(tmp_path, mnist_raw_dir):
    project = make_project(tmp_path / "dvcrepo", tiny_params(mnist_raw_dir.parent))
    run(["dvc", "init", "--no-scm", "-q"], project)
    out = run(["dvc", "repro"], project)
    assert "Certified accuracy (%) by radius" in out.stdout + out.stderr
    lock = (project / "dvc.lock").read_text()
    for path in ("data/prepared", "work", "report", "metrics", "plots"):
        assert f"path: {path}" in lock, path
    assert len(pq.read_table(project / "work/tiny/certificates.parquet")) == 200

    metrics = run(["dvc", "metrics", "show", "--json"], project).stdout
    shown = json.loads(metrics)
    values = next(iter(shown.values()))["data"]["metrics/tiny.json"]["data"]
    assert values["clean_accuracy"] == json.loads((project / "metrics/tiny.json").read_text())["clean_accuracy"]

    plots = run(["dvc", "plots", "show", "-o", "dvc_plots"], project)
    assert "failed" not in (plots.stdout + plots.stderr).lower()
    page = (project / "dvc_plots" / "index.html").read_text()
    assert "plots/certified_accuracy.csv" in page and "report_compare.png" in page and "tiny DPA+ROE" in page

    again = run(["dvc", "repro"], project)
    assert "didn't change, skipping" in again.stdout + again.stderr
    assert "up to date" in run(["dvc", "status"], project).stdout


def git(project, *args):
    return run(["git", "-c", "user.name=test", "-c", "user.email=test@example.org", *args], project)


def checkpoint_bytes(project):
    """The run's trained state: the bucket distances (shared distances, the tiny run's default)."""
    return file_bytes(project, "work/tiny/distances/buckets_*.parquet")


def test_push_clone_pull_retrains_nothing(tmp_path, mnist_raw_dir):
    params = tiny_params(mnist_raw_dir.parent, k=30, shard_size=6)
    origin = make_project(tmp_path / "origin", params)
    git(origin, "init", "-q")
    run(["dvc", "init", "-q"], origin)
    remote = tmp_path / "remote"
    run(["dvc", "remote", "add", "-d", "shared", str(remote)], origin)
    run(["dvc", "repro"], origin)
    git(origin, "add", "-A")
    git(origin, "commit", "-q", "-m", "tiny run")
    pushed = run(["dvc", "push"], origin).stdout
    assert "pushed" in pushed and any(remote.rglob("*")), pushed

    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    assert not (clone / "work").exists()
    run(["dvc", "pull"], clone)
    assert checkpoint_bytes(clone) == checkpoint_bytes(origin) and len(checkpoint_bytes(clone)) == 5
    assert "up to date" in run(["dvc", "status"], clone).stdout

    # DVC: nothing changed, nothing runs.
    again = run(["dvc", "repro"], clone)
    assert "didn't change, skipping" in again.stdout + again.stderr
    # Snakemake: checked-out files have checkout-order timestamps; --touch marks them up to date
    # (and records their checksums), after which nothing is left to do.
    snakemake(clone, "--touch", "--forceall")
    assert "Nothing to be done" in snakemake(clone, "-n").stdout
    assert executed_jobs(snakemake(clone)) == {}
    assert checkpoint_bytes(clone) == checkpoint_bytes(origin)

    # Unlearning in the clone: delete one sample, Snakemake recomputes its bucket group only, DVC records it.
    (clone / "edits" / "remove.txt").write_text("42\n")
    params["runs"]["tiny"]["exclude"] = "edits/remove.txt"
    write_params(clone, params)
    jobs = executed_jobs(snakemake(clone))
    assert jobs.get("distances") == 1 and "train" not in jobs, jobs
    assert len(set(checkpoint_bytes(clone).items()) - set(checkpoint_bytes(origin).items())) == 1
    run(["dvc", "commit", "-f"], clone)
    assert "up to date" in run(["dvc", "status"], clone).stdout
    run(["dvc", "push"], clone)
