"""Peak memory of the certify stage for MNIST-sized FA with k = 1200, d = 32 (38,400 models,
10,000 test samples): writes synthetic prediction shards in the workflow's format (about 75 %
of votes for the label), then runs `python -m pipeline certify` on them and reports its peak RSS.

    python -m benchmarks.certify_memory WORKDIR [--k 1200] [--d 32] [--n-test 10000] [--roe]
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.artifacts.predictions import PROVENANCE_KEY, predictions_table
from pipeline.artifacts.runoff import finalists_digest, run_finalists, runoff_table
from pipeline.artifacts.splits import array_digest, save_split
from pipeline.atomic import json_bytes, write_bytes, write_parquet
from pipeline.certify.roe import finalist_beats
from pipeline.certify.votes import votes_from_logits
from pipeline.learners import resolve_params
from pipeline.partition import model_buckets
from pipeline.provenance import learner_spec, model_records, with_self_digest

N_CLASSES = 10


def write_inputs(root: Path, k: int, d: int, n_test: int, shard_size: int, roe: bool):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, N_CLASSES, n_test)
    images = np.zeros((n_test, 1, 1), np.uint8)
    save_split(root / "test.npz", images, labels, [str(c) for c in range(10)], "synthetic")
    # the provenance certify checks: a hog_nn spec and this test set (the predictions themselves are random)
    spec = learner_spec("hog_nn", resolve_params("hog_nn", {}))
    test = {"n_test": n_test, "images_sha256": array_digest(images), "labels_sha256": array_digest(labels)}
    buckets = model_buckets("fa", k, d)
    n_models = k * d
    shards = []

    def shard_logits(s, ids):  # the same synthetic scores for the predictions and the run-off pass
        logits = np.random.default_rng([1, s]).standard_normal((len(ids), n_test, N_CLASSES), dtype=np.float32)
        logits[:, np.arange(n_test), labels] += 2.3
        return logits

    for s, lo in enumerate(range(0, n_models, shard_size)):
        ids = list(range(lo, min(lo + shard_size, n_models)))
        shard = {"shard": s, "method": "fa", "k": k, "d": d, "n_buckets": k * d, "hash": "pixel_sum", "versions": 1,
                 "models": [{"model_id": i, "seeds": [i], "buckets": buckets[i].tolist(), "sample_ids": [i],
                             "subset_sha256": ""} for i in ids]}
        shards.append((s, ids, shard))
        write_bytes(root / f"shard_{s}.json", json_bytes(with_self_digest(shard)))
        record = {"shard": s, "learner": spec, "models": model_records(shard["models"]), "test": test,
                  "checkpoint_sha256": "synthetic"}
        table = predictions_table(ids, votes_from_logits(shard_logits(s, ids)))
        write_parquet(root / f"pred_{s}.parquet", table.replace_schema_metadata(
            {PROVENANCE_KEY: json.dumps(record, sort_keys=True)}), row_group_size=512 * len(ids))
    preds = [root / f"pred_{s}.parquet" for s, _, _ in shards]
    if roe:  # the run-off pass: which classes the finalists of all the votes beat in each model
        m1, m2 = run_finalists(preds, n_test, n_models, N_CLASSES)
        for s, ids, shard in shards:
            record = {"shard": s, "learner": spec, "models": model_records(shard["models"]), "test": test,
                      "checkpoint_sha256": "synthetic", "finalists_sha256": finalists_digest(m1, m2)}
            beats = finalist_beats(shard_logits(s, ids).transpose(1, 0, 2), m1, m2)
            write_parquet(root / f"runoff_{s}.parquet", runoff_table(ids, beats).replace_schema_metadata(
                {PROVENANCE_KEY: json.dumps(record, sort_keys=True)}), row_group_size=512 * len(ids))
    return preds, [root / f"shard_{s}.json" for s, _, _ in shards]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--k", type=int, default=1200)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--shard-size", type=int, default=1600)
    parser.add_argument("--roe", action="store_true", help="also write run-off files and certify FA+ROE")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    n_files = -(-args.k * args.d // args.shard_size)
    if len(list(args.workdir.glob("pred_*.parquet"))) == n_files and (args.workdir / "inputs.json").is_file() and \
            json.loads((args.workdir / "inputs.json").read_text()) == vars(args) | {"workdir": str(args.workdir)}:
        preds, shards = sorted(args.workdir.glob("pred_*.parquet")), sorted(args.workdir.glob("shard_*.json"))
        print("reusing the synthetic prediction shards in", args.workdir)
    else:
        preds, shards = write_inputs(args.workdir, args.k, args.d, args.n_test, args.shard_size, args.roe)
        (args.workdir / "inputs.json").write_text(json.dumps(vars(args) | {"workdir": str(args.workdir)}))
        print(f"wrote {len(preds)} synthetic prediction shards in {time.perf_counter() - start:.0f} s")
    methods = ["fa", "fa_roe"] if args.roe else ["fa"]
    cmd = [sys.executable, "-m", "pipeline", "certify", "--run", "memory", "--dataset", "synthetic",
           "--learner", "hog_nn", "--predictions", *map(str, preds), "--shards", *map(str, shards),
           *(["--runoff", *(str(p).replace("pred_", "runoff_") for p in preds)] if args.roe else []),
           "--test", str(args.workdir / "test.npz"), "--radii", "0", "100", "200", "--methods", *methods,
           "--certificates", str(args.workdir / "cert.parquet"), "--metrics", str(args.workdir / "m.json"),
           "--curve", str(args.workdir / "c.csv"), "--plot", str(args.workdir / "c.png")]
    start = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    result = {"k": args.k, "d": args.d, "models": args.k * args.d, "n_test": args.n_test, "methods": methods,
              "certify_seconds": round(seconds, 1), "peak_rss_mib": round(peak_mib)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
