"""ImageNet 64 x 64 (Chrabaszcz et al., 2017), supplied by the user in its official npz format.

``datasets.<name>: {format: imagenet64, path: FOLDER, test_path: null or FOLDER, ...}`` in
params.yaml. FOLDER holds ``train_data_batch_1.npz`` .. ``train_data_batch_10.npz``; the test
split is ``val_data.npz`` in ``test_path`` (or in ``path`` when ``test_path`` is null). Every file
has ``data``: uint8[N, 3 * S * S] with each image's red plane, then green, then blue (rows top to
bottom), and ``labels``: 1-based class numbers 1..1000. The same code reads the 32 x 32 and
16 x 16 variants (S is taken from the row length).

Prepared: images uint8[N, S, S, 3], labels 0..999 (label - 1), class names "1" .. "1000" (the
official 1-based numbers). The files are read with ``allow_pickle=False``. There is no fixed
digest for user-supplied data: the prepared files record the SHA-256 of what was prepared and
the prepare step logs them.
"""

import zipfile
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..progress import bar
from .images import check_labels, stack_images

TITLE = "ImageNet 64x64"
N_CLASSES = 1000
TRAIN_FILES = [f"train_data_batch_{i}.npz" for i in range(1, 11)]
TEST_FILE = "val_data.npz"
URL = "https://image-net.org/download-images.php (Downsampled ImageNet 64x64, npz format)"


def where_to_put(train_dir, test_dir) -> str:
    return (f"place the official downsampled ImageNet npz files ({TRAIN_FILES[0]} .. {TRAIN_FILES[-1]}) in "
            f"{train_dir}/ and {TEST_FILE} in {test_dir}/ (from {URL})")


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One npz batch -> (images uint8[N, S, S, 3], labels int64[N] in 0..999)."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in ("data", "labels") if k not in npz.files]
            if missing:
                raise PipelineError(f"{path}: missing array {missing[0]!r}; an ImageNet npz batch holds 'data' and "
                                    "'labels'")
            data, labels = npz["data"], npz["labels"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{path}: not a readable npz file ({type(err).__name__}: {err}); replace it") from None
    side = int(round((data.shape[1] / 3) ** 0.5)) if data.ndim == 2 else 0
    if data.dtype != np.uint8 or data.ndim != 2 or 3 * side * side != data.shape[1] or side == 0:
        raise PipelineError(f"{path}: 'data' must be uint8[N, 3*S*S] (12288 for 64 x 64), got {data.dtype} "
                            f"with shape {data.shape}")
    labels = check_labels(np.asarray(labels).ravel() - 1, N_CLASSES, f"{path} (labels minus 1; official labels are 1..1000)")
    if len(labels) != len(data):
        raise PipelineError(f"{path}: {len(data)} images but {len(labels)} labels")
    return np.ascontiguousarray(data.reshape(-1, 3, side, side).transpose(0, 2, 3, 1)), labels


def load(spec: dict, log) -> dict:
    """Prepared arrays of a user's ImageNet64 folder (see the module docstring)."""
    train_dir = Path(spec["path"])
    test_dir = Path(spec["test_path"] or spec["path"])
    missing = [str(train_dir / n) for n in TRAIN_FILES if not (train_dir / n).is_file()]
    missing += [str(test_dir / TEST_FILE)] if not (test_dir / TEST_FILE).is_file() else []
    if missing:
        raise PipelineError(f"{TITLE} files missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): "
                            f"{where_to_put(train_dir, test_dir)}")
    arrays = {"class_names": [str(c) for c in range(1, N_CLASSES + 1)]}
    for split, paths in (("train", [train_dir / n for n in TRAIN_FILES]), ("test", [test_dir / TEST_FILE])):
        parts = [read_batch(p) for p in bar(paths, desc=f"imagenet64 {split}")]
        sides = {p[0].shape[1] for p in parts}
        if len(sides) > 1:
            raise PipelineError(f"{train_dir}: batches have different image sizes {sorted(sides)}")
        images = np.concatenate([p[0] for p in parts])
        arrays[f"{split}_labels"] = np.concatenate([p[1] for p in parts])
        if spec.get("resize"):
            stacked = stack_images(list(images), spec["resize"], f"{TITLE} ({split})")
            arrays[f"{split}_images"] = stacked["images"]
            arrays[f"{split}_originals"] = stacked["originals"]
        else:
            arrays[f"{split}_images"] = images
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise PipelineError(f"{TITLE}: train images are {arrays['train_images'].shape[1:]} but test images "
                            f"{arrays['test_images'].shape[1:]}; supply both splits at one resolution")
    log(f"{TITLE}: read {len(arrays['train_labels'])} training and {len(arrays['test_labels'])} test images")
    return arrays
