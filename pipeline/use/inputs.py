"""Inputs to classify: image files, npz arrays and IDX files, converted as the dataset's preparation converts
images (docs/using.md#inputs).

An ensemble's models take uint8 images of one shape: ``[H, W]`` (grey) or ``[H, W, 3]`` (RGB), the shape of its
prepared training images. An image file is decoded with Pillow and converted to grey (``L``) or RGB, as the
preparation of folder datasets converts it (data/images.py). A size other than ``[H, W]`` is resized with
Pillow's bilinear filter when the dataset's preparation resizes (GTSRB, user datasets with ``resize``), and
refused otherwise (MNIST, Fashion-MNIST, CIFAR-10 and user datasets without ``resize`` store images as
published). Arrays (npz ``x``, IDX) must already be uint8 with the right channel count; their size is treated
as an image file's.
"""

import io
import zipfile
from pathlib import Path

import numpy as np

from ..data.idx import parse_idx
from ..data.images import decode_image, resize_image
from ..errors import PipelineError

IDX_SUFFIXES = ("ubyte", ".idx", "ubyte.gz", ".idx.gz")


def shape_text(shape) -> str:
    """[28, 28] -> '28x28 grey', [32, 32, 3] -> '32x32 RGB'."""
    return f"{shape[0]}x{shape[1]} " + ("grey" if len(shape) == 2 else "RGB")


def fit_image(image: np.ndarray, shape: tuple, resize: bool, what: str) -> np.ndarray:
    """One uint8 image [h, w] or [h, w, 3] as the models' input uint8 ``shape``, resized (bilinear, as prepare)
    when ``resize``; a wrong channel count, or a wrong size without ``resize``, is a PipelineError."""
    shape = tuple(int(s) for s in shape)
    if image.dtype != np.uint8:
        raise PipelineError(f"{what}: pixels are {image.dtype}; give uint8 values 0..255, as the prepared images are")
    channels = 1 if len(shape) == 2 else shape[2]
    if image.ndim == 3 and image.shape[2] == 1 and len(shape) == 2:
        image = image[:, :, 0]  # [h, w, 1]: grey
    has = 1 if image.ndim == 2 else (image.shape[2] if image.ndim == 3 else None)
    if has != channels or (image.ndim == 3 and len(shape) == 2):
        raise PipelineError(f"{what}: an array of shape {list(image.shape)}, but the models take {shape_text(shape)} "
                            f"images {list(shape)}; convert it (image files are converted: save it as PNG)")
    if image.shape[:2] != shape[:2]:
        if not resize:
            raise PipelineError(f"{what}: {image.shape[0]}x{image.shape[1]} pixels, but the models take "
                                f"{shape_text(shape)} images and their dataset's preparation does not resize; resize "
                                f"it to {shape[0]}x{shape[1]} first")
        image = resize_image(image, shape[:2])
    return np.ascontiguousarray(image)


def decode_file(data: bytes, name: str, shape: tuple, resize: bool) -> list[tuple[str, np.ndarray]]:
    """[(input name, uint8 image of ``shape``)] from one file's bytes: npz (every image of ``x``), IDX (every image)
    or any image format Pillow reads. ``name`` names the input in messages and results (``name[i]`` for the i-th
    image of an array file)."""
    lower = name.lower()
    if data[:2] == b"PK" or lower.endswith(".npz"):
        arrays = npz_images(data, name)
    elif lower.endswith(IDX_SUFFIXES) or data[:2] == b"\x00\x00" or data[:2] == b"\x1f\x8b":
        arrays = idx_images(data, name)
    else:
        channels = 1 if len(shape) == 2 else 3
        return [(name, fit_image(decode_image(data, name, channels), shape, resize, name))]
    if len(shape) == 2 and arrays.ndim in (3, 4) and arrays.shape[-1] == 3:
        raise PipelineError(f"{name}: RGB images (an array of shape {list(arrays.shape)}), but the models take "
                            f"{shape_text(shape)} images; convert them to grey (image files are converted: save them "
                            "as PNG)")
    if arrays.ndim == len(shape):  # one image
        return [(name, fit_image(arrays, shape, resize, name))]
    return [(f"{name}[{i}]", fit_image(a, shape, resize, f"{name}[{i}]")) for i, a in enumerate(arrays)]


def npz_images(data: bytes, name: str) -> np.ndarray:
    """The array ``x`` of an npz file (read without pickles)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            if "x" not in npz.files:
                raise PipelineError(f"{name}: an npz file without an array x (it has {', '.join(npz.files) or 'none'});"
                                    " store the images as x, uint8[N, H, W] or [N, H, W, 3]")
            return npz["x"]
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as err:
        raise PipelineError(f"{name}: not a readable npz file ({type(err).__name__}: {err})") from None


def idx_images(data: bytes, name: str) -> np.ndarray:
    """The array of an IDX file (MNIST's format), gzipped or not."""
    return parse_idx(data, name)


def read_inputs(paths, shape: tuple, resize: bool) -> list[tuple[str, np.ndarray]]:
    """[(input name, uint8 image of ``shape``)] for every image in the files at ``paths``, in order."""
    out = []
    for path in paths:
        path = Path(path)
        if not path.is_file():
            raise PipelineError(f"{path}: no such file; give image files (PNG, JPEG, ...), npz files with x, or IDX "
                                "files")
        out += decode_file(path.read_bytes(), str(path), shape, resize)
    if not out:
        raise PipelineError("no images to classify: the files given hold none")
    return out
