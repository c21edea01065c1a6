"""Run-off files: ``work/<run>/runoff/shard_<s>.parquet``, written by the run-off pass of the predict stage, one per
shard, for runs with Run-Off Election.

What ROE needs of a model's scores once the round-1 finalists m1, m2 of every test sample are known (from every
model's vote): which classes each finalist strictly beats (certify/roe.py ``beats``). One row per (test sample,
model), ordered by test sample then model: ``test_id`` int32, ``model_id`` int32 and ``beats``, 2 * ceil(C / 8)
bytes: bit c of the first half (numpy.packbits order) is z[m1] > z[c], of the second half z[m2] > z[c]. That is
2C bits instead of C float32 scores: 1/16 of the scores' size. Row groups and page checksums as the predictions
files (pipeline/artifacts/predictions.py); the schema metadata holds the provenance record: the predictions
record's keys, and ``finalists_sha256`` (finalists_digest of the finalists the bits are for).
"""

import hashlib

import numpy as np

from ..certify.roe import finalists
from ..certify.votes import vote_counts
from ..resources import CERTIFY_CHUNK_MB, MB
from .predictions import gather_pairs, load_chunk, pair_columns, pairs_writer

RERUN = "delete it and run snakemake again (it redoes the shard's run-off pass)"


def finalists_digest(m1: np.ndarray, m2: np.ndarray) -> str:
    """SHA-256 over the finalists of every test sample, as int64 pairs (m1, m2) in test order."""
    return hashlib.sha256(np.ascontiguousarray(np.stack([m1, m2], axis=1), dtype="<i8").data).hexdigest()


def run_finalists(prediction_paths, n_test: int, n_models: int, n_classes: int):
    """Round-1 finalists (m1, m2) int64[n_test] of every test sample, from every shard's votes (read in chunks)."""
    step = max(1, CERTIFY_CHUNK_MB * MB // (2 * n_models))
    parts = [finalists(vote_counts(load_chunk(prediction_paths, start, min(start + step, n_test), n_models),
                                   n_classes)) for start in range(0, n_test, step)]
    return tuple(np.concatenate(p) for p in zip(*parts)) if parts else (np.zeros(0, np.int64),) * 2


def pack_beats(beats: np.ndarray) -> np.ndarray:
    """bool[..., 2, C] -> uint8[..., 2 * ceil(C / 8)]."""
    packed = np.packbits(beats, axis=-1)  # [..., 2, ceil(C / 8)]
    return packed.reshape(*packed.shape[:-2], -1)


def unpack_beats(packed: np.ndarray, n_classes: int) -> np.ndarray:
    """uint8[..., 2 * ceil(C / 8)] -> bool[..., 2, C]."""
    halves = packed.reshape(*packed.shape[:-1], 2, -1)
    return np.unpackbits(halves, axis=-1, count=n_classes).view(bool)  # 0 or 1: a view, not a copy


def runoff_table(model_ids, beats: np.ndarray, first_test: int = 0):
    """The rows of test samples first_test, ... from beats bool[n_test, n_models, 2, C]."""
    import pyarrow as pa

    n_test, n_models = beats.shape[:2]
    packed = pack_beats(beats).reshape(n_test * n_models, -1)
    column = pa.FixedSizeBinaryArray.from_buffers(pa.binary(packed.shape[1]), len(packed),
                                                  [None, pa.py_buffer(np.ascontiguousarray(packed).tobytes())])
    return pa.table({**pair_columns(model_ids, n_test, first_test), "beats": column})


def runoff_writer(path, record: dict, n_models: int):
    """Write a run-off file atomically: yields ``write(table)`` for runoff_table chunks in test order."""
    return pairs_writer(path, record, n_models)


def load_beats(runoff_paths, start: int, stop: int, n_models: int, n_classes: int) -> np.ndarray:
    """beats bool[stop - start, n_models, 2, C] of test samples start..stop-1 from every shard's run-off file."""
    width = 2 * -(-n_classes // 8)

    def values_of(column):
        chunk = column.combine_chunks()
        if chunk.type.byte_width != width:
            raise ValueError(f"beats of {chunk.type.byte_width} bytes, expected {width} for {n_classes} classes")
        data = np.frombuffer(chunk.buffers()[1], dtype=np.uint8, count=len(chunk) * width, offset=chunk.offset * width)
        return data.reshape(len(chunk), width)

    packed = gather_pairs(runoff_paths, start, stop, n_models, "beats", values_of, fix=RERUN)
    return unpack_beats(packed, n_classes)
