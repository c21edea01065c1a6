"""Shared nearest-neighbour distances of a run, in ``work/<run>/distances/`` (docs/design.md#shared-distances).

- ``test_features.npz``: ``features`` float32[n_test, D] (exact integers: the learner's quantised features of
  the test samples), ``scale`` and ``record`` (JSON): ``learner`` (spec), ``test`` (test-set digests),
  ``features_sha256`` (SHA-256 of ``features``, checked on read), ``scale``. Written by the test_features rule,
  once per run; its bytes depend on the content only (fixed zip timestamps).
- ``buckets_<g>.parquet``: for the buckets of bucket-group file g, one row per test sample: ``test_id`` int32
  and ``min_sq``, fixed-size binary: little-endian float32[n_b, C] (the smallest squared feature distance from
  the test sample to the bucket's (augmented) training samples of each class; inf where it has none; binary
  rather than a list type, which Parquet decodes value by value, four times slower); row groups
  of ``row_group_tests`` test samples; page checksums. Schema metadata (PROVENANCE_KEY): ``group``,
  ``buckets`` ([{bucket, subset_sha256}]), ``learner``, ``test``, ``test_features_sha256``, ``scale``,
  ``n_classes``, ``row_group_tests``. Written by the bucket_scores rule.
"""

import json
import zipfile

import numpy as np

from .. import provenance
from ..atomic import atomic_path
from ..errors import PipelineError
from ..npz import write_npz
from .partition_files import check_bucket_unions, read_bucket_group
from .splits import array_digest

PROVENANCE_KEY = b"pipeline.provenance"
REDO = "delete it and run snakemake again (it recomputes the distances)"
ROW_GROUP_BYTES = 2**26  # bytes of minima of all a run's buckets per row group (bounds certify's memory)


def save_test_features(path, features: np.ndarray, scale: float, learner: dict, test: dict) -> dict:
    """Write test_features.npz; returns its record."""
    record = {"learner": learner, "test": test, "features_sha256": array_digest(features), "scale": float(scale)}
    write_npz(path, {"features": features, "scale": np.float64(scale), "record": np.asarray(json.dumps(record, sort_keys=True))})
    return record


def load_test_features(path):
    """(features float32[n_test, D], record) of test_features.npz, checked against its stored digest."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            features, record = npz["features"], json.loads(str(npz["record"]))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: unreadable test features ({type(err).__name__}); {REDO}") from None
    if features.dtype != np.float32 or features.ndim != 2 or array_digest(features) != record.get("features_sha256"):
        raise PipelineError(f"{path}: damaged test features (they do not match their SHA-256); {REDO}")
    return features, record


def row_group_tests(n_buckets: int, n_classes: int) -> int:
    """Test samples per row group of a run's bucket-distances files: about ROW_GROUP_BYTES of minima of all its
    ``n_buckets`` buckets (certify reads one row group of every file at once)."""
    return max(1, min(4096, ROW_GROUP_BYTES // (4 * max(1, n_buckets * n_classes))))


def write_bucket_minima(path, record: dict, chunks) -> None:
    """Write buckets_<g>.parquet atomically from ``chunks``: an iterable of (first_test, minima float32[n_tests,
    n_b, C]) in test order, one row group each (``record['row_group_tests']`` tests, the last fewer)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    row_bytes = 4 * len(record["buckets"]) * record["n_classes"]
    schema = pa.schema([("test_id", pa.int32()), ("min_sq", pa.binary(row_bytes))],
                       metadata={PROVENANCE_KEY: json.dumps(record, sort_keys=True)})
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, write_page_checksum=True, use_dictionary=False,
                                                    compression="none") as writer:
        for first_test, minima in chunks:
            n_tests = minima.shape[0]
            rows = np.ascontiguousarray(minima, dtype="<f4").tobytes()  # [n_tests, n_b, C] row by row
            table = pa.table({"test_id": pa.array(np.arange(first_test, first_test + n_tests, dtype=np.int32)),
                              "min_sq": pa.FixedSizeBinaryArray.from_buffers(schema.field("min_sq").type, n_tests,
                                                                             [None, pa.py_buffer(rows)])},
                             schema=schema)
            writer.write_table(table, row_group_size=n_tests)


def read_bucket_record(path) -> dict:
    """The provenance record of a bucket-distances file."""
    import pyarrow.parquet as pq

    try:
        return json.loads((pq.read_schema(path).metadata or {})[PROVENANCE_KEY])
    except Exception as err:
        raise PipelineError(f"{path}: unreadable bucket distances ({type(err).__name__}); {REDO}") from None


def open_bucket_minima(path):
    """The Parquet file of a bucket-distances file, read with page checksums verified."""
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path, page_checksum_verification=True)
    except Exception as err:
        raise PipelineError(f"{path}: unreadable bucket distances ({type(err).__name__}); {REDO}") from None


def read_row_group(parquet_file, path, index: int, first_test: int, n_buckets: int, n_classes: int) -> np.ndarray:
    """Row group ``index`` of a bucket-distances file: minima float32[n_tests, n_b, C], checked to hold the test
    samples from ``first_test`` on."""
    try:
        table = parquet_file.read_row_group(index)
        test_ids = table["test_id"].to_numpy()
        row_bytes = 4 * n_buckets * n_classes
        parts = [np.frombuffer(chunk.buffers()[1], "<f4", count=len(chunk) * row_bytes // 4,
                               offset=chunk.offset * row_bytes) for chunk in table["min_sq"].chunks if len(chunk)]
        values = parts[0] if len(parts) == 1 else np.concatenate(parts or [np.zeros(0, "<f4")])
    except Exception as err:
        raise PipelineError(f"{path}: unreadable bucket distances ({type(err).__name__}: "
                            f"{' '.join(str(err).split())}); {REDO}") from None
    n_tests = len(test_ids)
    if not np.array_equal(test_ids, np.arange(first_test, first_test + n_tests)) or values.size != n_tests * n_buckets * n_classes:
        raise PipelineError(f"{path}: row group {index} does not hold the expected test samples; {REDO}")
    return values.reshape(n_tests, n_buckets, n_classes)


def read_bucket_minima(path) -> np.ndarray:
    """Every row group of a bucket-distances file: minima float32[n_test, n_b, C]."""
    record, parquet_file = read_bucket_record(path), open_bucket_minima(path)
    step, n_b = record["row_group_tests"], len(record["buckets"])
    parts = [read_row_group(parquet_file, path, i, i * step, n_b, record["n_classes"])
             for i in range(parquet_file.metadata.num_row_groups)]
    return np.concatenate(parts) if parts else np.zeros((0, n_b, record["n_classes"]), np.float32)


def checked_distances(distance_paths, group_paths, models, model_buckets, spec: dict, test: dict) -> dict:
    """Refuse bucket distances that do not come from the current bucket-group files, learner spec and test set,
    and shard files whose models are not the unions of their buckets.

    Returns the run's provenance: test-set digests, partition digest, learner spec and the digest of the
    distance files' records (each names the buckets' digests, the learner, the test set and its features).
    """
    if len(distance_paths) != len(group_paths):
        raise PipelineError(f"{len(distance_paths)} distance files for {len(group_paths)} bucket-group files; give one "
                            "per group, in the same order")
    records, groups = [], []
    for path, group_path in zip(distance_paths, group_paths):
        fix = f"delete {path} and run snakemake again (it recomputes the distances)"
        group, record = read_bucket_group(group_path), read_bucket_record(path)
        expected = [{"bucket": b["bucket"], "subset_sha256": b["subset_sha256"]} for b in group["buckets"]]
        if record.get("buckets") != expected:
            raise PipelineError(f"{path}: stale, its buckets' samples are not those of {group_path}; {fix}")
        provenance.check_learner(path, record["learner"], spec, fix)
        if record["test"] != test:
            raise PipelineError(f"{path}: stale, computed on another test set ({record['test']['n_test']} samples, "
                                f"expected {test['n_test']}); {fix}")
        for key in ("scale", "row_group_tests", "n_classes", "test_features_sha256"):
            if records and record[key] != records[0][key]:
                raise PipelineError(f"{path}: computed with another {key} than {distance_paths[0]}; {fix}")
        records.append(record)
        groups.append(group)
    check_bucket_unions(groups, models, model_buckets)
    return {"test": test, "partition_sha256": provenance.partition_digest(models), "learner": spec,
            "distances_sha256": provenance.canonical_digest(records)}
