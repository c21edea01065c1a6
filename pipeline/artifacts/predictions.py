"""Predictions: ``work/<run>/predictions/shard_<s>.parquet``, written by the predict stage, one per shard.

A long table, one row per (test sample, model), ordered by test sample then model: ``test_id`` int32,
``model_id`` int32, ``vote`` int16 and, when Run-Off Election is asked for, ``logits`` float32[C]; row
groups of ROW_GROUP_TESTS test samples (certify reads test chunks), page checksums. The schema
metadata (key PROVENANCE_KEY) holds the provenance record as JSON: ``shard``, ``learner`` (spec),
``models`` (model records), ``checkpoint_sha256``, ``logits`` (bool) and ``test`` (test-set digests).
"""

import json
from contextlib import contextmanager

import numpy as np

from ..atomic import atomic_path
from ..certify.votes import votes_from_logits
from ..errors import PipelineError
from ..resources import ROW_GROUP_TESTS

PROVENANCE_KEY = b"pipeline.provenance"
REPREDICT = "delete it and run snakemake again (it re-predicts the shard)"


def predictions_table(model_ids, logits: np.ndarray, with_logits: bool, first_test: int = 0):
    """The rows of test samples first_test, first_test + 1, ... from logits float32[n_models, n_test, C]."""
    import pyarrow as pa

    n_models, n_test, n_classes = logits.shape
    by_test = np.ascontiguousarray(logits.transpose(1, 0, 2))  # [n_test, n_models, C]
    columns = {
        "test_id": pa.array(np.repeat(np.arange(first_test, first_test + n_test, dtype=np.int32), n_models)),
        "model_id": pa.array(np.tile(np.asarray(model_ids, dtype=np.int32), n_test)),
        "vote": pa.array(votes_from_logits(by_test).reshape(-1)),
    }
    if with_logits:
        columns["logits"] = pa.FixedSizeListArray.from_arrays(pa.array(by_test.reshape(-1)), n_classes)
    return pa.table(columns)


def with_record(table, record: dict):
    """``table`` with the provenance ``record`` in its schema metadata."""
    return table.replace_schema_metadata({PROVENANCE_KEY: json.dumps(record, sort_keys=True)})


@contextmanager
def predictions_writer(path, record: dict, n_models: int):
    """Write a predictions file atomically, chunk by chunk: yields ``write(model_ids, logits, first_test)``."""
    import pyarrow.parquet as pq

    with atomic_path(path) as tmp:
        writer = None

        def write(model_ids, logits, with_logits, first_test):
            nonlocal writer
            table = with_record(predictions_table(model_ids, logits, with_logits, first_test), record)
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, write_page_checksum=True)
            writer.write_table(table, row_group_size=ROW_GROUP_TESTS * n_models)

        yield write
        if writer is None:
            raise PipelineError(f"{path}: no test samples to write; check test_limit in params.yaml")
        writer.close()


def read_record(path) -> dict:
    """The provenance record of a predictions file."""
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
        return json.loads(metadata[PROVENANCE_KEY])
    except KeyError:
        raise PipelineError(f"{path}: records no provenance (written by an older version); {REPREDICT}") from None
    except Exception as err:
        raise PipelineError(f"{path}: unreadable predictions ({type(err).__name__}); {REPREDICT}") from None


def load_chunk(prediction_paths, start: int, stop: int, n_models: int, with_logits: bool):
    """votes int16[stop - start, n_models] (column j = model j) and, if asked, logits float32[..., C].

    Every (test sample, model) pair of the chunk must appear exactly once: all pairs are seen and
    the files hold exactly as many rows as there are pairs (so none appears twice).
    """
    import pyarrow.parquet as pq

    n = stop - start
    votes = np.full((n, n_models), -1, dtype=np.int16)
    seen = np.zeros((n, n_models), dtype=bool)
    rows = 0
    logits = None
    columns = ["test_id", "model_id", "vote"] + (["logits"] if with_logits else [])
    for path in prediction_paths:
        try:
            table = pq.read_table(path, columns=columns, filters=[("test_id", ">=", start), ("test_id", "<", stop)],
                                  page_checksum_verification=True)
        except Exception as err:
            raise PipelineError(f"{path}: unreadable predictions ({type(err).__name__}: {' '.join(str(err).split())}); "
                                f"{REPREDICT}") from None
        t = table["test_id"].to_numpy().astype(np.int64) - start
        m = table["model_id"].to_numpy().astype(np.int64)
        if m.size and (m.min() < 0 or m.max() >= n_models):
            raise PipelineError(f"{path}: model ids out of range (the run has {n_models} models); {REPREDICT}")
        votes[t, m] = table["vote"].to_numpy()
        seen[t, m] = True
        rows += len(t)
        if with_logits:
            flat = table["logits"].combine_chunks()
            values = flat.flatten().to_numpy().reshape(len(t), -1)
            if logits is None:
                logits = np.empty((n, n_models, values.shape[1]), dtype=np.float32)
            logits[t, m] = values
    if rows != n * n_models or not seen.all():
        raise PipelineError(f"predictions of test samples {start}..{stop - 1} hold {rows} rows for {int(seen.sum())} of "
                            f"{n * n_models} (test sample, model) pairs, each expected exactly once; re-run predict for "
                            "every shard of this run")
    return votes, logits
