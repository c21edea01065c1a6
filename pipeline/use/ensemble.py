"""A certified ensemble in use: the models a run certified, loaded from the run's folder or from a bundle, and
new inputs classified with their certificates (docs/using.md).

``load_ensemble`` gathers a run's parts (its certificates' provenance, shard and bucket-group files, and the
models: checkpoints, or for a nearest-neighbour run the training samples of every bucket) and checks them the
way the certify stage checks its inputs: the partition digest and the learner spec (name, parameters, code) must
be those the certificates record, every bucket's samples must have their recorded digests, and the checkpoints
must be those certified. So an input is classified by exactly the models the run's certificates describe.

A radius of a new input is the radius of the ensemble's prediction: the certificate's definition
(docs/design.md#certificates) with the prediction in place of the unknown label. With labels
(``Ensemble.certify(images, labels)``) it is the certificate exactly as certify computes it (-1 when wrong).
"""

import json
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from .. import learners, provenance
from ..artifacts.certificates import read_certificates
from ..artifacts.checkpoints import checkpoint_scores, load_checkpoint_bytes
from ..artifacts.partition_files import bucket_group_samples, check_bucket_unions, read_layout_contents
from ..artifacts.splits import split_summary
from ..certify import METHODS, label_of, run_off_data
from ..certify.buckets import bucket_feeds, circulant_offsets
from ..certify.votes import vote_counts, votes_from_logits
from ..edits import training_pool
from ..errors import PipelineError
from ..nearest import BLOCK_BYTES, model_scores
from ..progress import bar
from .inputs import decode_file, fit_image, read_inputs

EMBED_CHUNK = 2000  # training samples embedded at once (bounds the memory of their feature maps)
BATCH = 1024  # inputs scored at once (bounds the memory of distances and scores)
FORMAT = "certified-ensemble"
FORMAT_VERSION = 1


@dataclass
class Ensemble:
    """A certified ensemble, ready to classify.

    ``run``: the run's name; ``info``: dataset, method, k, d, n_buckets, hash, versions, n_models, learner spec;
    ``methods``: certificate names (e.g. ``["dpa", "dpa_roe"]``); ``class_names``; ``image_shape``: the models'
    input, uint8 ``[H, W]`` or ``[H, W, 3]``; ``resize``: whether inputs of another size are resized (as the
    dataset's preparation does) or refused; ``provenance``: the certificates' provenance record; ``metrics``:
    the run's metrics (certified accuracy on its test set), if known; ``source``: where it was loaded from;
    ``bundle_sha256``: the bundle's manifest digest (None for a run folder).
    """

    run: str
    info: dict
    methods: list
    class_names: list
    image_shape: tuple
    resize: bool
    provenance: dict
    metrics: dict | None
    source: str
    bundle_sha256: str | None
    make_score_fn: Callable = field(repr=False)
    feed: np.ndarray | None = field(repr=False, default=None)
    score_fn: Callable | None = field(repr=False, default=None, init=False)

    @property
    def n_models(self) -> int:
        return self.info["n_models"]

    def warm(self) -> "Ensemble":
        """Make the models ready (a nearest-neighbour ensemble computes its training features, the slow part of
        loading it); the first classification does it otherwise."""
        if self.score_fn is None:
            self.score_fn = self.make_score_fn()
        return self

    def scores(self, images: np.ndarray):
        """(votes int16[n, n_models], scores float32[n, n_models, C]) of uint8 images[n, *image_shape]."""
        images = self.check_images(images)
        self.warm()
        if not len(images):
            n_classes = len(self.class_names)
            return np.zeros((0, self.n_models), np.int16), np.zeros((0, self.n_models, n_classes), np.float32)
        votes, logits = [], []
        for start in range(0, len(images), BATCH):
            v, s = self.score_fn(images[start:start + BATCH])
            votes.append(v)
            logits.append(s)
        return np.concatenate(votes), np.concatenate(logits)

    def check_images(self, images) -> np.ndarray:
        """uint8[n, *image_shape] from an array of that shape (or one image), converted as inputs are."""
        images = np.asarray(images)
        if images.ndim == len(self.image_shape) and images.dtype == np.uint8 and images.size:
            images = images[None]
        if images.dtype != np.uint8 or images.ndim != len(self.image_shape) + 1:
            raise PipelineError(f"images: an array of {images.dtype} with shape {list(images.shape)}; give uint8 "
                                f"[n, {', '.join(map(str, self.image_shape))}] (one image per row)")
        if tuple(images.shape[1:]) != self.image_shape:
            images = np.stack([fit_image(im, self.image_shape, self.resize, f"images[{i}]")
                               for i, im in enumerate(images)])
        return images

    def certify(self, images, labels=None):
        """A pandas.DataFrame with one row per image: ``prediction`` (and ``prediction_name``), ``radius_<method>``
        for every method (ROE's prediction as ``prediction_roe``), and ``votes_<c>``: the models voting class c.

        ``images``: uint8[n, *image_shape] (or one image). Without ``labels`` a radius is the certificate of the
        prediction; with ``labels`` (int[n]) the table also has ``label`` and a radius is -1 where the
        prediction is wrong, as in the run's certificates.parquet.
        """
        import pandas as pd

        votes, logits = self.scores(images)
        columns = {}
        if labels is not None:
            labels = np.asarray(labels, dtype=np.int64)
            if labels.shape != (len(votes),) or labels.size and (labels.min() < 0 or labels.max() >= len(
                    self.class_names)):
                raise PipelineError(f"labels: give one class index 0..{len(self.class_names) - 1} per image "
                                    f"({len(votes)})")
            columns["label"] = labels
        for method, (prediction, radius) in certify_scores(votes, logits, self.methods, len(self.class_names),
                                                           self.feed, labels).items():
            suffix = "_roe" if method.endswith("_roe") else ""
            columns.setdefault(f"prediction{suffix}", prediction)
            columns.setdefault(f"prediction{suffix}_name", [self.class_names[p] for p in prediction])
            columns[f"radius_{method}"] = radius
        counts = vote_counts(votes, len(self.class_names))
        for c in range(len(self.class_names)):
            columns[f"votes_{c}"] = counts[:, c].astype(np.int64)
        return pd.DataFrame(columns)

    def classify(self, named_images):
        """certify() of [(input name, image)], with the names as a first column ``input``."""
        if not named_images:
            raise PipelineError("no images to classify")
        table = self.certify(np.stack([image for _, image in named_images]))
        table.insert(0, "input", [name for name, _ in named_images])
        return table

    def classify_files(self, paths):
        """certify() of every image in the files (image files, npz with x, IDX), named by file (``file[i]`` for
        the i-th image of an array file)."""
        return self.classify(read_inputs(paths, self.image_shape, self.resize))

    def classify_bytes(self, data: bytes, name: str):
        """certify() of the images in one file's bytes (see classify_files)."""
        return self.classify(decode_file(data, name, self.image_shape, self.resize))

    def describe(self) -> dict:
        """What the ensemble is, as JSON values: run, methods, classes, input, models, provenance digests."""
        return {"run": self.run, **{k: v for k, v in self.info.items() if k != "learner"},
                "learner": self.info["learner"]["name"], "learner_params": self.info["learner"]["params"],
                "methods": {m: label_of(m, self.info["versions"]) for m in self.methods},
                "class_names": self.class_names, "image_shape": list(self.image_shape), "resize": self.resize,
                "partition_sha256": self.provenance["partition_sha256"], "bundle_sha256": self.bundle_sha256,
                "source": self.source}


def certify_scores(votes, logits, methods, n_classes: int, feed=None, labels=None) -> dict:
    """{method: (prediction int64[n], radius int64[n])}. Without ``labels`` the radius of each method's own
    prediction (the certificate with the prediction as the label); with labels, the certificate as certify
    computes it. A method's prediction does not depend on the labels."""
    out = {}
    beats = run_off_data(methods, votes, logits, n_classes)
    for method in methods:
        certify = METHODS[method]["certify"]
        y = labels
        if y is None:
            y, _ = certify(votes, beats, np.zeros(len(votes), np.int64), n_classes, feed)
        out[method] = certify(votes, beats, np.asarray(y, np.int64), n_classes, feed)
    return out


def result_records(table) -> list[dict]:
    """The rows of a certify()/classify() table as JSON objects, the votes as one list ``votes``."""
    vote_columns = [c for c in table.columns if c.startswith("votes_")]
    records = []
    for row in table.to_dict(orient="records"):
        record = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in row.items() if k not in vote_columns}
        record["votes"] = [int(row[c]) for c in vote_columns]
        records.append(record)
    return records


# ---- parts: what an ensemble is made of, from a run folder or a bundle ----

def run_location(path, config=None):
    """(run name, run folder, workflow folder, config path) of a run folder (``work/<run>``) or a run name (under
    runs: of ``config``, default params.yaml, or a study's run)."""
    path = Path(path)
    if path.is_dir():
        root = path.resolve().parent.parent
        return path.name, path, root, Path(config) if config else root / "params.yaml"
    config = Path(config or "params.yaml")
    return str(path), config.resolve().parent / "work" / str(path), config.resolve().parent, config


def run_settings(name: str, config_path: Path) -> dict:
    """The run's settings in the config (runs: or a study's runs); a PipelineError naming the config if absent."""
    from .. import studies
    from ..config import load

    if not Path(config_path).is_file():
        raise PipelineError(f"{config_path}: not found, so run {name!r} cannot be looked up; give --config (the "
                            "params.yaml that defines it), a run folder (work/<run>) or a bundle file")
    params = load(config_path)
    runs = {**params["runs"], **studies.expand(params)[0]}
    if name not in runs:
        raise PipelineError(f"run {name!r}: not in {config_path} (its runs: {', '.join(params['runs']) or 'none'}); "
                            "give a run name or folder of that config, or a bundle file (python -m pipeline export)")
    return {**runs[name], "prepared_dir": params["data"]["prepared_dir"]}


def run_parts(path, config=None) -> dict:
    """The parts of a certified run (see bundle.py for their layout), read from its folder and its prepared data."""
    name, run_dir, root, config_path = run_location(path, config)
    settings = run_settings(name, config_path)
    certificates = run_dir / "certificates.parquet"
    if not certificates.is_file():
        raise PipelineError(f"{certificates}: missing; the run {name!r} is not certified yet: run snakemake first "
                            f"(e.g. snakemake --cores all {certificates.relative_to(root)})")
    table, origin = read_certificates(certificates)
    partition = run_dir / "partition"
    shard_files = {p.name: p.read_bytes() for p in sorted(partition.glob("shard_*.json"), key=file_index)}
    prepared = Path(settings["prepared_dir"])
    train_path = (prepared if prepared.is_absolute() else root / prepared) / settings["dataset"] / "train.npz"
    summary = split_summary(train_path)
    parts = {
        "ensemble": {
            "format": FORMAT, "format_version": FORMAT_VERSION, "run": name, "dataset": settings["dataset"],
            "methods": [c.removeprefix("radius_") for c in table.columns if c.startswith("radius_")],
            "class_names": summary["class_names"], "image_shape": summary["image_shape"],
            "resize": summary["resized"], "provenance": origin,
            "data": {"train": {k: summary[k] for k in ("n", "images_sha256", "labels_sha256")},
                     "test": origin.get("test")},
            "params": {k: v for k, v in settings.items() if k != "prepared_dir"},
            "scores": "distances" if "distances_sha256" in origin else "checkpoints",
        },
        "shard_files": shard_files,
        "metrics": _metrics(root / "metrics" / f"{name}.json"),
        "where": str(run_dir),
    }
    if parts["ensemble"]["scores"] == "distances":
        groups = {p.name: p.read_bytes() for p in sorted(partition.glob("buckets_*.json"), key=file_index)}
        inserted = partition / "inserted.npz"
        images, labels, _ = training_pool(train_path, inserted if inserted.is_file() else None)
        ids = [np.asarray(b["sample_ids"], np.int64) for g in groups.values() for b in json.loads(g)["buckets"]]
        ids = np.concatenate(ids) if ids else np.zeros(0, np.int64)
        if ids.size and ids.max() >= len(labels):
            raise PipelineError(f"{partition}: its bucket-group files name samples outside the training set; run "
                                "snakemake again (the partition step rewrites them)")
        parts.update(group_files=groups, training={"images": images[ids], "labels": labels[ids], "sample_ids": ids})
    else:
        checkpoints = [run_dir / "models" / f"shard_{file_index(s)}.pt" for s in shard_files]
        for path in checkpoints:
            if not path.is_file():
                raise PipelineError(f"{path}: checkpoint missing; run snakemake first (it trains the run)")
        parts["checkpoint_files"] = {path.name: path.read_bytes for path in checkpoints}  # read one at a time
    return parts


def file_index(path) -> int:
    """The number in a per-shard or per-group file's name: shard_3.json, models/shard_3.pt -> 3."""
    return int(Path(path).stem.split("_")[1])


def _metrics(path: Path):
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


# ---- building and checking an ensemble from its parts ----

def checked_parts(parts: dict, bundle_sha256=None, keep_checkpoints=True) -> dict:
    """The ensemble's description from its parts, every part checked against the certificates' provenance (module
    docstring): {info, layout (model_buckets), learner, training or checkpoints, and the Ensemble's fields}."""
    meta, where = parts["ensemble"], parts["where"]
    origin = meta["provenance"]
    fix = ("the run's files changed since it was certified: run snakemake to re-certify it (then export again)"
           if bundle_sha256 is None else "export the bundle again from a certified run")
    if not parts["shard_files"]:
        raise PipelineError(f"{where}: no shard files; {fix}")
    shards, models, model_buckets, _ = read_layout_contents(parts["shard_files"], where)
    if provenance.partition_digest(models) != origin.get("partition_sha256"):
        raise PipelineError(f"{where}: its shard files are not the partition its certificates were computed on; {fix}")
    spec = origin["learner"]
    current = provenance.learner_spec(spec["name"], learners.resolve_params(spec["name"], spec["params"]))
    provenance.check_learner(where, spec, current, "the ensemble was certified with another version of the learner's "
                             "code than this pipeline's; use the pipeline version it was made with, or re-run and "
                             "re-export it with this one")
    unknown = [m for m in meta["methods"] if m not in METHODS]
    if unknown or not meta["methods"]:
        raise PipelineError(f"{where}: unknown certificate methods {unknown or 'none'}; {fix}")
    info = {"dataset": meta["dataset"], "method": shards[0]["method"], "k": shards[0]["k"], "d": shards[0]["d"],
            "n_buckets": shards[0]["n_buckets"], "hash": shards[0]["hash"], "versions": shards[0].get("versions", 1),
            "n_models": len(models), "learner": spec}
    out = {"info": info, "model_buckets": model_buckets, "training": None, "checkpoints": None,
           "fields": {"run": meta["run"], "methods": list(meta["methods"]), "class_names": list(meta["class_names"]),
                      "image_shape": tuple(meta["image_shape"]), "resize": bool(meta["resize"]), "provenance": origin,
                      "metrics": parts.get("metrics"), "source": str(where), "bundle_sha256": bundle_sha256}}
    if meta["scores"] == "distances":
        out["training"] = bucket_training(parts, models, model_buckets, where)
    else:
        out["checkpoints"] = checked_checkpoints(parts, shards, current, origin, where, fix, keep_checkpoints)
    return out


def build_ensemble(parts: dict, device="auto", bundle_sha256=None) -> Ensemble:
    """An Ensemble from its parts, every part checked (checked_parts); not warmed up."""
    checked = checked_parts(parts, bundle_sha256)
    info, model_buckets, fields = checked["info"], checked["model_buckets"], checked["fields"]
    n_classes, learner = len(fields["class_names"]), learners.get(info["learner"]["name"])

    def make_score_fn():
        if checked["training"] is not None:
            return nearest_scorer(learner, info["learner"]["params"], checked.pop("training"), info["n_buckets"],
                                  model_buckets, info["versions"], n_classes, device)
        return checkpoint_scorer(learner, checked["checkpoints"], info["n_models"], n_classes, device)

    return Ensemble(info=info, make_score_fn=make_score_fn,
                    feed=bucket_feeds(model_buckets) if info["method"] == "fa" else None, **fields)


def bucket_training(parts: dict, models, model_buckets, where) -> dict:
    """Every bucket's samples (images, labels, bucket int64[n]), checked against the digests of the bucket-group
    files, which must cover the buckets 0..n-1 with every model the union of its buckets."""
    from ..artifacts.partition_files import parse_self_digested

    groups = [parse_self_digested(data, f"{where}: {name}", "bucket-group file")
              for name, data in parts["group_files"].items()]
    check_bucket_unions(groups, models, model_buckets)
    training = parts["training"]
    ids = np.asarray(training["sample_ids"], np.int64)
    pool_images = np.zeros((int(ids.max()) + 1 if ids.size else 0, *training["images"].shape[1:]), np.uint8)
    pool_labels = np.full(len(pool_images), -1, np.int64)
    pool_images[ids], pool_labels[ids] = training["images"], training["labels"]
    images, labels, buckets = [], [], []
    for name, group in zip(parts["group_files"], groups):
        x, y, b = bucket_group_samples(pool_images, pool_labels, group, f"{where}: {name}")
        images.append(x)
        labels.append(y)
        buckets.append(b)
    return {"images": np.concatenate(images), "labels": np.concatenate(labels), "buckets": np.concatenate(buckets)}


def nearest_scorer(learner, params, training: dict, n_buckets: int, model_buckets, versions: int, n_classes: int,
                   device):
    """score_fn of a nearest-neighbour ensemble: every bucket's features computed once (here), then per batch of
    inputs the exact per-bucket minima and every model's scores from its buckets', as certify computes them
    from the shared distances (docs/design.md#shared-distances)."""
    import torch

    dev = learners.pick_device(device)
    images, labels, buckets = training["images"], training["labels"], training["buckets"]
    _, scale = learner.embed_test(images[:1], params)  # the scale depends on the parameters and feature count only

    def embed(rows: slice):  # float32 features, labels and buckets of some samples and their augmented copies
        q, y, own = learner.embed_train(images[rows], labels[rows], params, scale)
        return q, y, buckets[rows][own]

    steps = [slice(s, s + EMBED_CHUNK) for s in range(0, len(images), EMBED_CHUNK)]
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:  # numpy's feature maps release the GIL
        parts = list(bar(pool.map(embed, steps), total=len(steps), desc="training features"))
    train = torch.from_numpy(np.concatenate([q for q, _, _ in parts])).to(dev)
    train_labels = np.concatenate([y for _, y, _ in parts])
    row_buckets = np.concatenate([b for _, _, b in parts])
    del parts
    offsets = circulant_offsets(bucket_feeds(model_buckets))
    train_sq = (train * train).sum(1)  # once: recomputing it would cost more than the distances of one input
    key = torch.from_numpy(row_buckets * n_classes + train_labels).to(dev)
    step = max(1, BLOCK_BYTES // (4 * max(1, len(train))))

    def score_fn(batch):
        test = torch.from_numpy(learner.embed_test(batch, params)[0]).to(dev)
        minima = torch.full((len(test), n_buckets * n_classes), float("inf"), device=dev)
        for start in range(0, len(test), step):  # exact integers, as nearest.bucket_minima computes them
            block = slice(start, start + step)
            sq = (test[block] * test[block]).sum(1, keepdim=True) + train_sq[None, :] - 2.0 * test[block] @ train.T
            minima[block].scatter_reduce_(1, key.expand(len(sq), -1), sq, reduce="amin", include_self=True)
        minima = minima.reshape(len(test), n_buckets, n_classes).cpu().numpy()
        logits = model_scores(minima, model_buckets, learner, scale, versions, None, offsets)
        return votes_from_logits(logits), logits

    return score_fn


def checked_checkpoints(parts: dict, shards, spec: dict, origin: dict, where, fix, keep=True) -> list:
    """The run's checkpoints, one per shard file, each checked against its shard file and the learner spec, and
    all together against the checkpoints the certificates were computed from (``keep``: False checks them one at
    a time and returns none)."""
    files = parts["checkpoint_files"]
    if len(files) != len(shards):
        raise PipelineError(f"{where}: {len(files)} checkpoints for {len(shards)} shard files; {fix}")
    checkpoints, digests = [], []
    for (name, data), shard in zip(files.items(), shards):
        checkpoint, sha256 = load_checkpoint_bytes(data() if callable(data) else data, f"{where}: {name}")
        record = checkpoint.get("provenance") or {}
        provenance.check_learner(f"{where}: {name}", record.get("learner", {}), spec, fix)
        provenance.check_models(f"{where}: {name}", record.get("models"), f"shard file {shard['shard']}", shard, fix)
        checkpoints += [checkpoint] if keep else []
        digests.append(sha256)
    if provenance.canonical_digest(digests) != origin.get("checkpoints_sha256"):
        raise PipelineError(f"{where}: its checkpoints are not those its certificates were computed from; {fix}")
    return checkpoints


def checkpoint_scorer(learner, checkpoints: list, n_models: int, n_classes: int, device):
    """score_fn of an ensemble of checkpoints: every model's scores, as the predict stage computes them."""
    dev = learners.pick_device(device)

    def score_fn(batch):
        logits = np.empty((len(batch), n_models, n_classes), dtype=np.float32)
        for checkpoint in checkpoints:
            ids = [m["model_id"] for m in checkpoint["models"]]
            logits[:, ids] = checkpoint_scores(learner, checkpoint, batch, dev).transpose(1, 0, 2)
        if np.isnan(logits).any() or not np.isfinite(logits).any(axis=-1).all():
            raise PipelineError("a model produced NaN or all -inf scores on this input")
        return votes_from_logits(logits), logits

    return score_fn


def load_ensemble(path, config=None, device="auto", sha256=None, warm=True) -> Ensemble:
    """The ensemble of a certified run, ready to classify.

    ``path``: a bundle file (``python -m pipeline export``), a run folder (``work/<run>``) or a run name of
    ``config`` (default: params.yaml in the current folder). ``sha256``: the bundle's expected digest (as export
    prints it); a bundle with another digest is refused. ``device``: auto (a CUDA GPU when there is one), cpu or
    cuda. Every part is checked against the run's certificates (module docstring); a mismatch is a PipelineError
    naming the file and the fix. ``warm``: make the models ready now (Ensemble.warm; a nearest-neighbour ensemble
    computes its training features: about 20 s for MNIST on 2 cores), else at the first classification.
    """
    from .bundle import is_bundle, read_bundle

    if is_bundle(path):
        parts, digest = read_bundle(path, sha256)
        ensemble = build_ensemble(parts, device, bundle_sha256=digest)
    elif sha256 is not None:
        raise PipelineError(f"{path}: sha256 pins a bundle's digest, and this is not a bundle file")
    elif not Path(path).is_dir() and Path(path).suffix:
        raise PipelineError(f"{path}: no such bundle file or run folder")
    else:
        ensemble = build_ensemble(run_parts(path, config), device)
    return ensemble.warm() if warm else ensemble
