"""Whole-workflow runs on full MNIST, side by side in one run: `snakemake --cores 2` from a fresh project.

- before: hog_nn with every model trained and predicted on its own (train + predict jobs), the default run
  before shared distances;
- hog_nn shared: the same learner from shared per-bucket distances (distances jobs); its certificates must
  equal the first run's, byte for byte;
- default: the default params.yaml (orient_nn, shared distances);
- FA k=1200 d=16 and d=32 with ROE (configs/mnist_fa_k1200_d*.yaml, the default learner).

Each run prepares its own copy of the data (prepare is part of the workflow). Reports wall time, the peak
RSS of any job and CPU seconds per rule (Snakemake's benchmark files), the certified accuracy, and the
ratios; writes benchmarks/workflow_results.json.

    python -m benchmarks.workflow_bench [--raw-dir data/raw] [--workdir DIR] [--only NAME ...]
"""

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

from tests.projects import REPO, make_project

DPA_RUN = "mnist_dpa_k1200"


def default_params(raw_dir: Path) -> dict:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["data"]["raw_dir"] = str(raw_dir.resolve())
    return params


def with_hog_nn(params: dict, shared: bool) -> dict:
    run = params["runs"][DPA_RUN]
    run["shared_distances"] = shared
    run["learner"] = {"name": "hog_nn", "params": {}}  # hog_nn's defaults: the default learner until now
    return params


def config_params(name: str, raw_dir: Path) -> dict:
    params = yaml.safe_load((REPO / "configs" / f"{name}.yaml").read_text())
    params["data"]["raw_dir"] = str(raw_dir.resolve())
    return params


def cases(raw_dir: Path) -> dict:
    return {
        "before_hog_nn_per_model": with_hog_nn(default_params(raw_dir), shared=False),
        "hog_nn_shared": with_hog_nn(default_params(raw_dir), shared=True),
        "default_orient_nn_shared": default_params(raw_dir),
        "fa_k1200_d16_roe": config_params("mnist_fa_k1200_d16", raw_dir),
        "fa_k1200_d32_roe": config_params("mnist_fa_k1200_d32", raw_dir),
    }


def job_figures(project: Path) -> dict:
    """Peak RSS of any job (MB) and CPU seconds summed per rule, from the benchmark files."""
    peak, cpu = 0.0, {}
    for path in (project / "logs" / "benchmarks").rglob("*.tsv"):
        with open(path) as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        peak = max(peak, float(row["max_rss"]))
        rule = path.stem.split("_shard")[0].split("_buckets")[0]
        rule = "prepare" if path.parent.name == "prepare" else rule
        cpu[rule] = round(cpu.get(rule, 0.0) + float(row["cpu_time"]), 1)
    return {"peak_job_rss_mb": round(peak), "cpu_seconds_by_rule": dict(sorted(cpu.items()))}


def run_case(name: str, params: dict, folder: Path) -> dict:
    project = make_project(folder / name, params)
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("SNAKEMAKE_PROFILE", None)
    start = time.perf_counter()
    result = subprocess.run(["snakemake", "--cores", "2"], cwd=project, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{name}: snakemake failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    (run,) = params["runs"]
    metrics = json.loads((project / "metrics" / f"{run}.json").read_text())
    return {"project": project, "run": run, "wall_seconds": round(seconds, 1), **job_figures(project),
            "base_model_accuracy": round(metrics["base_model_accuracy"], 4),
            "certified_accuracy": metrics["certified_accuracy"], "learner": metrics["learner"]}


def same_certificates(a: Path, b: Path, run: str) -> bool:
    import pyarrow.parquet as pq

    path = f"work/{run}/certificates.parquet"
    return pq.read_table(a / path).to_pandas().equals(pq.read_table(b / path).to_pandas())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raw-dir", default=str(REPO / "data" / "raw"), help="raw datasets (data/raw)")
    parser.add_argument("--workdir", help="folder for the projects (default: a temporary one, removed after)")
    parser.add_argument("--only", nargs="+", help="run only these cases")
    parser.add_argument("--out", default=str(REPO / "benchmarks" / "workflow_results.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(args.workdir or tmp)
        results = {}
        for name, params in cases(Path(args.raw_dir)).items():
            if args.only and name not in args.only:
                continue
            results[name] = run_case(name, params, folder)
            r = results[name]
            print(f"{name}: {r['wall_seconds']} s, peak job RSS {r['peak_job_rss_mb']} MB, base-model accuracy "
                  f"{100 * r['base_model_accuracy']:.2f} %", flush=True)
        before, shared = results.get("before_hog_nn_per_model"), results.get("hog_nn_shared")
        summary = {}
        if before and shared:
            summary["hog_nn_certificates_identical"] = same_certificates(before["project"], shared["project"], DPA_RUN)
            summary["hog_nn_speedup_shared_vs_per_model"] = round(before["wall_seconds"] / shared["wall_seconds"], 2)
        if before and "default_orient_nn_shared" in results:
            summary["default_speedup_vs_before"] = round(
                before["wall_seconds"] / results["default_orient_nn_shared"]["wall_seconds"], 2)
        for fa in ("fa_k1200_d16_roe", "fa_k1200_d32_roe"):
            if fa in results and "default_orient_nn_shared" in results:
                summary[f"{fa}_wall_vs_default_dpa"] = round(
                    results[fa]["wall_seconds"] / results["default_orient_nn_shared"]["wall_seconds"], 2)
        print(json.dumps(summary, indent=1))
    for r in results.values():
        del r["project"]
    out = {"what": "snakemake --cores 2 from a fresh project, full MNIST (60,000 training / 10,000 test samples), "
                   "prepare included", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "results": results, "summary": summary}
    Path(args.out).write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
