"""Provenance: what each artifact was computed from, and the checks that refuse stale inputs.

Every checkpoint and predictions file records, per base model, the digest of the training subset
it was trained on (``subset_sha256`` from the shard file) and its seeds, and for the whole file the
learner spec (name, resolved parameters, digest of the learner's code). Predict and certify compare
these records with the current shard files and params.yaml and refuse anything that does not match,
so a result can never mix stale and fresh parts, whatever the timestamps say.
"""

import hashlib
import json

from .errors import PipelineError


def canonical_digest(obj) -> str:
    """SHA-256 of the canonical JSON of ``obj`` (sorted keys, no whitespace)."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def content_digest(obj) -> str:
    """SHA-256 over a checkpoint-like object: nested dicts (sorted keys), lists, tensors (dtype, shape,
    bytes) and JSON values. Stored in a checkpoint and recomputed on loading, so damaged bytes that
    still unpickle are caught."""
    import torch

    h = hashlib.sha256()

    def feed(x):
        if isinstance(x, dict):
            h.update(b"{%d" % len(x))
            for key in sorted(x, key=str):
                feed(str(key))
                feed(x[key])
        elif isinstance(x, (list, tuple)):
            h.update(b"[%d" % len(x))
            for item in x:
                feed(item)
        elif isinstance(x, torch.Tensor):
            t = x.detach().cpu().contiguous()
            h.update(f"t{t.dtype}{list(t.shape)}".encode())
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
        else:
            h.update(b"j" + json.dumps(x).encode())

    feed(obj)
    return h.hexdigest()


def with_self_digest(record: dict) -> dict:
    """``record`` plus "sha256": the canonical digest of everything else in it (see check_self_digest)."""
    body = {k: v for k, v in record.items() if k != "sha256"}
    return {**body, "sha256": canonical_digest(body)}


def has_valid_self_digest(record: dict) -> bool:
    body = {k: v for k, v in record.items() if k != "sha256"}
    return record.get("sha256") == canonical_digest(body)


def code_digest(learner: str) -> str:
    """SHA-256 over the source files a learner's module runs (its import closure in the package: paths
    and bytes); empty for a learner outside the package's registry."""
    from .code_inputs import PACKAGE_DIR, closure
    from .learners.specs import SPECS

    h = hashlib.sha256()
    if learner in SPECS:
        module = SPECS[learner]["module"].split(".", 1)[1].replace(".", "/") + ".py"
        for rel in closure(module, dynamic=False):
            h.update(rel.encode() + b"\0" + (PACKAGE_DIR / rel).read_bytes() + b"\0")
    return h.hexdigest()


def learner_spec(name: str, params: dict) -> dict:
    """What defines a learner's models besides their data and seeds: name, resolved params, code digest.

    ``params``: the learner's resolved parameters (defaults included, see learners.resolve_params).
    """
    spec = {"name": name, "params": params, "code_sha256": code_digest(name)}
    return {**spec, "sha256": canonical_digest(spec)}


def partition_digest(models) -> str:
    """The digest of a run's partition: canonical digest of every model's model_id, buckets, seeds and
    subset_sha256 (``models``: shard-file models, by model id)."""
    return canonical_digest([{"model_id": m["model_id"], "buckets": m["buckets"], "seeds": m["seeds"],
                              "subset_sha256": m["subset_sha256"]} for m in models])


def model_records(models) -> list[dict]:
    """Per base model: model_id, seeds and the digest of its ordered training subset (from a shard file)."""
    return [{"model_id": int(m["model_id"]), "seeds": [int(s) for s in m["seeds"]],
             "subset_sha256": m["subset_sha256"]} for m in models]


def _first_difference(found: list[dict], expected: list[dict]) -> str:
    ids_found, ids_expected = [m["model_id"] for m in found], [m["model_id"] for m in expected]
    if ids_found != ids_expected:
        return f"it holds models {_span(ids_found)}, the shard file {_span(ids_expected)}"
    for f, e in zip(found, expected):
        if f["subset_sha256"] != e["subset_sha256"]:
            return f"model {e['model_id']} was trained on other samples than the shard file lists"
        if f["seeds"] != e["seeds"]:
            return f"model {e['model_id']} has seeds {f['seeds']}, the shard file {e['seeds']}"
    return "the records differ"


def _span(ids) -> str:
    return f"{ids[0]}..{ids[-1]}" if ids else "none"


def check_models(what: str, found: list[dict], shard_path, shard: dict, fix: str) -> None:
    """Refuse ``what`` (a checkpoint or predictions file) unless its model records match the shard file."""
    expected = model_records(shard["models"])
    if found != expected:
        raise PipelineError(f"{what}: stale, it does not belong to {shard_path} "
                            f"({_first_difference(found, expected)}); {fix}")


def check_learner(what: str, found: dict, expected: dict, fix: str) -> None:
    """Refuse ``what`` unless it was computed with the learner spec ``expected`` (name, params, code)."""
    if found.get("sha256") == expected["sha256"]:
        return
    if found.get("name") != expected["name"]:
        reason = f"learner {found.get('name')!r}, params.yaml asks for {expected['name']!r}"
    elif found.get("params") != expected["params"]:
        keys = sorted(k for k in set(found.get("params", {})) | set(expected["params"])
                      if found.get("params", {}).get(k) != expected["params"].get(k))
        reason = f"learner parameters differ ({', '.join(keys)})"
    else:
        reason = "the learner's code has changed since"
    raise PipelineError(f"{what}: stale, computed with other learner settings ({reason}); {fix}")
