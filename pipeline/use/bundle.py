"""Ensemble bundles: one file holding everything a certified ensemble needs to classify (docs/using.md#bundles).

A bundle is a zip file with fixed member timestamps (equal content gives equal bytes):

| member | content |
|---|---|
| ``ensemble.json`` | format and version, run name, dataset, methods, class names, image shape and resizing, the run's settings, the prepared training split's digests, the certificates' provenance record (learner spec, partition digest, test-set digests, checkpoints or distances digest) and how scores are made (``distances`` or ``checkpoints``) |
| ``metrics.json`` | the run's metrics (certified accuracy on its test set), when the run has them |
| ``layout/shard_<s>.json`` | the run's shard files, byte for byte (models, buckets, sample ids, subset digests) |
| ``layout/buckets_<g>.json`` | nearest-neighbour runs: the bucket-group files |
| ``training.npz`` | nearest-neighbour runs: every bucket's samples (``images``, ``labels``, ``sample_ids``), read without pickles |
| ``models/shard_<s>.pt`` | trained learners: the checkpoints, byte for byte, read with ``torch.load(weights_only=True)`` |
| ``manifest.json`` | per member its SHA-256 and size |

Reading checks every member against the manifest (a modified, missing or added member is refused), then
load_ensemble checks the parts against the certificates' provenance as for a run folder. The bundle's digest is
the SHA-256 of ``manifest.json``: pin it (``--sha256``) to also refuse a bundle rewritten with a new manifest.
"""

import hashlib
import io
import json
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path, json_bytes
from ..errors import PipelineError
from .ensemble import FORMAT, FORMAT_VERSION, file_index

MANIFEST = "manifest.json"
STAMP = (1980, 1, 1, 0, 0, 0)
REEXPORT = "export it again from the run (python -m pipeline export --run <run> FILE)"


def is_bundle(path) -> bool:
    """Whether ``path`` is a file (a bundle, or something refused as one), not a run folder or run name."""
    return Path(path).is_file()


def npz_bytes(arrays: dict) -> bytes:
    """An uncompressed npz of ``arrays`` (no pickles, fixed timestamps) as bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            with archive.open(zipfile.ZipInfo(f"{name}.npy", date_time=STAMP), "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def members(parts: dict):
    """(member name, bytes or a function returning them) of a bundle, manifest excluded, in order."""
    yield "ensemble.json", json_bytes(parts["ensemble"])
    if parts.get("metrics") is not None:
        yield "metrics.json", json_bytes(parts["metrics"])
    for name, data in parts["shard_files"].items():
        yield f"layout/{name}", data
    for name, data in parts.get("group_files", {}).items():
        yield f"layout/{name}", data
    if parts.get("training") is not None:
        yield "training.npz", lambda: npz_bytes(parts["training"])
    for name, data in parts.get("checkpoint_files", {}).items():
        yield f"models/{name}", data


def write_bundle(parts: dict, out) -> str:
    """Write the bundle of ``parts`` (see ensemble.run_parts) to ``out`` atomically; returns its digest."""
    files = {}
    with atomic_path(out) as tmp, zipfile.ZipFile(tmp, "w") as archive:
        for name, data in members(parts):
            data = data() if callable(data) else data
            files[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
            compress = zipfile.ZIP_STORED if name.endswith(".pt") else zipfile.ZIP_DEFLATED
            archive.writestr(zipfile.ZipInfo(name, date_time=STAMP), data, compress_type=compress)
        manifest = json_bytes({"format": FORMAT, "format_version": FORMAT_VERSION, "files": files})
        archive.writestr(zipfile.ZipInfo(MANIFEST, date_time=STAMP), manifest, compress_type=zipfile.ZIP_DEFLATED)
    return hashlib.sha256(manifest).hexdigest()


def read_bundle(path, expect_sha256=None):
    """(parts, bundle digest) of the bundle at ``path``, every member checked against the manifest; a PipelineError
    naming the problem when it is not a bundle, is damaged or tampered with, or (``expect_sha256``) has another
    digest."""
    try:
        archive = zipfile.ZipFile(path)
    except (OSError, zipfile.BadZipFile) as err:
        raise PipelineError(f"{path}: not an ensemble bundle ({type(err).__name__}: {err}); give a file written by "
                            "python -m pipeline export, a run folder (work/<run>) or a run name") from None
    with archive:
        try:
            manifest_bytes = archive.read(MANIFEST)
            manifest = json.loads(manifest_bytes)
            files = manifest["files"]
        except (KeyError, ValueError, TypeError, OSError, zipfile.BadZipFile) as err:
            raise PipelineError(f"{path}: not an ensemble bundle (no readable {MANIFEST}: {err}); {REEXPORT}") from None
        digest = hashlib.sha256(manifest_bytes).hexdigest()
        if expect_sha256 is not None and digest != expect_sha256.lower():
            raise PipelineError(f"{path}: bundle digest {digest}, expected {expect_sha256}: it is not the bundle you "
                                "pinned (modified or another export)")
        if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
            raise PipelineError(f"{path}: bundle format {manifest.get('format')!r} version "
                                f"{manifest.get('format_version')!r}; this pipeline reads {FORMAT!r} version "
                                f"{FORMAT_VERSION}: {REEXPORT} with this version")
        names = [n for n in archive.namelist() if n != MANIFEST]
        extra, missing = sorted(set(names) - set(files)), sorted(set(files) - set(names))
        if extra or missing or len(names) != len(set(names)):
            what = (f"members not in its manifest: {', '.join(extra)}" if extra else
                    f"members of its manifest missing: {', '.join(missing)}" if missing else "duplicate members")
            raise PipelineError(f"{path}: tampered with or damaged ({what}); {REEXPORT}")

        def read(name: str) -> bytes:
            try:
                data = archive.read(name)
            except (OSError, zipfile.BadZipFile, EOFError) as err:  # e.g. a CRC error
                raise PipelineError(f"{path}: member {name} is damaged ({err}); {REEXPORT}") from None
            if hashlib.sha256(data).hexdigest() != files[name]["sha256"]:
                raise PipelineError(f"{path}: member {name} does not match the SHA-256 in the bundle's manifest: the "
                                    f"bundle was modified or damaged; {REEXPORT}")
            return data

        try:
            parts = {"ensemble": json.loads(read("ensemble.json")), "where": str(path),
                     "metrics": json.loads(read("metrics.json")) if "metrics.json" in files else None,
                     "shard_files": _layout(files, "shard_", read), "group_files": _layout(files, "buckets_", read)}
        except ValueError as err:
            raise PipelineError(f"{path}: unreadable JSON member ({err}); {REEXPORT}") from None
        if parts["ensemble"].get("scores") == "distances":
            parts["training"] = _training(read("training.npz"), path)
        else:
            parts["checkpoint_files"] = {name.removeprefix("models/"): read(name) for name in
                                         sorted((n for n in files if n.startswith("models/")), key=file_index)}
    return parts, digest


def _layout(files: dict, prefix: str, read) -> dict:
    names = sorted((n for n in files if n.startswith(f"layout/{prefix}")), key=file_index)
    return {n.removeprefix("layout/"): read(n) for n in names}


def _training(data: bytes, path) -> dict:
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            return {key: npz[key] for key in ("images", "labels", "sample_ids")}
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as err:
        raise PipelineError(f"{path}: unreadable training.npz ({err}); {REEXPORT}") from None


def export_bundle(run, out, config=None) -> dict:
    """Write the bundle of a certified run (a run name of ``config`` or a run folder) to ``out``, after checking its
    parts as load_ensemble does; returns {run, models, methods, bytes, sha256}."""
    from .ensemble import checked_parts, run_parts

    if Path(out).is_dir():
        raise PipelineError(f"{out}: a folder; give the bundle's file name, e.g. {Path(out) / 'ensemble.zip'}")
    parts = run_parts(run, config)
    checked = checked_parts(parts, keep_checkpoints=False)
    digest = write_bundle(parts, out)
    return {"run": parts["ensemble"]["run"], "models": checked["info"]["n_models"],
            "methods": parts["ensemble"]["methods"], "bytes": Path(out).stat().st_size, "sha256": digest}
