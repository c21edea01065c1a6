"""Prepare a dataset into its verified npz form, and load it back with verification."""

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import PipelineError
from . import mnist

DATASETS = {"mnist": mnist}
SPLITS = ("train", "test")


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of the C-ordered bytes of ``array``."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def _check(module, arrays: dict, origin: str) -> None:
    for key, digest in module.DIGESTS.items():
        array = arrays[key]
        if tuple(array.shape) != module.SHAPES[key] or array.dtype != np.uint8:
            raise PipelineError(
                f"{origin}: {key} has shape {tuple(array.shape)} {array.dtype}, expected "
                f"{module.SHAPES[key]} uint8; the source files are not the official ones"
            )
        if array_digest(array) != digest:
            raise PipelineError(
                f"{origin}: {key} does not match the official SHA-256 digest; the source files are "
                f"corrupt or not the official ones: delete them and {module.where_to_put('the raw folder')}"
            )


def _save_split(path: Path, images, labels, class_names, dataset) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            images=images,
            labels=labels,
            class_names=np.asarray(class_names),
            dataset=np.asarray(dataset),
            images_sha256=np.asarray(array_digest(images)),
            labels_sha256=np.asarray(array_digest(labels)),
        )


def prepare(dataset: str, raw_dir, out_dir, sources, log=print) -> str:
    """Fetch ``dataset`` from the first available source, verify it, write train.npz and test.npz.

    Returns the name of the source used.
    """
    module = DATASETS.get(dataset)
    if module is None:
        raise PipelineError(f"no loader for dataset {dataset!r} in this version (available: {', '.join(DATASETS)}); "
                            "use one of those in params.yaml")
    arrays = module.fetch(Path(raw_dir), sources, log)
    _check(module, arrays, f"{dataset} ({arrays['source']} source)")
    out_dir = Path(out_dir)
    for split in SPLITS:
        _save_split(out_dir / f"{split}.npz", arrays[f"{split}_images"], arrays[f"{split}_labels"],
                    module.CLASS_NAMES, dataset)
    log(f"{dataset}: wrote {out_dir}/train.npz and test.npz (verified against the official SHA-256 digests)")
    return arrays["source"]


def load_split(path):
    """Load a prepared split: (images uint8[N, ...], labels int64[N], class_names list[str]).

    Checks the stored digests (and the official ones for known datasets), so a corrupt or
    edited file is an error rather than silently different results.
    """
    path = Path(path)
    if not path.is_file():
        raise PipelineError(f"{path}: prepared data missing; run the prepare step (snakemake prepares it)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            images, labels = npz["images"], npz["labels"]
            class_names = [str(c) for c in npz["class_names"]]
            dataset = str(npz["dataset"])
            stored = str(npz["images_sha256"]), str(npz["labels_sha256"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); delete it and prepare again") from None
    if (array_digest(images), array_digest(labels)) != stored:
        raise PipelineError(f"{path}: contents do not match their stored SHA-256; delete it and prepare again")
    module = DATASETS.get(dataset)
    split = path.stem
    if module is not None and split in SPLITS:
        official = module.DIGESTS[f"{split}_images"], module.DIGESTS[f"{split}_labels"]
        if stored != official:
            raise PipelineError(f"{path}: not the official {dataset} {split} split; delete it and prepare again")
    return images, labels.astype(np.int64), class_names
