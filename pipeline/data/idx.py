"""Reader for the IDX format of the official MNIST files (optionally gzip-compressed)."""

import gzip

import numpy as np

from ..errors import PipelineError
from .images import split_shapes

_UBYTE = 0x08

# The layout MNIST and Fashion-MNIST share: file stems and the arrays' shapes.
MNIST_LAYOUT_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
MNIST_LAYOUT_SHAPES = split_shapes(60000, 10000, (28, 28))


def parse_idx(data: bytes, what: str) -> np.ndarray:
    """Parse IDX bytes holding unsigned bytes: magic 0x0000_08_<ndim>, big-endian int32 dims, data."""
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as err:
            raise PipelineError(f"{what}: corrupt gzip stream ({err}); replace the file with the official one") from None
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] != _UBYTE:
        raise PipelineError(f"{what}: not an IDX file of unsigned bytes (bad magic number); replace it with the official file")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise PipelineError(f"{what}: truncated IDX header; replace the file with the official one")
    shape = tuple(int(x) for x in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    expected = int(np.prod(shape)) if shape else 1
    if len(data) - header != expected:
        raise PipelineError(
            f"{what}: IDX header announces shape {shape} ({expected} bytes) but {len(data) - header} bytes follow; "
            "the file is truncated or corrupt, replace it with the official one"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape).copy()


def encode_idx(array: np.ndarray) -> bytes:
    """Encode a uint8 array as IDX bytes (used by tests to build official-format files)."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    head = bytes([0, 0, _UBYTE, array.ndim]) + np.asarray(array.shape, dtype=">i4").tobytes()
    return head + array.tobytes()
