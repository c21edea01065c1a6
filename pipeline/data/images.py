"""Helpers shared by the image datasets: decoding, resizing, hashing of original images, checks.

Variable-size images (GTSRB, folders of images) are stored resized in the prepared form, but a
sample's partition must depend on the image as published (docs/design.md#partitioning). For every such image the
prepared split therefore also keeps

- ``original_pixel_sum``: int64, the sum of all uint8 values of the original decoded image (all
  channels), and
- ``original_sha256``: uint8[32], SHA-256 of the original decoded image's C-ordered bytes
  (uint8[H, W, C] or uint8[H, W], nothing else prefixed or appended),

which are exactly what the ``pixel_sum`` and ``sha256`` hashes compute on fixed-size images.
"""

import hashlib
import io

import numpy as np

from ..errors import PipelineError

MODES = {1: "L", 3: "RGB"}


def decode_image(data: bytes, what: str, channels: int = 3) -> np.ndarray:
    """Decode an image file's bytes (any format Pillow reads: ppm, png, jpeg, ...).

    Returns uint8[H, W, 3] for ``channels`` 3 (converted to RGB) or uint8[H, W] for 1 (to L).
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            return np.asarray(image.convert(MODES[channels]), dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as err:
        raise PipelineError(f"{what}: not a readable image ({type(err).__name__}: {err}); replace the file") from None


def resize_image(image: np.ndarray, size) -> np.ndarray:
    """Pillow ``Image.resize((W, H), Image.Resampling.BILINEAR)`` of uint8[h, w(, C)] to uint8[H, W(, C)].

    Pillow's bilinear filter widens its support when shrinking (it averages over the covered
    pixels), so downscaling does not alias.
    """
    from PIL import Image

    height, width = int(size[0]), int(size[1])
    if image.shape[:2] == (height, width):
        return image
    return np.asarray(Image.fromarray(image).resize((width, height), Image.Resampling.BILINEAR), dtype=np.uint8)


def original_hash_inputs(image: np.ndarray) -> tuple[int, bytes]:
    """(sum of all uint8 values, SHA-256 digest of the C-ordered bytes) of one decoded image."""
    image = np.ascontiguousarray(image, dtype=np.uint8)
    return int(image.sum(dtype=np.int64)), hashlib.sha256(image.tobytes()).digest()


def split_shapes(n_train: int, n_test: int, image_shape: tuple) -> dict:
    """The shapes a dataset's prepared arrays must have: {train_images, train_labels, test_images, test_labels}."""
    return {"train_images": (n_train, *image_shape), "train_labels": (n_train,),
            "test_images": (n_test, *image_shape), "test_labels": (n_test,)}


def original_hash_arrays(images) -> dict:
    """The hash inputs of every image, the one form the package passes them in:
    {"pixel_sum": int64[N], "sha256": uint8[N, 32]} (original_hash_inputs per image)."""
    sums = np.empty(len(images), dtype=np.int64)
    digests = np.empty((len(images), 32), dtype=np.uint8)
    for i, image in enumerate(images):
        total, digest = original_hash_inputs(image)
        sums[i] = total
        digests[i] = np.frombuffer(digest, dtype=np.uint8)
    return {"pixel_sum": sums, "sha256": digests}


def stack_images(images: list, size, what: str) -> dict:
    """Stack decoded images into the prepared arrays.

    ``images``: list of uint8[h_i, w_i(, C)]. With ``size`` (H, W) every image is resized and the
    result also holds the original images' hash inputs: {"images": uint8[N, H, W(, C)],
    "originals": original_hash_arrays(images)}. With ``size`` None all images must have one size
    and only "images" is returned.
    """
    if size is None:
        shapes = {im.shape for im in images}
        if len(shapes) > 1:
            first, other = sorted(shapes)[:2]
            raise PipelineError(f"{what}: images have different sizes ({first} and {other}, ...); "
                                "set resize: [H, W] for this dataset in params.yaml")
        if not images:
            raise PipelineError(f"{what}: no images found")
        return {"images": np.stack(images)}
    originals = original_hash_arrays(images)
    resized = [resize_image(image, size) for image in images]
    if not resized:
        raise PipelineError(f"{what}: no images found")
    return {"images": np.stack(resized), "originals": originals}


def check_labels(labels: np.ndarray, n_classes: int, what: str) -> np.ndarray:
    """Labels as int64[N], each in 0..n_classes-1; otherwise a clear error."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise PipelineError(f"{what}: labels must be a 1-D integer array, got {labels.dtype} with shape {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        bad = labels[(labels < 0) | (labels >= n_classes)][0]
        raise PipelineError(f"{what}: label {int(bad)} is out of range 0..{n_classes - 1}")
    return labels.astype(np.int64)


def md5_of(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def check_md5(data: bytes, expected: str, what: str, fix: str) -> None:
    """A clear error unless ``data`` has the MD5 ``expected`` (the digest a publisher documents)."""
    actual = md5_of(data)
    if actual != expected:
        raise PipelineError(f"{what}: MD5 {actual} does not match the official {expected}; the file is corrupt "
                            f"or not the official one: {fix}")
