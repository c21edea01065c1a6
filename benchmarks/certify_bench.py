"""Benchmark: vectorised certificates against plain per-sample loops (benchmarks/reference_certify.py).

Synthetic MNIST-like ensembles: 10,000 test samples, 10 classes, every model votes for the label
with probability about 0.75 (logits: standard normal plus a boost on the label). Methods:
DPA and DPA+ROE with k = 1200; FA and FA+ROE with k = 1200, d = 16 (19,200 models).

The vectorised code runs on all 10,000 samples (in chunks of test samples, as the certify stage
does). The reference loops are far slower, so they run on the first few samples of the same data;
their radii must equal the vectorised ones there, and their time is scaled to 10,000 samples.

    python -m benchmarks.certify_bench [--n-test 10000] [--reference-samples 20] [--out FILE]
"""

import argparse
import json
import time

import numpy as np

from benchmarks import reference_certify as ref
from pipeline.certify import dpa, fa, roe
from pipeline.certify.buckets import bucket_feeds
from pipeline.partition import model_buckets

N_CLASSES = 10
BOOST = 2.3  # label boost giving about 75 % label votes


def synthetic(n_test, n_models, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, N_CLASSES, n_test)
    logits = rng.standard_normal((n_test, n_models, N_CLASSES), dtype=np.float32)
    logits[np.arange(n_test), :, labels] += BOOST
    votes = np.argmax(logits, axis=2).astype(np.int16)
    return votes, logits, labels


def chunks(n_test, n_models, chunk, seed):
    for i, start in enumerate(range(0, n_test, chunk)):
        yield synthetic(min(chunk, n_test - start), n_models, seed + i)


def run_vectorised(name, fn, n_test, n_models, chunk, seed):
    radius, seconds = [], 0.0
    for votes, logits, labels in chunks(n_test, n_models, chunk, seed):
        start = time.perf_counter()
        radius.append(fn(votes, logits, labels)[1])
        seconds += time.perf_counter() - start
    return np.concatenate(radius), seconds


def run_reference(fn, first_chunk, n_samples):
    """The loop on the first ``n_samples`` samples of the first chunk (the same data as the vectorised run)."""
    votes, logits, labels = (a[:n_samples] for a in first_chunk)
    start = time.perf_counter()
    radius = [fn(votes[i].tolist(), logits[i].tolist(), int(labels[i]))[1] for i in range(n_samples)]
    return np.array(radius), time.perf_counter() - start, float((votes == labels[:, None]).mean())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n-test", type=int, default=10_000)
    parser.add_argument("--reference-samples", type=int, default=20, help="samples the FA reference loops run on")
    parser.add_argument("--out", help="also write the results as JSON here")
    args = parser.parse_args(argv)

    k, d = 1200, 16
    feed = bucket_feeds(model_buckets("fa", k, d))
    feed_list = feed.tolist()
    cases = [
        ("DPA", k, lambda v, z, y: dpa.certify(v, y, N_CLASSES), lambda v, z, y: ref.dpa(v, y, N_CLASSES), 1000),
        ("DPA+ROE", k, lambda v, z, y: roe.certify_dpa(v, roe.beats_from_logits(v, z, N_CLASSES), y, N_CLASSES),
         lambda v, z, y: ref.dpa_roe(v, z, y, N_CLASSES), 200),
        ("FA", k * d, lambda v, z, y: fa.certify(v, y, N_CLASSES, feed),
         lambda v, z, y: ref.fa(v, y, N_CLASSES, feed_list), args.reference_samples),
        ("FA+ROE", k * d, lambda v, z, y: roe.certify_fa(v, roe.beats_from_logits(v, z, N_CLASSES), y, N_CLASSES, feed),
         lambda v, z, y: ref.fa_roe(v, z, y, N_CLASSES, feed_list), max(3, args.reference_samples // 5)),
    ]
    results = []
    print(f"{'method':8} {'models':>7} {'vectorised s':>13} {'loop s (scaled)':>16} {'speed-up':>9}  checked  label votes")
    for name, n_models, fast, slow, n_ref in cases:
        chunk = max(1, 200_000_000 // (n_models * N_CLASSES * 4))
        radius, seconds = run_vectorised(name, fast, args.n_test, n_models, chunk, seed=7)
        n_ref = min(n_ref, chunk, args.n_test)
        first = next(chunks(args.n_test, n_models, chunk, seed=7))
        ref_radius, ref_seconds, label_votes = run_reference(slow, first, n_ref)
        del first
        assert np.array_equal(ref_radius, radius[:n_ref]), f"{name}: vectorised and loop radii differ"
        scaled = ref_seconds * args.n_test / n_ref
        results.append({"method": name, "models": n_models, "n_test": args.n_test, "vectorised_s": round(seconds, 3),
                        "loop_s_scaled": round(scaled, 1), "loop_samples": n_ref, "speedup": round(scaled / seconds, 1),
                        "label_vote_fraction": round(label_votes, 3),
                        "median_radius": float(np.median(radius))})
        print(f"{name:8} {n_models:7d} {seconds:13.2f} {scaled:16.1f} {scaled / seconds:8.0f}x  {n_ref:5d}    "
              f"{label_votes:.3f}")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
