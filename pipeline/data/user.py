"""User-supplied datasets in a generic format: a folder of class subfolders of images, or npz files.

Declared in params.yaml under ``datasets.<name>`` (see schemas/params.schema.json):

- ``format: folder``: ``path`` (training split) and ``test_path`` (test split) are folders with
  one subfolder per class, holding image files (png, jpg/jpeg, ppm/pgm/pnm, bmp, gif, tif/tiff,
  webp). Classes are the training folder's subfolder names in sorted order (label = position);
  the test folder may only use those names. Images are read with Pillow, converted to RGB
  (``channels: 3``) or grey (``channels: 1``) and taken in sorted file-name order per class.
- ``format: npz``: ``path`` and ``test_path`` are npz files with ``x`` (uint8[N, H, W] for
  ``channels: 1``, uint8[N, H, W, 3] for ``channels: 3``) and ``y`` (integer labels 0..C-1);
  an optional ``class_names`` (strings) in the training file names the C classes, else the
  classes are "0" .. str(max label). Read with ``allow_pickle=False``.

``resize: [H, W]`` resizes every image (Pillow bilinear) and stores the original images' pixel
sums and SHA-256 digests for the partition hash (images.py); with ``resize: null`` all images
must have one size. There is no fixed digest for user data: the prepared files record the
SHA-256 of what was prepared and the prepare step logs them.
"""

import zipfile
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..progress import bar
from .images import check_labels, decode_image, stack_images

KEYS = {"train": "path", "test": "test_path"}
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".ppm", ".pgm", ".pnm", ".bmp", ".gif", ".tif", ".tiff", ".webp"}


def _check_same_size(arrays: dict, name: str) -> None:
    train, test = arrays["train_images"].shape[1:], arrays["test_images"].shape[1:]
    if train != test:
        raise PipelineError(f"datasets.{name}: training images are {train} but test images {test}; "
                            "use one size or set resize: [H, W]")


def _class_folders(root: Path, what: str) -> list[Path]:
    if not root.is_dir():
        raise PipelineError(f"{what}: folder {root} not found; place one subfolder per class with its images there "
                            "(or correct the path in params.yaml)")
    folders = sorted(p for p in root.iterdir() if p.is_dir())
    if not folders:
        raise PipelineError(f"{what}: {root} has no class subfolders; put the images of each class in {root}/<class>/")
    return folders


def _folder_split(root: Path, class_names: list[str], channels: int, size, what: str) -> dict:
    images, labels = [], []
    for folder in _class_folders(root, what):
        if folder.name not in class_names:
            raise PipelineError(f"{what}: class folder {folder} is not one of the training classes {class_names}")
        files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
        for path in bar(files, desc=f"{what} {folder.name}"):
            images.append(decode_image(path.read_bytes(), str(path), channels))
            labels.append(class_names.index(folder.name))
    if not images:
        raise PipelineError(f"{what}: no image files under {root}/<class>/")
    out = stack_images(images, size, f"{what} ({root})")
    out["labels"] = np.asarray(labels, dtype=np.int64)
    return out


def load_folder(spec: dict, name: str, log) -> dict:
    """Prepared arrays of a folder-of-class-folders dataset (see the module docstring)."""
    size = spec["resize"]
    class_names = [p.name for p in _class_folders(Path(spec["path"]), f"datasets.{name}.path")]
    arrays = {"class_names": class_names}
    for split, key in (("train", "path"), ("test", "test_path")):
        out = _folder_split(Path(spec[key]), class_names, spec["channels"], size, f"datasets.{name}.{key}")
        for field, value in out.items():
            arrays[f"{split}_{field}"] = value
    _check_same_size(arrays, name)
    log(f"{name}: read {len(arrays['train_labels'])} training and {len(arrays['test_labels'])} test images "
        f"in {len(class_names)} classes")
    return arrays


def _read_npz(path: Path, what: str) -> dict:
    if not path.is_file():
        raise PipelineError(f"{what}: {path} not found; place an npz file with arrays x and y there "
                            "(or correct the path in params.yaml)")
    try:
        with np.load(path, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{what}: {path} is not a readable npz file without pickled objects "
                            f"({type(err).__name__}: {err})") from None


def load_npz(spec: dict, name: str, log) -> dict:
    """Prepared arrays of an npz dataset (see the module docstring)."""
    channels = spec["channels"]
    splits = {}
    for split, key in (("train", "path"), ("test", "test_path")):
        what = f"datasets.{name}.{key}"
        npz = _read_npz(Path(spec[key]), what)
        if "x" not in npz or "y" not in npz:
            raise PipelineError(f"{what}: {spec[key]} must hold arrays x (images) and y (labels), has {sorted(npz)}")
        x = npz["x"]
        shape_ok = x.ndim == 3 if channels == 1 else (x.ndim == 4 and x.shape[3] == channels)
        if x.dtype != np.uint8 or not shape_ok:
            want = "uint8[N, H, W]" if channels == 1 else f"uint8[N, H, W, {channels}]"
            raise PipelineError(f"{what}: x must be {want} for channels: {channels}, got {x.dtype} with shape {x.shape}")
        if len(np.asarray(npz["y"])) != len(x):
            raise PipelineError(f"{what}: x has {len(x)} images but y has {len(np.asarray(npz['y']))} labels")
        splits[split] = npz
    labels = {split: check_labels(np.asarray(npz["y"]), 2**62, f"datasets.{name}.{KEYS[split]}: y")
              for split, npz in splits.items()}
    if "class_names" in splits["train"]:
        class_names = [str(c) for c in splits["train"]["class_names"]]
    else:
        class_names = [str(c) for c in range(1 + max(int(y.max()) if len(y) else 0 for y in labels.values()))]
    arrays = {"class_names": class_names}
    for split, npz in splits.items():
        what = f"datasets.{name}.{KEYS[split]}"
        arrays[f"{split}_labels"] = check_labels(labels[split], len(class_names), f"{what}: y")
        if spec["resize"]:
            for field, value in stack_images(list(npz["x"]), spec["resize"], what).items():
                arrays[f"{split}_{field}"] = value
        else:
            arrays[f"{split}_images"] = npz["x"]
    _check_same_size(arrays, name)
    log(f"{name}: read {len(arrays['train_labels'])} training and {len(arrays['test_labels'])} test images")
    return arrays
