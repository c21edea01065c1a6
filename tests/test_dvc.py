"""`dvc repro` reproduces the tiny run; metrics and plots are declared and readable."""

import json

import pyarrow.parquet as pq
import pytest

from .conftest import make_project, run, tiny_params

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
    assert "tiny_certified_accuracy.csv" in page and "tiny_certified_accuracy.png" in page

    again = run(["dvc", "repro"], project)
    assert "didn't change, skipping" in again.stdout + again.stderr
    assert "up to date" in run(["dvc", "status"], project).stdout
