"""Predictions: ``work/<run>/predictions/shard_<s>.parquet``, written by the predict stage, one per shard.

A long table, one row per (test sample, model), ordered by test sample then model: ``test_id`` int32,
``model_id`` int32 and ``vote`` int16; row groups of ROW_GROUP_TESTS test samples (certify reads test
chunks), page checksums. The schema metadata (key PROVENANCE_KEY) holds the provenance record as JSON:
``shard``, ``learner`` (spec), ``models`` (model records), ``checkpoint_sha256`` and ``test`` (test-set
digests). What Run-Off Election needs beyond the votes is in the run-off files (pipeline/artifacts/runoff.py).
"""

import json
from contextlib import contextmanager

import numpy as np

from ..atomic import atomic_path
from ..errors import PipelineError
from ..resources import ROW_GROUP_TESTS

PROVENANCE_KEY = b"pipeline.provenance"
REPREDICT = "delete it and run snakemake again (it re-predicts the shard)"


def pair_columns(model_ids, n_test: int, first_test: int = 0) -> dict:
    """``test_id`` and ``model_id`` columns of the rows of test samples first_test, first_test + 1, ... (test
    sample, then model)."""
    import pyarrow as pa

    n_models = len(model_ids)
    return {"test_id": pa.array(np.repeat(np.arange(first_test, first_test + n_test, dtype=np.int32), n_models)),
            "model_id": pa.array(np.tile(np.asarray(model_ids, dtype=np.int32), n_test))}


def predictions_table(model_ids, votes: np.ndarray, first_test: int = 0):
    """The rows of test samples first_test, first_test + 1, ... from votes int[n_models, n_test]."""
    import pyarrow as pa

    return pa.table({**pair_columns(model_ids, votes.shape[1], first_test),
                     "vote": pa.array(np.ascontiguousarray(votes.T, dtype=np.int16).reshape(-1))})


def with_record(table, record: dict):
    """``table`` with the provenance ``record`` in its schema metadata."""
    return table.replace_schema_metadata({PROVENANCE_KEY: json.dumps(record, sort_keys=True)})


@contextmanager
def pairs_writer(path, record: dict, n_models: int):
    """Write a table of (test sample, model) rows atomically, chunk by chunk: yields ``write(table)``, tables of
    whole test samples in order; ``record`` goes into the schema metadata."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        writer = None

        def write(table):
            nonlocal writer
            table = with_record(table, record)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, write_page_checksum=True)
            writer.write_table(table, row_group_size=ROW_GROUP_TESTS * n_models)

        yield write
        if writer is None:
            raise PipelineError(f"{path}: no test samples to write; check test_limit in params.yaml")
        writer.close()


def predictions_writer(path, record: dict, n_models: int):
    """Write a predictions file atomically: yields ``write(table)`` for predictions_table chunks in test order."""
    return pairs_writer(path, record, n_models)


def read_record(path, fix=REPREDICT) -> dict:
    """The provenance record of a predictions (or run-off) file."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[PROVENANCE_KEY])
    except KeyError:
        raise PipelineError(f"{path}: records no provenance (written by an older version); {fix}") from None
    except Exception as err:
        raise PipelineError(f"{path}: unreadable ({type(err).__name__}); {fix}") from None


def gather_pairs(paths, start: int, stop: int, n_models: int, column: str, values_of, fix=REPREDICT, model_ids=None):
    """``values_of(table[column])`` (one row per table row: array[rows, ...]) placed at [test - start, model] of an
    array [stop - start, n_models, ...], from the rows of test samples start..stop-1 of every file.
    ``model_ids``: the files hold these models (sorted ids) only; column j is then model_ids[j].

    Every (test sample, model) pair of the chunk must appear exactly once: all pairs are seen and
    the files hold exactly as many rows as there are pairs (so none appears twice).
    """
    import pyarrow.parquet as pq

    n = stop - start
    seen = np.zeros((n, n_models), dtype=bool)
    rows = 0
    out = None
    for path in paths:
        try:
            table = pq.read_table(path, columns=["test_id", "model_id", column],
                                  filters=[("test_id", ">=", start), ("test_id", "<", stop)],
                                  page_checksum_verification=True)
            values = values_of(table[column])
        except Exception as err:
            raise PipelineError(f"{path}: unreadable ({type(err).__name__}: {' '.join(str(err).split())}); "
                                f"{fix}") from None
        t = table["test_id"].to_numpy().astype(np.int64) - start
        m = table["model_id"].to_numpy().astype(np.int64)
        if model_ids is not None:
            ids = np.asarray(model_ids, dtype=np.int64)
            j = np.minimum(np.searchsorted(ids, m), len(ids) - 1)
            m = np.where(ids[j] == m, j, -1)
        if m.size and (m.min() < 0 or m.max() >= n_models) or t.size and (t.min() < 0 or t.max() >= n):
            raise PipelineError(f"{path}: model or test ids out of range (the run has {n_models} models); {fix}")
        if out is None:
            out = np.zeros((n, n_models, *values.shape[1:]), dtype=values.dtype)
        out[t, m] = values
        seen[t, m] = True
        rows += len(t)
    if rows != n * n_models or not seen.all():
        raise PipelineError(f"{column} of test samples {start}..{stop - 1}: {rows} rows for {int(seen.sum())} of "
                            f"{n * n_models} (test sample, model) pairs, each expected exactly once; delete the run's "
                            f"files of this kind and run snakemake again")
    return out


def load_chunk(prediction_paths, start: int, stop: int, n_models: int, model_ids=None) -> np.ndarray:
    """votes int16[stop - start, n_models] (column j = model j, or model_ids[j]) of test samples start..stop-1."""
    return gather_pairs(prediction_paths, start, stop, n_models, "vote",
                        lambda column: column.to_numpy().astype(np.int16), model_ids=model_ids)
