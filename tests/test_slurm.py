"""The tiny workflow through profiles/slurm on a real single-node SLURM gives the local run's results.

Needs root and the SLURM packages (`sudo bash scripts/local-slurm.sh install`); skipped otherwise,
unless PIPELINE_TEST_SLURM=1 (set by .ci/run), which turns a missing SLURM into a failure.
"""

import os
import re
import shutil

import pyarrow.parquet as pq
import pytest

from .conftest import REPO, make_project, run, snakemake, tiny_params

pytestmark = pytest.mark.workflow

SCRIPT = REPO / "scripts" / "local-slurm.sh"


def missing_requirements() -> list[str]:
    missing = [] if os.geteuid() == 0 else ["root"]
    missing += [tool for tool in ("slurmctld", "slurmd", "sbatch", "munged") if shutil.which(tool) is None]
    try:
        import snakemake_executor_plugin_slurm  # noqa: F401
    except ImportError:
        missing.append("snakemake-executor-plugin-slurm")
    return missing


@pytest.fixture(scope="module")
def local_slurm():
    missing = missing_requirements()
    if missing:
        message = f"a local SLURM needs {', '.join(missing)} (sudo bash scripts/local-slurm.sh install)"
        if os.environ.get("PIPELINE_TEST_SLURM") == "1":
            pytest.fail(message)
        pytest.skip(message)
    run(["bash", str(SCRIPT), "up"], REPO, timeout=120)
    yield
    run(["bash", str(SCRIPT), "down"], REPO, timeout=120)


def test_slurm_profile_run_equals_local_run(tmp_path, local_slurm, mnist_raw_dir):
    params = tiny_params(mnist_raw_dir.parent)
    cluster = make_project(tmp_path / "cluster", params)
    # SIGINT (not SIGTERM) stops the SLURM executor and cancels its jobs if anything hangs.
    result = run(["timeout", "-s", "INT", "-k", "60", "600", "snakemake", "--profile", "profiles/slurm",
                  "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
                  "--retries", "0", "--latency-wait", "5"], cluster, check=False, timeout=700)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log

    # Every job went through sbatch; both bucket groups' distances jobs went out in one group submission.
    submitted = re.findall(r"Job \S+ has been submitted with SLURM jobid (\d+)", log)
    groups = re.findall(r"^.*Group job shards", log, re.M)
    # prepare, partition, test_features, 1 group of 2 distances jobs, certify, report
    assert len(set(submitted)) == len(submitted) == 6, log
    assert len(groups) == 1, log
    states = run(["squeue", "--states=all", "-h", "-o", "%i %T"], cluster).stdout.split("\n")
    finished = {line.split()[0] for line in states if line.strip().endswith("COMPLETED")}
    assert set(submitted) <= finished, states

    local = make_project(tmp_path / "local", params)
    snakemake(local)
    for name in ["work/tiny/certificates.parquet", "work/tiny/distances/buckets_0.parquet",
                 "work/tiny/distances/buckets_1.parquet"]:
        assert pq.read_table(cluster / name).equals(pq.read_table(local / name)), name
    assert (cluster / "metrics/tiny.json").read_bytes() == (local / "metrics/tiny.json").read_bytes()
