"""Prepare a dataset: fetch it from its first source that passes verification, write its prepared splits
(format and reader: pipeline/artifacts/splits.py).

Datasets with official digests (MNIST, Fashion-MNIST) also keep the last verified splits as
``.verified/<split>-<official images SHA-256>.npz`` hard links beside them: Snakemake deletes a job's
outputs before rerunning it, not these, and prepare falls back on them when every source fails.
"""

import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..artifacts.splits import SPLITS, array_digest, open_split, save_split
from ..errors import PipelineError
from . import cifar10, fashion_mnist, gtsrb, imagenet64, mnist, user
from .images import check_labels
from .sources import first_available

DATASETS = {"mnist": mnist, "fashion_mnist": fashion_mnist, "cifar10": cifar10, "gtsrb": gtsrb}
USER_FORMATS = {
    "imagenet64": lambda spec, name, log: imagenet64.load(spec, log),
    "folder": user.load_folder,
    "npz": user.load_npz,
}
VERIFIED = ".verified"
LAST_RESORT = "verified copy"


def _check(module, arrays: dict, origin: str) -> None:
    """Shapes and dtypes against ``module.SHAPES``, SHA-256 against ``module.DIGESTS`` (where known).

    Errors name the file an array came from where the reader says (``arrays["files"]``), else ``origin``.
    """
    files = arrays.get("files", {})
    for key, shape in module.SHAPES.items():
        array = arrays[key]
        if tuple(array.shape) != shape or array.dtype != np.uint8:
            raise PipelineError(
                f"{files.get(key, origin)}: {key} has shape {tuple(array.shape)} {array.dtype}, expected "
                f"{shape} uint8; the source files are not the official ones"
            )
    for key, digest in module.DIGESTS.items():
        if array_digest(arrays[key]) != digest:
            raise PipelineError(
                f"{files.get(key, origin)}: {key} does not match the official SHA-256 digest; the source files are "
                "corrupt or not the official ones: replace them with the official files"
            )


def _check_split(arrays: dict, split: str, n_classes: int, origin: str) -> None:
    """Prepared-form invariants every loader must meet: uint8 images, one label per image in range."""
    images, labels = arrays[f"{split}_images"], np.asarray(arrays[f"{split}_labels"])
    if images.dtype != np.uint8 or images.ndim not in (3, 4):
        raise PipelineError(f"{origin}: {split} images must be uint8[N, H, W(, C)], got {images.dtype} {images.shape}")
    if len(labels) != len(images):
        raise PipelineError(f"{origin}: {len(images)} {split} images but {len(labels)} labels")
    check_labels(labels, n_classes, f"{origin}: {split}")


def _kept_paths(out_dir, module) -> dict:
    """Split -> its last verified copy, named by the official SHA-256 of its images."""
    return {split: Path(out_dir) / VERIFIED / f"{split}-{module.DIGESTS[f'{split}_images']}.npz" for split in SPLITS}


def _keep_verified(out_dir: Path, module, log) -> None:
    """Hard-link (or, where links fail, copy) the verified splits just written to their kept copies."""
    try:
        for split, kept in _kept_paths(out_dir, module).items():
            kept.parent.mkdir(parents=True, exist_ok=True)
            tmp = kept.with_name(f".{kept.name}.{os.getpid()}.tmp")
            tmp.unlink(missing_ok=True)
            try:
                os.link(out_dir / f"{split}.npz", tmp)
            except OSError:
                shutil.copyfile(out_dir / f"{split}.npz", tmp)
            os.replace(tmp, kept)
    except OSError as err:  # the outputs are written; only the fallback for a later run is missing
        log(f"{module.TITLE}: could not keep a verified copy in {out_dir / VERIFIED}/ ({type(err).__name__}: {err}); "
            "a later prepare whose sources all fail will have none to fall back on")


def _read_kept(out_dir, module):
    """Arrays of the last verified copy (to be checked like any source's), or None when there is none."""
    paths = _kept_paths(out_dir, module)
    if not all(path.is_file() for path in paths.values()):
        return None
    arrays = {"files": {}}
    for split, path in paths.items():
        try:
            with open_split(path) as npz:
                arrays[f"{split}_images"], arrays[f"{split}_labels"] = npz["images"], npz["labels"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
            raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); delete it") from None
        arrays["files"].update({f"{split}_images": str(path), f"{split}_labels": str(path)})
    return arrays


def _fetch(dataset: str, raw_dir, out_dir, sources, spec, log):
    """(arrays, what was verified) from the dataset's module or the user format in ``spec``.

    A built-in dataset's sources are tried in order; one whose files are unreadable or fail ``_check``
    is logged and the next one tried. With official digests, the last verified copy is the last resort.
    """
    if spec is not None:
        fmt = spec.get("format")
        if fmt not in USER_FORMATS:
            raise PipelineError(f"datasets.{dataset}.format: {fmt!r} is not one of {', '.join(USER_FORMATS)}")
        arrays = USER_FORMATS[fmt](spec, dataset, log)
        arrays["source"] = f"user ({fmt})"
        return arrays, "user-supplied: no official digest, SHA-256 recorded"
    module = DATASETS.get(dataset)
    if module is None:
        raise PipelineError(f"no loader for dataset {dataset!r} (built in: {', '.join(DATASETS)}); use one of those, "
                            f"or declare it under datasets: in params.yaml (formats: {', '.join(USER_FORMATS)})")
    last_resort = None
    if module.DIGESTS:  # a copy with the official digests is the official data, whichever source it came from
        last_resort = (LAST_RESORT, lambda _: _read_kept(out_dir, module))
    arrays = first_available(module.TITLE, module.READERS, raw_dir, sources, module.where_to_put(raw_dir), log,
                             check=lambda arrays: _check(module, arrays, f"{dataset} ({arrays['source']} source)"),
                             last_resort=last_resort)
    return arrays, ("verified against the official SHA-256 digests" if module.DIGESTS
                    else "official files verified by MD5; no official SHA-256 of the arrays known, SHA-256 recorded")


def prepare(dataset: str, raw_dir, out_dir, sources, log=print, spec=None) -> str:
    """Fetch ``dataset`` from the first source whose data passes verification, write train.npz and test.npz.

    ``spec``: the ``datasets.<dataset>`` entry of params.yaml for a user-supplied dataset, else None.
    Returns the name of the source used ("verified copy" for the last verified copy).
    """
    out_dir = Path(out_dir)
    arrays, verified = _fetch(dataset, raw_dir, out_dir, sources, spec, log)
    module = DATASETS.get(dataset) if spec is None else None
    if arrays["source"] == LAST_RESORT:
        log(f"{dataset}: every source failed; using the last verified copy in {out_dir / VERIFIED}/ (it has the "
            "official SHA-256 digests); fix the rejected sources above to prepare from them again")
    class_names = arrays.get("class_names", getattr(module, "CLASS_NAMES", None))
    origin = f"{dataset} ({arrays['source']} source)"
    for split in SPLITS:
        _check_split(arrays, split, len(class_names), origin)
    out_dir.mkdir(parents=True, exist_ok=True)  # the folder named by --out-dir
    digests = {split: save_split(out_dir / f"{split}.npz", arrays[f"{split}_images"], arrays[f"{split}_labels"],
                                 class_names, dataset, arrays.get(f"{split}_originals"))
               for split in SPLITS}  # images given as ImageChunks are read from their source while written
    if module is not None and module.DIGESTS:
        _keep_verified(out_dir, module, log)
    log(f"{dataset}: wrote {out_dir}/train.npz and test.npz ({verified})")
    for split in SPLITS:
        log(f"{dataset} {split}: {tuple(arrays[f'{split}_images'].shape)} images SHA-256 "
            f"{digests[split]['images_sha256']}, labels SHA-256 {digests[split]['labels_sha256']}")
    return arrays["source"]
