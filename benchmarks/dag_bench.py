"""How long Snakemake takes to build the DAG of a large run: `snakemake -n` for MNIST FA, k = 1200, d = 32.

38,400 base models in shards of 100 (the default shard size): 384 train and 384 predict jobs with every
model on its own (shared_distances: false, the largest DAG), 384 distances jobs with shared distances.
partition is a checkpoint, so the dry run lists those jobs once the partition exists; the
benchmark times the dry run both before anything ran and after the partition step (the full DAG),
three times each, and writes benchmarks/dag_results.json.

    python -m benchmarks.dag_bench [--workdir DIR] [--raw-dir data/raw]
"""

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.projects import REPO, make_project

RUN = "mnist_fa_k1200_d32"


def fa_project(dest: Path, raw_dir: Path, shared: bool = False) -> Path:
    """The default params with one run: MNIST FA, k = 1200, d = 32 (train + predict, or shared distances)."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    run = next(iter(params["runs"].values()))
    params["data"]["raw_dir"] = str(raw_dir.resolve())
    params["runs"] = {RUN: {**run, "method": "fa", "k": 1200, "d": 32, "roe": False, "shared_distances": shared}}
    return make_project(dest, params)


def snakemake(project, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SNAKEMAKE_PROFILE", None)
    start = time.perf_counter()
    result = subprocess.run(["snakemake", "--cores", "2", *args], cwd=project, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout + result.stderr, seconds


def planned(log: str) -> dict:
    table = log[log.index("job"):log.index("total")]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\S+)\s+(\d+)\s*$", table, re.M)}


def time_dry_run(project, repeats=3):
    times, jobs = [], None
    for _ in range(repeats):
        log, seconds = snakemake(project, "-n")
        times.append(seconds)
        jobs = planned(log)
    return {"seconds_median": round(statistics.median(times), 2), "seconds": [round(t, 2) for t in times],
            "jobs": jobs, "total_jobs": sum(jobs.values())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", help="project folder to use (default: a temporary one)")
    parser.add_argument("--raw-dir", default=str(REPO / "data" / "raw"), help="raw datasets (data/raw)")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "dag_results.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        project = fa_project(Path(args.workdir or tmp), Path(args.raw_dir))
        fresh = time_dry_run(project)
        print(f"dry run before the partition exists: {fresh['seconds_median']} s, {fresh['total_jobs']} jobs")
        _, partition_seconds = snakemake(project, f"work/{RUN}/partition/assignment.parquet")
        full = time_dry_run(project)
        print(f"dry run with the partition (full DAG): {full['seconds_median']} s, {full['total_jobs']} jobs "
              f"({full['jobs'].get('train')} train, {full['jobs'].get('predict')} predict)")
        # the same run with shared distances (the partition and prepared data are reused)
        with open(project / "params.yaml") as f:
            params = yaml.safe_load(f)
        params["runs"][RUN]["shared_distances"] = True
        (project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        shared = time_dry_run(project)
        print(f"dry run with shared distances (full DAG): {shared['seconds_median']} s, {shared['total_jobs']} jobs "
              f"({shared['jobs'].get('distances')} distances)")
    result = {"run": "MNIST FA k=1200 d=32, shard_size 100 (38,400 models)", "cores": 2, "target_seconds": 30,
              "dry_run_fresh": fresh, "dry_run_full_dag": full, "dry_run_full_dag_shared_distances": shared,
              "prepare_and_partition_seconds": round(partition_seconds, 1)}
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
