# Helpers shared by all rule files -- validated config, paths, shard counts, code inputs.
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, workflow.basedir)  # the pipeline package next to this workflow
# Jobs run `python -m pipeline`: let that be the interpreter running Snakemake (e.g. .venv/bin/python
# when started as .venv/bin/snakemake); a conda environment, when used, comes first in PATH anyway.
os.environ["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])

from pipeline.certify import method_names
from pipeline.config import validate
from pipeline.errors import PipelineError
from pipeline.partition import n_shards

try:
    validate(config)
except PipelineError as err:
    raise ValueError(str(err)) from None

RUNS = config["runs"]
PREPARED = config["data"]["prepared_dir"]
RAW = config["data"]["raw_dir"]


def prepared(dataset, split):
    """Prepared split of a dataset: data/prepared/<dataset>/<split>.npz."""
    return f"{PREPARED}/{dataset}/{split}.npz"


def user_dataset_files(dataset):
    """The existing paths a user dataset declares (so that replacing them re-runs prepare)."""
    spec = config["datasets"].get(dataset)
    paths = [spec["path"], spec["test_path"]] if spec else []
    return [p for p in paths if p and os.path.exists(p)]


def shard_count(run):
    cfg = RUNS[run]
    return n_shards(cfg["method"], cfg["k"], cfg["d"], cfg["shard_size"])


def shard_files(run, pattern):
    """One path per shard of a run, e.g. pattern 'work/{run}/models/shard_{shard}.pt'."""
    return [pattern.format(run=run, shard=s) for s in range(shard_count(run))]


def certificate_methods(run):
    """Certificates of a run: dpa or fa, plus dpa_roe or fa_roe when roe is on."""
    return method_names(RUNS[run]["method"], RUNS[run]["roe"])


def code(*modules):
    """Package modules a rule runs, as inputs, so that a code change re-runs the rule."""
    return sorted(str(p) for m in modules for p in sorted(Path(workflow.basedir, "pipeline").glob(m)))


def final_outputs():
    outs = ["report/index.html", "report/summary.txt"]
    for run in RUNS:
        outs += [f"metrics/{run}.json", f"plots/{run}_certified_accuracy.csv", f"plots/{run}_certified_accuracy.png",
                 f"work/{run}/certificates.parquet"]
    return outs


def print_summary():
    summary = Path("report/summary.txt")
    if summary.exists():
        print(f"\n{summary.read_text()}")
