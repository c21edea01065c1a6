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
from pipeline.edits import check_edit_files
from pipeline.errors import PipelineError
from pipeline.learners import wants_gpu
from pipeline.partition import n_shards

try:
    validate(config)
    check_edit_files(config["runs"])
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


def edit_files(run):
    """The run's exclusion list and insertion file, those that are set: {"exclusions": path, "insertions": path}."""
    files = {"exclusions": RUNS[run]["exclude"], "insertions": RUNS[run]["insert"]}
    return {key: path for key, path in files.items() if path is not None}


def after_partition(run, paths):
    """``paths``, once the run's partition checkpoint is complete.

    All jobs downstream of partition take their inputs through this: Snakemake then re-evaluates
    those jobs after the partition job has run, and a shard file rewritten with unchanged content
    (same checksum as recorded in .snakemake/metadata) does not retrain or re-predict its shard.
    """
    getattr(checkpoints, f"partition_{run}").get()
    return paths


def train_inputs(w):
    """Inputs of a train job: its shard file, and the training data as `ancient` (pinned by the shard file)."""
    return after_partition(w.run, {
        "shard": f"work/{w.run}/partition/shard_{w.shard}.json",
        "train": ancient(prepared(RUNS[w.run]["dataset"], "train")),
        "inserted": ancient(f"work/{w.run}/partition/inserted.npz"),
    })


def train_gpus(run):
    """GPUs a training job asks the scheduler for: 1 for learners that want one, unless device is cpu."""
    return int(config["device"] != "cpu" and wants_gpu(RUNS[run]["learner"]["name"]))


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
