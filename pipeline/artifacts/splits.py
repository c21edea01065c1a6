"""Prepared splits: ``data/prepared/<dataset>/{train,test}.npz``, written by the prepare stage.

Schema: ``images`` uint8[N, H, W] or uint8[N, H, W, C], ``labels`` int[N], ``class_names`` str[C],
``dataset``, ``images_sha256`` and ``labels_sha256`` (SHA-256 of the arrays' C-ordered bytes), and, for
datasets whose images were resized (GTSRB, user sets with ``resize``), the original images' hash
inputs ``original_pixel_sum`` int64[N] and ``original_sha256`` uint8[N, 32] with their own digest
``originals_sha256``. Readers check the stored digests (and a built-in dataset's official ones).
"""

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from ..atomic import atomic_path
from ..errors import PipelineError

SPLITS = ("train", "test")
FIX = "delete it and run snakemake again (prepare rewrites it)"


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of the C-ordered bytes of ``array``."""
    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest()


def originals_digest(originals: dict) -> str:
    """SHA-256 over the C-ordered bytes of the hash inputs' pixel_sum (int64) then sha256 (uint8)."""
    return hashlib.sha256(np.ascontiguousarray(originals["pixel_sum"], dtype=np.int64).tobytes()
                          + np.ascontiguousarray(originals["sha256"], dtype=np.uint8).tobytes()).hexdigest()


def save_split(path, images, labels, class_names, dataset: str, originals: dict | None = None) -> None:
    """Write a prepared split atomically. ``originals``: the original images' hash inputs
    {"pixel_sum": int64[N], "sha256": uint8[N, 32]} (data.images.original_hash_arrays), or None."""
    extra = {}
    if originals is not None:
        extra = {"original_pixel_sum": np.asarray(originals["pixel_sum"], dtype=np.int64),
                 "original_sha256": np.asarray(originals["sha256"], dtype=np.uint8),
                 "originals_sha256": np.asarray(originals_digest(originals))}
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez(tmp, images=images, labels=labels, class_names=np.asarray(class_names), dataset=np.asarray(dataset),
                 images_sha256=np.asarray(array_digest(images)), labels_sha256=np.asarray(array_digest(labels)),
                 **extra)


def open_split(path: Path):
    """The npz of a prepared split (a clear error when it is missing or not an npz)."""
    if not path.is_file():
        raise PipelineError(f"{path}: prepared data missing; run the prepare step (snakemake prepares it)")
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); {FIX}") from None


def load_split(path):
    """Load a prepared split: (images uint8[N, ...], labels int64[N], class_names list[str]).

    Checks the stored digests (and the official ones for known datasets), so a corrupt or
    edited file is an error rather than silently different results.
    """
    from ..data.prepared import DATASETS  # the official digests of built-in datasets

    path = Path(path)
    try:
        with open_split(path) as npz:
            images, labels = npz["images"], npz["labels"]
            class_names = [str(c) for c in npz["class_names"]]
            dataset = str(npz["dataset"])
            stored = str(npz["images_sha256"]), str(npz["labels_sha256"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); {FIX}") from None
    if (array_digest(images), array_digest(labels)) != stored:
        raise PipelineError(f"{path}: contents do not match their stored SHA-256; {FIX}")
    module = DATASETS.get(dataset)
    split = path.stem
    if module is not None and split in SPLITS and f"{split}_images" in module.DIGESTS:
        official = module.DIGESTS[f"{split}_images"], module.DIGESTS[f"{split}_labels"]
        if stored != official:
            raise PipelineError(f"{path}: not the official {dataset} {split} split; {FIX}")
    return images, labels.astype(np.int64), class_names


def load_test_subset(path, test_limit=None):
    """The first ``test_limit`` samples of a prepared split (all when None): (images, labels, class_names)."""
    images, labels, class_names = load_split(path)
    if test_limit is not None:
        images, labels = images[:test_limit], labels[:test_limit]
    return images, labels, class_names


def test_digests(images, labels) -> dict:
    """The identity of a test set as artifacts record it: n_test and the SHA-256 of images and labels."""
    return {"n_test": len(labels), "images_sha256": array_digest(images), "labels_sha256": array_digest(labels)}


def load_hash_inputs(path):
    """The original images' hash inputs of a prepared split, or None for fixed-size datasets.

    Returns {"pixel_sum": int64[N], "sha256": uint8[N, 32]} (see data/images.py), checked against
    their stored SHA-256.
    """
    path = Path(path)
    try:
        with open_split(path) as npz:
            if "original_pixel_sum" not in npz.files:
                return None
            originals = {"pixel_sum": npz["original_pixel_sum"].astype(np.int64), "sha256": npz["original_sha256"]}
            stored = str(npz["originals_sha256"])
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); {FIX}") from None
    if originals_digest(originals) != stored:
        raise PipelineError(f"{path}: original-image hashes do not match their stored SHA-256; {FIX}")
    return originals


def split_summary(path) -> dict:
    """What a prepared split is, without reading its images: ``n``, ``image_shape``, ``class_names``, ``dataset``,
    ``resized`` (whether its images were resized at preparation: it keeps the originals' hash inputs) and the
    stored ``images_sha256`` and ``labels_sha256``."""
    path = Path(path)
    try:
        with open_split(path) as npz, zipfile.ZipFile(path) as archive:
            with archive.open("images.npy") as f:
                version = np.lib.format.read_magic(f)
                read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                               else np.lib.format.read_array_header_2_0)
                shape, _, _ = read_header(f)
            return {"n": int(shape[0]), "image_shape": [int(s) for s in shape[1:]],
                    "class_names": [str(c) for c in npz["class_names"]], "dataset": str(npz["dataset"]),
                    "resized": "original_pixel_sum" in npz.files, "images_sha256": str(npz["images_sha256"]),
                    "labels_sha256": str(npz["labels_sha256"])}
    except (OSError, ValueError, KeyError, IndexError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); {FIX}") from None
