"""The workflow end to end through Snakemake on a tiny config (2,000 training / 200 test samples, k = 20)."""

import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import declared_and_measured, make_project, planned_jobs, run, snakemake, tiny_params, write_params

pytestmark = pytest.mark.workflow

OUTPUTS = ["work/tiny/certificates.parquet", "metrics/tiny.json", "plots/tiny_certified_accuracy.csv",
           "plots/tiny_certified_accuracy.png", "report/index.html", "report/summary.txt"]


def mtimes(project, pattern):
    return {p: p.stat().st_mtime_ns for p in sorted(project.glob(pattern))}


@pytest.fixture(scope="module")
def tiny_project(tmp_path_factory, raw_root):
    project = make_project(tmp_path_factory.mktemp("wf") / "project", tiny_params(raw_root))
    # partition is a checkpoint: its distances jobs join the DAG once it has run
    assert planned_jobs(project) == {"prepare": 1, "partition_tiny": 1, "test_features": 1, "certify": 1, "report": 1,
                                     "all": 1}
    result = snakemake(project)
    return project, result


def test_tiny_run_produces_every_output(tiny_project):
    project, result = tiny_project
    for name in OUTPUTS:
        assert (project / name).is_file(), name
    cert = pq.read_table(project / "work/tiny/certificates.parquet").to_pandas()
    assert len(cert) == 200 and cert.radius_dpa.max() <= 10
    metrics = json.loads((project / "metrics/tiny.json").read_text())
    assert metrics["n_models"] == 20 and metrics["n_train"] == 2000 and metrics["n_test"] == 200
    assert metrics["clean_accuracy"]["dpa"] > 0.8 and metrics["clean_accuracy"]["dpa_roe"] > 0.8
    assert metrics["certified_accuracy"]["dpa"]["0"] == metrics["clean_accuracy"]["dpa"]
    assert metrics["certified_accuracy"]["dpa_roe"]["0"] == metrics["clean_accuracy"]["dpa_roe"]
    # The table is printed at the end of the run.
    assert "Certified accuracy (%) by radius" in result.stdout + result.stderr
    assert "tiny DPA+ROE" in (project / "report/summary.txt").read_text()
    assert (project / "logs/tiny/distances/buckets_0.log").exists()
    assert (project / "logs/benchmarks/tiny/distances_buckets_0.tsv").exists()
    assert not (project / "work/tiny/models").exists()  # shared distances: no train or predict jobs


def assert_declared_resources_cover_the_measured(project, result, stages):
    """Every job declared at least the peak memory and the time its benchmark file measured."""
    rows = declared_and_measured(project, result)
    assert {"prepare" if "/prepare/" in b else Path(b).stem.split("_shard")[0].split("_buckets")[0]
            for b, *_ in rows} >= set(stages), rows
    for bench, mem_mb, runtime_min, max_rss, seconds in rows:
        assert max_rss <= mem_mb, f"{bench}: peak {max_rss} MB > declared mem_mb={mem_mb}"
        assert seconds <= 60 * runtime_min, f"{bench}: {seconds} s > declared runtime={runtime_min} min"


def test_declared_resources_cover_the_measured(tiny_project):
    project, result = tiny_project
    assert_declared_resources_cover_the_measured(project, result, ["prepare", "partition", "test_features",
                                                                   "distances", "certify", "report"])


def test_second_run_does_nothing(tiny_project):
    project, _ = tiny_project
    assert planned_jobs(project) == {}
    before = mtimes(project, "**/*.*")
    snakemake(project)
    assert mtimes(project, "**/*.*").items() >= {p: t for p, t in before.items() if ".snakemake" not in str(p)}.items()


def test_changed_learner_parameter_retrains_but_does_not_repartition(tiny_project, raw_root):
    project, _ = tiny_project
    params = tiny_params(raw_root)
    params["runs"]["tiny"]["learner"]["params"]["grid"] = 7
    write_params(project, params)
    jobs = planned_jobs(project)
    assert jobs.get("test_features") == 1 and jobs.get("distances") == 2 and jobs.get("certify") == 1
    assert "partition_tiny" not in jobs and "prepare" not in jobs
    partition_before = mtimes(project, "work/tiny/partition/*")
    distances_before = mtimes(project, "work/tiny/distances/*")
    snakemake(project)
    assert mtimes(project, "work/tiny/partition/*") == partition_before
    after = mtimes(project, "work/tiny/distances/*")
    assert all(after[p] != t for p, t in distances_before.items())
    assert planned_jobs(project) == {}


def test_same_params_give_identical_results(tiny_project, tmp_path, raw_root):
    first, _ = tiny_project
    params = tiny_params(raw_root)
    params["runs"]["tiny"]["learner"]["params"]["grid"] = 7  # as the project is after the previous test
    second = make_project(tmp_path / "again", params)
    snakemake(second, "work/tiny/certificates.parquet")
    for name in ["work/tiny/certificates.parquet", "work/tiny/distances/buckets_0.parquet",
                 "work/tiny/distances/buckets_1.parquet"]:
        assert pq.read_table(first / name).equals(pq.read_table(second / name)), name
    for name in ["shard_0.json", "shard_1.json", "buckets_0.json", "buckets_1.json"]:
        assert (first / f"work/tiny/partition/{name}").read_bytes() == (second / f"work/tiny/partition/{name}").read_bytes()
    assert (first / "work/tiny/distances/test_features.npz").read_bytes() == \
        (second / "work/tiny/distances/test_features.npz").read_bytes()


@pytest.mark.parametrize("change, message", [
    (lambda p: p["runs"]["tiny"].update(k=0), "runs.tiny.k: 0 is less than the minimum of 1"),
    (lambda p: p["runs"]["tiny"]["learner"].update(name="xgboost"), "runs.tiny.learner.name: 'xgboost' is not one of"),
    (lambda p: p.update(radii=[0, 5, 3]), "radii: must be strictly increasing"),
])
def test_invalid_params_stop_snakemake_with_a_clear_message(tmp_path, raw_root, change, message):
    params = tiny_params(raw_root)
    change(params)
    project = make_project(tmp_path / "bad", params)
    result = snakemake(project, check=False)
    assert result.returncode != 0
    assert message in result.stdout + result.stderr
    assert not any((project / d).exists() for d in ("work", "metrics", "plots", "report", "data"))


def test_lint_is_clean(tiny_project):
    project, _ = tiny_project
    result = run(["snakemake", "--lint"], project, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fa_dpa_star_and_nin_runs_end_to_end(tmp_path, raw_root):
    params = tiny_params(raw_root)
    tiny = params["runs"].pop("tiny")
    params["runs"]["fa"] = {**tiny, "method": "fa", "k": 10, "d": 4, "roe": True, "shard_size": 10}
    params["runs"]["fa_hog"] = {**tiny, "method": "fa", "k": 10, "d": 4, "roe": True, "shard_size": 10,
                                "shared_distances": False, "learner": {"name": "hog_nn", "params": {}}}
    params["runs"]["dpastar"] = {**tiny, "versions": 2, "roe": True, "shard_size": 20,
                                 "learner": {"name": "small_cnn", "params": {"epochs": 2, "width": 8}}}
    params["runs"]["nin"] = {**tiny, "k": 4, "train_limit": 400, "test_limit": 50, "shard_size": 2, "roe": False,
                             "learner": {"name": "nin", "params": {"epochs": 1}}}
    project = make_project(tmp_path / "fa", params)
    assert_declared_resources_cover_the_measured(project, snakemake(project), ["train", "predict", "distances",
                                                                               "certify"])

    fa_metrics = json.loads((project / "metrics/fa.json").read_text())
    assert fa_metrics["n_models"] == 40 and fa_metrics["methods"] == {"fa": "FA", "fa_roe": "FA+ROE"}
    layout = [json.loads((project / f"work/fa/partition/shard_{s}.json").read_text()) for s in range(4)]
    from pipeline.partition import fa_offsets

    offsets = fa_offsets(10, 4)
    for shard in layout:
        for model in shard["models"]:
            assert model["buckets"] == [(model["model_id"] - s) % 40 for s in offsets]
    cert = pq.read_table(project / "work/fa/certificates.parquet").to_pandas()
    assert {"radius_fa", "radius_fa_roe", "prediction_roe"} <= set(cert.columns) and len(cert) == 200
    assert cert.radius_fa.max() <= 40

    star = json.loads((project / "metrics/dpastar.json").read_text())
    assert star["versions"] == 2 and star["methods"] == {"dpa": "DPA*", "dpa_roe": "DPA*+ROE"}
    shard = json.loads((project / "work/dpastar/partition/shard_0.json").read_text())
    assert shard["models"][3]["seeds"] == [3, 1_000_003]
    summary = (project / "report/summary.txt").read_text()
    assert "fa FA+ROE" in summary and "dpastar DPA*+ROE" in summary
    header = (project / "plots/fa_certified_accuracy.csv").read_text().splitlines()[0]
    assert header == "radius,fa,fa_roe"

    nin_metrics = json.loads((project / "metrics/nin.json").read_text())
    assert nin_metrics["learner"] == "nin" and nin_metrics["n_models"] == 4 and nin_metrics["n_test"] == 50
    assert "prediction_roe" not in pq.read_table(project / "work/nin/certificates.parquet").column_names
