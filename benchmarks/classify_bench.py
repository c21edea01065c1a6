"""Using the default ensemble (docs/using.md#speed), side by side in one run: load time (run folder, bundle),
latency of one image through the API and over HTTP, and the per-image cost of batches.

Needs the default run certified in this checkout (`snakemake --cores all`). Every timed classification is also
checked: the certificates of the test images classified with their labels must equal certificates.parquet.
Each load is measured in its own process (wall time and peak RSS); writes benchmarks/classify_results.json.

    python -m benchmarks.classify_bench [--run mnist_dpa_k1200] [--repeats 50]
"""

import argparse
import io
import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load_in_subprocess(target: str) -> dict:
    """Wall seconds and peak RSS (MB) of load_ensemble(target) with warm-up, in a fresh process."""
    code = ("import json, resource, time; t = time.perf_counter(); from pipeline.use import load_ensemble; "
            f"e = load_ensemble({target!r}); s = time.perf_counter() - t; "
            "print(json.dumps({'seconds': s, 'peak_rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,"
            " 'models': e.n_models}))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def summary(seconds: list) -> dict:
    ordered = sorted(seconds)
    return {"median_ms": 1000 * statistics.median(ordered), "p95_ms": 1000 * ordered[int(0.95 * (len(ordered) - 1))],
            "max_ms": 1000 * ordered[-1], "n": len(ordered)}


def http_latency(bundle: Path, images, repeats: int) -> tuple[dict, float]:
    """Round-trip latency of POST /classify with one PNG, and the server's start-up seconds (load included)."""
    import requests
    from PIL import Image

    start = time.perf_counter()
    server = subprocess.Popen([sys.executable, "-m", "pipeline", "serve", "--run", str(bundle), "--port", "0"],
                              cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        url = None
        for line in server.stderr:
            match = re.search(r"on (http://127\.0\.0\.1:\d+)", line)
            if match:
                url = match.group(1)
                break
        if url is None:
            raise SystemExit("the server did not start")
        started = time.perf_counter() - start
        times = []
        for i in range(repeats):
            png = io.BytesIO()
            Image.fromarray(images[i]).save(png, format="PNG")
            t = time.perf_counter()
            answer = requests.post(f"{url}/classify", data=png.getvalue(), timeout=60)
            times.append(time.perf_counter() - t)
            answer.raise_for_status()
        return summary(times), started
    finally:
        server.terminate()
        server.wait(timeout=60)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", default="mnist_dpa_k1200")
    ap.add_argument("--repeats", type=int, default=50)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "classify_results.json"))
    args = ap.parse_args(argv)
    os.chdir(REPO)
    sys.path.insert(0, str(REPO))
    from pipeline.artifacts.certificates import read_certificates
    from pipeline.artifacts.splits import load_split
    from pipeline.use import load_ensemble
    from pipeline.use.bundle import export_bundle

    run_dir = REPO / "work" / args.run
    if not (run_dir / "certificates.parquet").is_file():
        raise SystemExit(f"{run_dir}: not certified; run `snakemake --cores all` first")
    results = {"machine": {"cpus": os.cpu_count(), "platform": platform.platform()}, "run": args.run}
    results["load_run_folder"] = load_in_subprocess(str(run_dir.relative_to(REPO)))
    with tempfile.TemporaryDirectory() as tmp:
        bundle = Path(tmp) / "bundle.zip"
        t = time.perf_counter()
        exported = export_bundle(args.run, bundle)
        results["export"] = {"seconds": time.perf_counter() - t, "bytes": exported["bytes"]}
        results["load_bundle"] = load_in_subprocess(str(bundle))

        ensemble = load_ensemble(run_dir)
        table, _ = read_certificates(run_dir / "certificates.parquet")
        images, labels, _ = load_split(REPO / "data" / "prepared" / ensemble.info["dataset"] / "test.npz")
        single = []
        for i in range(args.repeats):
            t = time.perf_counter()
            row = ensemble.certify(images[i:i + 1], labels[i:i + 1])
            single.append(time.perf_counter() - t)
            for column in row.columns:
                if column in table.columns and row[column][0] != table[column][i]:
                    raise SystemExit(f"test image {i}: {column} {row[column][0]} differs from certificates.parquet")
        results["api_one_image"] = summary(single)
        batches = {}
        for size in (10, 100, 1000):
            t = time.perf_counter()
            out = ensemble.certify(images[:size], labels[:size])
            seconds = time.perf_counter() - t
            assert (out["prediction"].to_numpy() == table["prediction"].to_numpy()[:size]).all()
            batches[str(size)] = {"seconds": seconds, "ms_per_image": 1000 * seconds / size}
        results["api_batches"] = batches
        results["http_one_image"], results["http_startup_seconds"] = http_latency(bundle, images, args.repeats)
    results["ratios"] = {
        "http_over_api_median": results["http_one_image"]["median_ms"] / results["api_one_image"]["median_ms"],
        "one_image_over_batch_1000_per_image": results["api_one_image"]["median_ms"]
        / batches["1000"]["ms_per_image"],
    }
    results["peak_rss_mb_this_process"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    Path(args.out).write_text(json.dumps(results, indent=1) + "\n")
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
