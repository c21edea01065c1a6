"""Prepare a dataset into its verified npz form, and load it back with verification.

Prepared split (``data/prepared/<dataset>/<split>.npz``): ``images`` uint8[N, H, W] or
uint8[N, H, W, C], ``labels`` int[N], ``class_names`` str[C], ``dataset``, the SHA-256 of images
and labels, and, for datasets whose original images vary in size or were resized (GTSRB, user
sets with ``resize``), ``original_pixel_sum`` int64[N] and ``original_sha256`` uint8[N, 32] of
the original decoded images (see images.py) with their own SHA-256 ``originals_sha256``.

Datasets with official digests (MNIST, Fashion-MNIST) also keep the last verified splits as
``.verified/<split>-<official images SHA-256>.npz`` hard links beside them: Snakemake deletes a job's
outputs before rerunning it, not these, and prepare falls back on them when every source fails.
"""

import hashlib
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
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
SPLITS = ("train", "test")
ORIGINALS = ("original_pixel_sum", "original_sha256")
VERIFIED = ".verified"
LAST_RESORT = "verified copy"


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of the C-ordered bytes of ``array``."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def originals_digest(pixel_sum: np.ndarray, sha256: np.ndarray) -> str:
    """SHA-256 over the C-ordered bytes of original_pixel_sum (int64) then original_sha256 (uint8)."""
    return hashlib.sha256(np.ascontiguousarray(pixel_sum, dtype=np.int64).tobytes()
                          + np.ascontiguousarray(sha256, dtype=np.uint8).tobytes()).hexdigest()


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


def _save_split(path: Path, images, labels, class_names, dataset, originals=None) -> None:
    extra = {}
    if originals is not None:
        pixel_sum, sha256 = originals
        extra = {"original_pixel_sum": np.asarray(pixel_sum, dtype=np.int64),
                 "original_sha256": np.asarray(sha256, dtype=np.uint8),
                 "originals_sha256": np.asarray(originals_digest(pixel_sum, sha256))}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(
            tmp,
            images=images,
            labels=labels,
            class_names=np.asarray(class_names),
            dataset=np.asarray(dataset),
            images_sha256=np.asarray(array_digest(images)),
            labels_sha256=np.asarray(array_digest(labels)),
            **extra,
        )


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
            with _open(path) as npz:
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
    for split in SPLITS:
        originals = None
        if f"{split}_original_pixel_sum" in arrays:
            originals = arrays[f"{split}_original_pixel_sum"], arrays[f"{split}_original_sha256"]
        _save_split(out_dir / f"{split}.npz", arrays[f"{split}_images"], arrays[f"{split}_labels"],
                    class_names, dataset, originals)
    if module is not None and module.DIGESTS:
        _keep_verified(out_dir, module, log)
    log(f"{dataset}: wrote {out_dir}/train.npz and test.npz ({verified})")
    for split in SPLITS:
        log(f"{dataset} {split}: {arrays[f'{split}_images'].shape} images SHA-256 "
            f"{array_digest(arrays[f'{split}_images'])}, labels SHA-256 {array_digest(arrays[f'{split}_labels'])}")
    return arrays["source"]


def _open(path: Path):
    if not path.is_file():
        raise PipelineError(f"{path}: prepared data missing; run the prepare step (snakemake prepares it)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); delete it and run snakemake again (prepare rewrites it)") from None


def load_split(path):
    """Load a prepared split: (images uint8[N, ...], labels int64[N], class_names list[str]).

    Checks the stored digests (and the official ones for known datasets), so a corrupt or
    edited file is an error rather than silently different results.
    """
    path = Path(path)
    try:
        with _open(path) as npz:
            images, labels = npz["images"], npz["labels"]
            class_names = [str(c) for c in npz["class_names"]]
            dataset = str(npz["dataset"])
            stored = str(npz["images_sha256"]), str(npz["labels_sha256"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); delete it and run snakemake again (prepare rewrites it)") from None
    if (array_digest(images), array_digest(labels)) != stored:
        raise PipelineError(f"{path}: contents do not match their stored SHA-256; delete it and run snakemake again (prepare rewrites it)")
    module = DATASETS.get(dataset)
    split = path.stem
    if module is not None and split in SPLITS and f"{split}_images" in module.DIGESTS:
        official = module.DIGESTS[f"{split}_images"], module.DIGESTS[f"{split}_labels"]
        if stored != official:
            raise PipelineError(f"{path}: not the official {dataset} {split} split; delete it and run snakemake again (prepare rewrites it)")
    return images, labels.astype(np.int64), class_names


def load_hash_inputs(path):
    """The original images' hash inputs of a prepared split, or None for fixed-size datasets.

    Returns {"pixel_sum": int64[N], "sha256": uint8[N, 32]} (see images.py), checked against
    their stored SHA-256.
    """
    path = Path(path)
    try:
        with _open(path) as npz:
            if "original_pixel_sum" not in npz.files:
                return None
            pixel_sum, sha256 = npz["original_pixel_sum"], npz["original_sha256"]
            stored = str(npz["originals_sha256"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); delete it and run snakemake again (prepare rewrites it)") from None
    if originals_digest(pixel_sum, sha256) != stored:
        raise PipelineError(f"{path}: original-image hashes do not match their stored SHA-256; delete it and run snakemake again (prepare rewrites it)")
    return {"pixel_sum": pixel_sum.astype(np.int64), "sha256": sha256}
