"""Fault injection: jobs killed mid-run, files deleted or corrupted, then a plain rerun.

After every fault the rerun either gives results byte-identical to an uninterrupted run with the same
params, or fails with one clear message whose fix (followed here) then gives them. Never exit 0 with
different results. Jobs are killed with SIGKILL, as the kernel's out-of-memory killer would.
"""

import json
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from .conftest import executed_jobs, file_bytes, make_project, snakemake, tiny_params, write_params

pytestmark = pytest.mark.workflow

RESULTS = ["work/tiny/certificates.parquet", "metrics/tiny.json", "plots/tiny_certified_accuracy.csv"]


def params_for(raw_root, shared=False, **changes):
    """The issue's tiny config: k = 10 in two shards of 5, 2,000 training and 300 test samples, ROE on; models
    trained and predicted one by one (train, predict), or from shared distances (test_features, distances)."""
    return tiny_params(raw_root, k=10, shard_size=5, train_limit=2000, test_limit=300, roe=True,
                       shared_distances=shared, **changes)


def results(project, only=None) -> dict:
    """Everything a run's results consist of: certificates, metrics, curve, checkpoints, predictions and run-off
    files (or test features and distances); ``only``: just these result files."""
    out = {name: (project / name).read_bytes() for name in RESULTS}
    if only:
        return {name: out[name] for name in only}
    out.update(file_bytes(project, "work/tiny/models/*.pt"))
    out.update(file_bytes(project, "work/tiny/distances/*.npz"))
    for path in sorted(p for folder in ("predictions", "distances", "runoff")
                       for p in project.glob(f"work/tiny/{folder}/*.parquet")):
        out[f"{path.parent.name}/{path.name}"] = pq.read_table(path)
    return out


def assert_same_results(project, reference, only=None):
    got, want = results(project, only), results(reference, only)
    assert sorted(got) == sorted(want)
    for name in only or want:
        same = got[name] == want[name] if isinstance(want[name], bytes) else got[name].equals(want[name])
        assert same, f"{name} differs from the uninterrupted run"


def copy_project(src: Path, dest: Path) -> Path:
    """A completed project, copied with its timestamps and Snakemake's records (nothing looks out of date)."""
    shutil.copytree(src, dest, symlinks=True)
    return dest


def job_pid(project: Path, stage: str, marker: str):
    """Pid of a running `python -m pipeline <stage>` job of ``project`` whose arguments mention ``marker``."""
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            args = (proc / "cmdline").read_bytes().split(b"\0")
            cwd = os.readlink(proc / "cwd")
        except OSError:
            continue
        words = [a.decode(errors="replace") for a in args]
        if (cwd == str(project) and words[1:4] == ["-m", "pipeline", stage]
                and any(marker in w for w in words)):
            return int(proc.name)
    return None


def run_and_kill(project: Path, stage: str, marker: str = "", *args):
    """Run snakemake and SIGKILL the job process of ``stage`` (arguments mentioning ``marker``) once it runs."""
    proc = subprocess.Popen(["snakemake", "--cores", "2", *args], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    killed = False
    deadline = time.monotonic() + 600
    while proc.poll() is None and time.monotonic() < deadline:
        pid = job_pid(project, stage, marker)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.01)
    out, _ = proc.communicate(timeout=600)
    assert killed, f"no {stage} job ({marker}) ran:\n{out}"
    assert proc.returncode != 0, out
    return out


@pytest.fixture(scope="module")
def clean(tmp_path_factory, raw_root):
    """An uninterrupted run of the tiny config (train and predict)."""
    project = make_project(tmp_path_factory.mktemp("faults") / "clean", params_for(raw_root))
    snakemake(project)
    return project


@pytest.fixture(scope="module")
def clean_shared(tmp_path_factory, raw_root):
    """An uninterrupted run of the tiny config with shared distances."""
    project = make_project(tmp_path_factory.mktemp("faults") / "clean_shared", params_for(raw_root, shared=True))
    snakemake(project)
    return project


@pytest.fixture(scope="module")
def exclusions(clean):
    """Text of an exclusion list: all but 10 samples of bucket 5, whose model (5) lies in shard 1."""
    assignment = pq.read_table(clean / "work/tiny/partition/assignment.parquet").to_pandas()
    ids = assignment.sample_id[assignment.bucket == 5].tolist()
    assert len(ids) > 20
    return "\n".join(map(str, ids[10:])) + "\n"


def edited_params(raw_root, shared=False):
    return params_for(raw_root, shared, exclude="edits/remove.txt")


@pytest.fixture(scope="module")
def edited_reference(tmp_path_factory, raw_root, exclusions):
    """An uninterrupted run from scratch with the exclusion list."""
    project = make_project(tmp_path_factory.mktemp("faults") / "edited", edited_params(raw_root))
    (project / "edits/remove.txt").write_text(exclusions)
    snakemake(project)
    return project


def test_failed_train_after_an_edit_heals_on_rerun(clean, edited_reference, raw_root, exclusions, tmp_path):
    """The issue's case 1: the edited shard's train job is killed; the old predictions must not be used."""
    project = copy_project(clean, tmp_path / "p")
    (project / "edits/remove.txt").write_text(exclusions)
    write_params(project, edited_params(raw_root))
    out = run_and_kill(project, "train", "shard_1.json")
    assert not (project / "work/tiny/models/shard_1.pt").exists(), out

    jobs = executed_jobs(snakemake(project))
    assert jobs.get("train") == 1 and jobs.get("predict") == 1 and jobs.get("certify") == 1, jobs
    assert json.loads((project / "metrics/tiny.json").read_text())["n_train"] == 2000 - exclusions.count("\n")
    assert_same_results(project, edited_reference)
    assert "Nothing to be done" in snakemake(project, "-n").stdout


def test_failed_train_after_a_learner_change_heals_on_rerun(clean, raw_root, tmp_path):
    params = params_for(raw_root)
    params["runs"]["tiny"]["learner"]["params"]["orientations"] = 8
    reference = make_project(tmp_path / "reference", params)
    snakemake(reference)

    project = copy_project(clean, tmp_path / "p")
    write_params(project, params)
    run_and_kill(project, "train", "shard_0.json")
    snakemake(project)
    assert_same_results(project, reference)
    metrics = json.loads((project / "metrics/tiny.json").read_text())
    assert metrics["provenance"]["learner"]["params"]["orientations"] == 8


def test_killed_predict_runoff_and_certify_jobs_heal_on_rerun(clean, raw_root, tmp_path):
    project = make_project(tmp_path / "p", params_for(raw_root))
    run_and_kill(project, "predict", "shard_1.pt")
    run_and_kill(project, "runoff", "runoff/shard_1")
    assert not list((project / "work/tiny/runoff").glob("*shard_1*"))  # nothing half-written left behind
    run_and_kill(project, "certify")
    assert not (project / "work/tiny/certificates.parquet").exists()
    snakemake(project)
    assert_same_results(project, clean)


@pytest.mark.parametrize("reference, deleted", [
    ("clean", "work/tiny/models/shard_0.pt"),
    ("clean", "work/tiny/predictions/shard_1.parquet work/tiny/runoff/shard_0.parquet"),
    ("clean", "work/tiny/partition/shard_1.json"), ("clean", "data/prepared"),
    ("clean_shared", "work/tiny/distances/buckets_1.parquet"), ("clean_shared", "work/tiny/distances/test_features.npz"),
])
def test_deleted_files_are_rebuilt(request, tmp_path, reference, deleted):
    """The issue's case 2: a plain `snakemake` rebuilds any deleted intermediate file (``deleted``: one or more)."""
    clean = request.getfixturevalue(reference)  # train and predict, or shared distances
    project = copy_project(clean, tmp_path / "p")
    targets = [project / path for path in deleted.split()]
    for target in targets:
        shutil.rmtree(target) if target.is_dir() else target.unlink()
    assert "Nothing to be done" not in snakemake(project, "-n").stdout
    snakemake(project)
    assert all(target.exists() for target in targets)
    assert_same_results(project, clean)
    assert "Nothing to be done" in snakemake(project, "-n").stdout


def corrupt(path: Path) -> None:
    """Overwrite the middle of a file with garbage, keeping its size and modification time."""
    stat = path.stat()
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 64] = b"\xff" * min(64, len(data) - middle)
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


@pytest.mark.parametrize("reference, damaged, rerun", [
    ("clean", "work/tiny/models/shard_0.pt", "predict"),
    ("clean", "work/tiny/predictions/shard_1.parquet", "certify"),
    ("clean", "work/tiny/runoff/shard_0.parquet", "certify"),
    ("clean", "work/tiny/partition/shard_1.json", "certify"),
    ("clean_shared", "work/tiny/distances/buckets_1.parquet", "certify"),
    ("clean_shared", "work/tiny/distances/test_features.npz", "distances"),
])
def test_corrupt_files_give_the_same_results_or_one_clear_message(request, tmp_path, reference, damaged, rerun):
    clean = request.getfixturevalue(reference)  # train and predict, or shared distances
    project = copy_project(clean, tmp_path / "p")
    corrupt(project / damaged)
    # Nothing looks out of date: the results (computed before the damage) stay as they were.
    snakemake(project)
    assert_same_results(project, clean, only=RESULTS)
    # A job that reads the damaged file refuses it with one clear message (the same in every job that reads it) ...
    result = snakemake(project, "--forcerun", rerun, check=False)
    log = "".join(p.read_text() for p in project.glob("logs/**/*.log") if "error:" in p.read_text())
    assert result.returncode != 0, "a damaged file was used"
    errors = sorted({line for line in log.splitlines() if line.startswith("error: ")})
    assert len(errors) == 1 and damaged.rsplit("/", 1)[-1] in errors[0], log
    assert "Traceback" not in log
    assert "delete it and run snakemake again" in errors[0]
    # ... and following its advice gives the uninterrupted run's results.
    (project / damaged).unlink()
    snakemake(project)
    assert_same_results(project, clean)


@pytest.mark.parametrize("reference, rerun", [
    ("clean", {"train": 2, "certify": 1}),
    ("clean_shared", {"test_features": 1, "distances": 2, "certify": 1}),
])
def test_stale_inputs_are_refused_even_when_snakemake_is_told_to_ignore_changes(request, raw_root, tmp_path,
                                                                                reference, rerun):
    """With the params rerun trigger off, Snakemake does not see a learner change: certify must refuse the stale
    predictions (or distances)."""
    project = copy_project(request.getfixturevalue(reference), tmp_path / "p")
    params = params_for(raw_root, shared=reference == "clean_shared")
    params["runs"]["tiny"]["learner"]["params"]["orientations"] = 8
    write_params(project, params)
    result = snakemake(project, "--rerun-triggers", "mtime", "--forcerun", "certify", check=False)
    assert result.returncode != 0
    log = (project / "logs/tiny/certify.log").read_text()
    assert "stale, computed with other learner settings (learner parameters differ (orientations))" in log
    assert not (project / "work/tiny/certificates.parquet").exists()
    # A plain run (every rerun trigger on) recomputes the models' scores and certifies.
    jobs = executed_jobs(snakemake(project))
    assert {rule: jobs.get(rule) for rule in rerun} == rerun, jobs


# Shared distances (nearest-neighbour learners' default): the same faults on test_features, distances, certify.

def test_failed_distances_job_after_an_edit_heals_on_rerun(clean_shared, raw_root, exclusions, tmp_path):
    """The edited bucket group's distances job is killed; the old distances must not be used."""
    reference = make_project(tmp_path / "reference", edited_params(raw_root, shared=True))
    (reference / "edits/remove.txt").write_text(exclusions)
    snakemake(reference)
    project = copy_project(clean_shared, tmp_path / "p")
    (project / "edits/remove.txt").write_text(exclusions)
    write_params(project, edited_params(raw_root, shared=True))
    out = run_and_kill(project, "distances", "buckets_1.json")  # bucket 5 lies in group 1
    assert not (project / "work/tiny/distances/buckets_1.parquet").exists(), out
    jobs = executed_jobs(snakemake(project))
    assert jobs.get("distances") == 1 and jobs.get("certify") == 1 and "train" not in jobs, jobs
    assert json.loads((project / "metrics/tiny.json").read_text())["n_train"] == 2000 - exclusions.count("\n")
    assert_same_results(project, reference)
    assert "Nothing to be done" in snakemake(project, "-n").stdout


def test_killed_test_features_and_certify_jobs_heal_on_rerun(clean_shared, raw_root, tmp_path):
    project = make_project(tmp_path / "p", params_for(raw_root, shared=True))
    run_and_kill(project, "test-features")
    assert not (project / "work/tiny/distances/test_features.npz").exists()
    run_and_kill(project, "certify")
    assert not (project / "work/tiny/certificates.parquet").exists()
    snakemake(project)
    assert_same_results(project, clean_shared)
