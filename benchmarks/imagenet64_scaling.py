"""ImageNet 64x64 at scale, simulated: wall time and peak RSS of every job kind against the training-set size N.

For each N: synthetic files in the official npz format (``python -m pipeline synthetic-imagenet64``), then the
pipeline's own commands, each in its own process (peak RSS from ``os.wait4``):

- prepare (the ten batches and val_data.npz, streamed);
- partition, DPA with k = N / partition size (a fixed number of samples per model), ``--shard-size`` models per
  shard;
- train, predict and the Run-Off Election pass of shard 0 (a cheap learner: small_cnn, one epoch);
- certify (DPA and DPA+ROE, 1,000 classes, ``--n-val`` validation samples) over every shard.

Only shard 0 is trained: the other shards' predictions and run-off files are written here from random scores
(the votes favour the label; the run-off bits are those of the same scores, for the finalists of all the
votes), with the provenance certify checks (the real shard files and test set). The run-off pass of shard 0
reads every shard's votes, as in a real run. Also reports the run-off files' size against float32 scores.

    python -m benchmarks.imagenet64_scaling WORKDIR [--sizes 128000 320000 1281167] [--n-val 10000]
        [--partition-size 1281] [--shard-size 5] [--out benchmarks/imagenet64_scaling.json]

WORKDIR needs about 2 x 12.3 KB per image of disk (the raw files are deleted once prepared, the prepared
files once an N is done, unless --keep).
"""

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

N_CLASSES = 1000
LEARNER = "small_cnn"
LEARNER_PARAMS = {"epochs": 1, "width": 4, "batch_size": 64}


# Runs a command in a child of a fresh, small interpreter and writes the child's rusage as JSON to argv[1]: a
# child forked straight from this (large) process would count this process's resident pages in its peak.
LAUNCHER = """import json, os, sys
pid = os.fork()
if pid == 0:
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as f:
    json.dump({"peak_rss_kib": usage.ru_maxrss, "returncode": os.waitstatus_to_exitcode(status)}, f)
sys.exit(min(255, abs(os.waitstatus_to_exitcode(status))))
"""


def timed(cmd: list[str], log: Path) -> dict:
    """Run ``cmd`` (stdout and stderr to ``log``): its wall seconds and peak RSS (MiB); an error if it fails."""
    usage_file = log.with_suffix(".rusage.json")
    start = time.perf_counter()
    with open(log, "w") as out:
        code = subprocess.run([sys.executable, "-c", LAUNCHER, str(usage_file), *cmd], stdout=out,
                              stderr=subprocess.STDOUT).returncode
    seconds = time.perf_counter() - start
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed ({code}); see {log}:\n{log.read_text()[-2000:]}")
    usage = json.loads(usage_file.read_text())
    return {"seconds": round(seconds, 2), "peak_rss_mib": round(usage["peak_rss_kib"] / 1024)}


def pipeline(*args) -> list[str]:
    return [sys.executable, "-m", "pipeline", *map(str, args)]


def synthetic_shard(shard: dict, labels: np.ndarray, seed: int):
    """Random scores of a shard's models (each model votes for the label 30 % of the time): float32[n, m, C]."""
    rng = np.random.default_rng([seed, shard["shard"]])
    scores = rng.standard_normal((len(labels), len(shard["models"]), N_CLASSES), dtype=np.float32)
    scores[np.arange(len(labels)), :, labels] += 2.5 * (rng.random((len(labels), len(shard["models"]))) < 0.3)
    return scores


def write_synthetic_outputs(run: Path, shards: list[dict], spec: dict, test: dict, labels: np.ndarray, seed: int):
    """Predictions of every shard but 0, then (once shard 0's real predictions are in) run-off files of every shard
    but 0: random scores with the provenance certify checks. Returns the function writing the run-off files."""
    from pipeline.artifacts.predictions import PROVENANCE_KEY, predictions_table
    from pipeline.atomic import write_parquet
    from pipeline.certify.votes import votes_from_logits
    from pipeline.provenance import model_records

    def record(shard):
        return {"shard": shard["shard"], "learner": spec, "models": model_records(shard["models"]), "test": test,
                "checkpoint_sha256": f"synthetic-{shard['shard']}"}

    def save(path, table, shard, extra=None):
        meta = {PROVENANCE_KEY: json.dumps({**record(shard), **(extra or {})}, sort_keys=True)}
        write_parquet(path, table.replace_schema_metadata(meta), row_group_size=512 * len(shard["models"]))

    ids = lambda shard: [m["model_id"] for m in shard["models"]]  # noqa: E731
    for shard in shards[1:]:
        scores = synthetic_shard(shard, labels, seed)
        save(run / f"predictions/shard_{shard['shard']}.parquet",
             predictions_table(ids(shard), votes_from_logits(scores).T), shard)

    def runoff_files(finalists):
        from pipeline.artifacts.runoff import finalists_digest, runoff_table
        from pipeline.certify.roe import finalist_beats

        for shard in shards[1:]:
            scores = synthetic_shard(shard, labels, seed)
            table = runoff_table(ids(shard), finalist_beats(scores, *finalists))
            save(run / f"runoff/shard_{shard['shard']}.parquet", table, shard,
                 {"finalists_sha256": finalists_digest(*finalists)})

    return runoff_files


def one_size(root: Path, n_train: int, args) -> dict:
    """Every job kind at training-set size ``n_train``; the results (see the module docstring)."""
    from pipeline import learners
    from pipeline.artifacts.partition_files import read_shard
    from pipeline.artifacts.runoff import run_finalists
    from pipeline.artifacts.splits import load_test_subset, test_digests
    from pipeline.provenance import learner_spec

    root.mkdir(parents=True, exist_ok=True)
    logs = root / "logs"
    logs.mkdir(exist_ok=True)
    raw, prep, run = root / "raw", root / "prepared", root / "run"
    k = max(1, round(n_train / args.partition_size))
    n_shards = -(-k // args.shard_size)
    jobs = {}
    start = time.perf_counter()
    subprocess.run(pipeline("synthetic-imagenet64", "--out-dir", raw, "--n-train", n_train, "--n-val", args.n_val,
                            "--seed", args.seed), check=True, stdout=subprocess.DEVNULL)
    generate_s = time.perf_counter() - start
    spec_json = json.dumps({"format": "imagenet64", "path": str(raw), "test_path": None, "resize": None, "channels": 3})
    jobs["prepare"] = timed(pipeline("prepare", "--dataset", "imagenet64", "--raw-dir", raw, "--out-dir", prep,
                                     "--spec", spec_json), logs / "prepare.log")
    raw_bytes = sum(p.stat().st_size for p in raw.iterdir())
    if not args.keep:
        shutil.rmtree(raw)
    for folder in ("partition", "models", "predictions", "runoff"):
        (run / folder).mkdir(parents=True, exist_ok=True)
    jobs["partition"] = timed(pipeline("partition", "--train", prep / "train.npz", "--method", "dpa", "--k", k,
                                       "--shard-size", args.shard_size, "--expect-shards", n_shards,
                                       "--out-dir", run / "partition"), logs / "partition.log")
    learner_json = json.dumps(LEARNER_PARAMS)
    common = ["--learner", LEARNER, "--learner-params", learner_json]
    jobs["train"] = timed(pipeline("train", "--shard", run / "partition/shard_0.json", "--train", prep / "train.npz",
                                   "--inserted", run / "partition/inserted.npz", *common,
                                   "--out", run / "models/shard_0.pt"), logs / "train.log")
    test_args = ["--test", prep / "test.npz", "--test-limit", args.n_val]
    jobs["predict"] = timed(pipeline("predict", "--model", run / "models/shard_0.pt", "--shard",
                                     run / "partition/shard_0.json", *test_args, *common,
                                     "--out", run / "predictions/shard_0.parquet"), logs / "predict.log")

    shards = [read_shard(run / f"partition/shard_{s}.json") for s in range(n_shards)]
    images, labels, _ = load_test_subset(prep / "test.npz", args.n_val)
    test = test_digests(images, labels)
    spec = learner_spec(LEARNER, learners.resolve_params(LEARNER, LEARNER_PARAMS))
    runoff_files = write_synthetic_outputs(run, shards, spec, test, labels, args.seed)
    predictions = [run / f"predictions/shard_{s}.parquet" for s in range(n_shards)]
    jobs["runoff"] = timed(pipeline("runoff", "--model", run / "models/shard_0.pt", "--shard",
                                    run / "partition/shard_0.json", *test_args, "--predictions", *predictions,
                                    "--own-predictions", predictions[0], "--n-models", k, *common,
                                    "--out", run / "runoff/shard_0.parquet"), logs / "runoff.log")
    runoff_files(run_finalists(predictions, len(labels), k, N_CLASSES))
    runoffs = [run / f"runoff/shard_{s}.parquet" for s in range(n_shards)]
    jobs["certify"] = timed(pipeline(
        "certify", "--run", "scaling", "--dataset", "imagenet64", *common, "--predictions", *predictions,
        "--runoff", *runoffs, "--shards", *(run / f"partition/shard_{s}.json" for s in range(n_shards)),
        *test_args, "--radii", 0, 1, 2, "--methods", "dpa", "dpa_roe", "--certificates", run / "certificates.parquet",
        "--metrics", run / "metrics.json", "--curve", run / "curve.csv", "--plot", run / "curve.png"),
        logs / "certify.log")
    metrics = json.loads((run / "metrics.json").read_text())
    runoff_bytes = sum(p.stat().st_size for p in runoffs)
    logits_bytes = 4 * N_CLASSES * len(labels) * k
    result = {
        "n_train": n_train, "n_val": len(labels), "k": k, "shard_size": args.shard_size, "shards": n_shards,
        "samples_per_model": metrics["partition_size"], "generate_s": round(generate_s, 1),
        "raw_gb": round(raw_bytes / 1e9, 2), "prepared_gb": round((prep / "train.npz").stat().st_size / 1e9, 2),
        "jobs": jobs, "runoff_bytes": runoff_bytes, "float32_scores_bytes": logits_bytes,
        "runoff_fraction_of_scores": round(runoff_bytes / logits_bytes, 4),
        "clean_accuracy": metrics["clean_accuracy"],
    }
    if not args.keep:
        shutil.rmtree(root)
    return result


def fa_roe_pair_pruning(n_test: int = 200, k: int = 100, d: int = 4, seed: int = 0) -> dict:
    """FA+ROE at 1,000 classes: round 1's pairs only among the classes cheaper than CertR2 against every pair
    (C(C-1)/2 = 499,500 per test sample), same radii, timed side by side on random scores (the label's score
    raised in 30 % of the models)."""
    from pipeline.certify import roe
    from pipeline.certify.buckets import bucket_feeds
    from pipeline.certify.votes import votes_from_logits
    from pipeline.partition import model_buckets

    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, n_test)
    scores = rng.standard_normal((n_test, k * d, N_CLASSES), dtype=np.float32)
    scores[np.arange(n_test), :, labels] += 2.5 * (rng.random((n_test, k * d)) < 0.3)
    votes = votes_from_logits(scores)
    beats = roe.beats_from_logits(votes, scores, N_CLASSES)
    feed = bucket_feeds(model_buckets("fa", k, d))
    out = {"n_test": n_test, "k": k, "d": d, "classes": N_CLASSES}
    radii = {}
    for name, every in (("candidate_pairs", False), ("all_pairs", True)):
        start = time.perf_counter()
        radii[name] = roe.fa_roe_radius(votes, beats, feed, N_CLASSES, all_pairs=every)
        out[f"{name}_s"] = round(time.perf_counter() - start, 2)
    assert all(np.array_equal(a, b) for a, b in zip(radii["candidate_pairs"], radii["all_pairs"]))
    out["speedup"] = round(out["all_pairs_s"] / out["candidate_pairs_s"], 1)
    out["median_radius"] = float(np.median(radii["all_pairs"][1]))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--sizes", type=int, nargs="+", default=[128_000, 320_000, 1_281_167])
    parser.add_argument("--n-val", type=int, default=10_000)
    parser.add_argument("--partition-size", type=int, default=1281, help="training samples per model (N / k)")
    parser.add_argument("--shard-size", type=int, default=5, help="models per shard (one train job)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", action="store_true", help="keep every file (default: delete them once measured)")
    parser.add_argument("--out", type=Path, default=None, help="results JSON (default: print only)")
    parser.add_argument("--skip-sizes", action="store_true", help="only the FA+ROE pair measurement")
    args = parser.parse_args(argv)
    pairs = fa_roe_pair_pruning()
    print(f"FA+ROE, 1,000 classes, {pairs['k']} x {pairs['d']} models, {pairs['n_test']} test samples: candidate pairs "
          f"{pairs['candidate_pairs_s']} s, every pair {pairs['all_pairs_s']} s ({pairs['speedup']}x), same radii",
          flush=True)
    results = []
    if args.skip_sizes:
        args.sizes = []
    header = f"{'N':>9} {'k':>5} " + " ".join(f"{j + ' s':>12} {'MiB':>6}" for j in
                                              ("prepare", "partition", "train", "predict", "runoff", "certify"))
    print(header)

    def save():
        if args.out:
            args.out.write_text(json.dumps({"machine": f"{platform.machine()}, {os.cpu_count()} cores",
                                            "learner": {"name": LEARNER, "params": LEARNER_PARAMS},
                                            "fa_roe_pairs": pairs, "results": results}, indent=1) + "\n")

    for n in args.sizes:
        r = one_size(args.workdir / f"n{n}", n, args)
        results.append(r)
        columns = " ".join(f"{j['seconds']:12.1f} {j['peak_rss_mib']:6d}" for j in r["jobs"].values())
        share = 100 * r["runoff_fraction_of_scores"]
        print(f"{n:9d} {r['k']:5d} {columns}   run-off files {share:.2f} % of float32 scores", flush=True)
        save()
    save()
    return results


if __name__ == "__main__":
    main()
