"""A run's partition files, written by the partition stage in ``work/<run>/partition/``.

- ``assignment.parquet``: per training sample ``sample_id`` int64, ``bucket`` int64, ``digest`` (SHA-256
  of its label and pixels, hex).
- ``shard_<s>.json``: one shard's base models, each with ``model_id``, ``seeds`` (one per DPA*
  version), ``buckets``, content-ordered ``sample_ids`` and ``subset_sha256`` (digest of its ordered
  training set); the run's ``method``, ``k``, ``d``, ``n_buckets``, ``hash``, ``versions``; and
  ``sha256``, the digest of all of that (a damaged file is refused). Rewritten only when its content
  changes, so that only the shards an edit touches retrain.
- ``buckets_<g>.json``: group g of the run's ``n_buckets`` buckets (ids g*shard_size .. (g+1)*shard_size - 1), each with its
  ``bucket`` id, content-ordered ``sample_ids`` and ``subset_sha256``; and ``sha256`` (self-digest). What
  the shared nearest-neighbour distances are computed from (pipeline/stages/distances.py); rewritten
  only when its content changes, like the shard files.
- ``inserted.npz``: the run's inserted samples ``x``, ``y`` and ``first_id``, the id of ``x[0]``.
"""

import io
import json
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, json_bytes, write_bytes_if_changed
from ..errors import PipelineError
from ..partition import sample_digests, subset_digest
from ..provenance import has_valid_self_digest, with_self_digest

REWRITE = "delete it and run snakemake again (the partition step rewrites it)"


def assignment_bytes(assignment: dict) -> bytes:
    """assignment.parquet's bytes from columns sample_id int64[N], bucket int64[N], digest str[N]."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table({"sample_id": pa.array(assignment["sample_id"], pa.int64()),
                      "bucket": pa.array(assignment["bucket"], pa.int64()),
                      "digest": pa.array(assignment["digest"], pa.string())})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def write_partition(out_dir, assignment: dict, shards: list[dict], groups: list[dict]) -> list[int]:
    """Write assignment.parquet, shard_<s>.json and buckets_<g>.json (with their self-digest), each only if its
    bytes changed.

    Removes shard and bucket-group files beyond the current counts. Returns the indices of rewritten shards.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)  # the folder named by --out-dir
    write_bytes_if_changed(out_dir / "assignment.parquet", assignment_bytes(assignment))
    changed = [s["shard"] for s in shards
               if write_bytes_if_changed(out_dir / f"shard_{s['shard']}.json", json_bytes(with_self_digest(s)))]
    for g in groups:
        write_bytes_if_changed(out_dir / f"buckets_{g['group']}.json", json_bytes(with_self_digest(g)))
    for prefix, count in (("shard", len(shards)), ("buckets", len(groups))):
        for stale in out_dir.glob(f"{prefix}_*.json"):
            if int(stale.stem.split("_")[1]) >= count:
                stale.unlink()
    return changed


def read_self_digested(path, what: str) -> dict:
    """A partition JSON file (``what``: "shard file", "bucket-group file"), checked against the digest it
    carries of its own content."""
    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise PipelineError(f"{path}: unreadable {what} ({err}); {REWRITE}") from None
    return parse_self_digested(data, path, what)


def parse_self_digested(data: bytes, name, what: str, fix=REWRITE) -> dict:
    """A partition JSON file's content from its bytes (``name`` names it), checked against its self-digest."""
    try:
        content = json.loads(data)
    except ValueError as err:
        raise PipelineError(f"{name}: unreadable {what} ({err}); {fix}") from None
    if not isinstance(content, dict) or not has_valid_self_digest(content):
        raise PipelineError(f"{name}: damaged {what} (its content does not match its SHA-256); {fix}")
    return content


def read_shard(path) -> dict:
    """A shard file, checked against its self-digest."""
    return read_self_digested(path, "shard file")


def read_bucket_group(path) -> dict:
    """A bucket-group file, checked against its self-digest."""
    return read_self_digested(path, "bucket-group file")


def read_layout(shard_paths):
    """Every shard file of a run: (shards, models by id, model_buckets int64[n_models, d], sizes int64[n_models])."""
    return layout_of([read_shard(p) for p in shard_paths])


def read_layout_contents(shard_files: dict, where):
    """read_layout from the shard files' bytes ({file name: bytes}; ``where``: the folder or bundle they are in)."""
    return layout_of([parse_self_digested(data, f"{where}: {name}", "shard file") for name, data in shard_files.items()])


def layout_of(shards: list[dict]):
    """(shards, models by id, model_buckets int64[n_models, d], sizes int64[n_models]); the model ids must be
    0..n-1 exactly once."""
    models = sorted((m for s in shards for m in s["models"]), key=lambda m: m["model_id"])
    if [m["model_id"] for m in models] != list(range(len(models))):
        raise PipelineError("shard files do not hold model ids 0..n-1 exactly once; delete them and run snakemake "
                            "again (the partition step rewrites them)")
    buckets = np.array([m["buckets"] for m in models], dtype=np.int64)
    sizes = np.array([len(m["sample_ids"]) for m in models], dtype=np.int64)
    return shards, models, buckets, sizes


def bucket_group_samples(images, labels, group: dict, group_path):
    """The group's samples (bucket by bucket, content order): images, labels and bucket ids int64[n], each
    bucket checked against the digest the partition recorded."""
    xs, rows, bucket_of = [], [], []
    for b in group["buckets"]:
        ids = np.asarray(b["sample_ids"], dtype=np.int64)
        if ids.size and (ids.min() < 0 or ids.max() >= len(labels)):
            raise PipelineError(f"{group_path}: bucket {b['bucket']} names samples outside the training set; "
                                "re-run the partition step (snakemake --forcerun partition_<run>)")
        x = images[ids]  # read once (images may be a StoredImages: rows read from the prepared file)
        if subset_digest(sample_digests(x, labels[ids])) != b["subset_sha256"]:
            raise PipelineError(f"{group_path}: bucket {b['bucket']}'s samples differ from the prepared data; "
                                "re-run the partition step (snakemake --forcerun partition_<run>)")
        xs.append(x)
        rows.append(ids)
        bucket_of.append(np.full(len(ids), b["bucket"], dtype=np.int64))
    if not rows:
        return np.zeros((0, *images.shape[1:]), np.uint8), labels[:0], np.zeros(0, np.int64)
    return np.concatenate(xs), labels[np.concatenate(rows)], np.concatenate(bucket_of)


def check_bucket_unions(groups: list[dict], models: list[dict], model_buckets: np.ndarray) -> None:
    """Refuse bucket-group files that do not hold buckets 0..n-1 in order, and models whose training sets are not
    the unions of their buckets' (``models``: shard-file models by id; model_buckets int64[n_models, d])."""
    bucket_ids = [b["bucket"] for g in groups for b in g["buckets"]]
    fix = "delete the run's partition files and run snakemake again (the partition step rewrites them)"
    if bucket_ids != list(range(len(bucket_ids))) or model_buckets.size and model_buckets.max() >= len(bucket_ids):
        raise PipelineError(f"the bucket-group files do not hold buckets 0..n-1 exactly once, in order; {fix}")
    sizes = np.array([len(b["sample_ids"]) for g in groups for b in g["buckets"]], dtype=np.int64)
    members = {i: b["bucket"] for g in groups for b in g["buckets"] for i in b["sample_ids"]}
    for m, own in zip(models, model_buckets):  # a model's training set is the union of its buckets
        if len(m["sample_ids"]) != sizes[own].sum() or any(members.get(i, -1) not in own for i in m["sample_ids"]):
            raise PipelineError(f"model {m['model_id']}'s samples are not those of its buckets {own.tolist()}; {fix}")


def save_inserted(path, images, labels, first_id: int) -> None:
    """inserted.npz: the inserted samples x, y and ``first_id`` (the id of x[0])."""
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, x=images, y=labels, first_id=np.int64(first_id))


def load_inserted(path):
    """(x uint8[M, ...], y int64[M], first_id) from inserted.npz."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            return npz["x"], npz["y"], int(npz["first_id"])
    except (OSError, ValueError, KeyError) as err:
        raise PipelineError(f"{path}: unreadable ({err}); {REWRITE}") from None
