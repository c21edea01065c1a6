"""Deterministic .npz files: uncompressed, fixed member timestamps, so that equal arrays give equal bytes.

Also written member by member (``streamed_npz``: an array of any size from its chunks of rows, in bounded
memory) and read in place (``stored_array``: where an uncompressed member's bytes lie in the file, so that
rows are read without loading the array).
"""

import zipfile
from contextlib import contextmanager

import numpy as np

from .atomic import atomic_path
from .errors import PipelineError

FIXED_TIME = (1980, 1, 1, 0, 0, 0)


def write_npz(path, arrays: dict) -> None:
    """An uncompressed .npz whose bytes depend only on ``arrays`` (fixed member timestamps), written atomically."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            add_array(archive, name, array)


def add_array(archive: zipfile.ZipFile, name: str, array) -> None:
    """Member ``name``.npy holding ``array`` (no pickles)."""
    info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
    with archive.open(info, "w", force_zip64=True) as f:
        np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)


@contextmanager
def array_member(archive: zipfile.ZipFile, name: str, dtype, shape):
    """Member ``name``.npy of ``dtype`` and ``shape``, written from its rows in order: yields ``write(rows)``
    (rows: array[m, *shape[1:]], C-ordered bytes appended). Exactly shape[0] rows must be written."""
    dtype = np.dtype(dtype)
    shape = tuple(int(s) for s in shape)
    info = zipfile.ZipInfo(f"{name}.npy", date_time=FIXED_TIME)
    written = 0
    with archive.open(info, "w", force_zip64=True) as f:
        header = {"descr": np.lib.format.dtype_to_descr(dtype), "fortran_order": False, "shape": shape}
        try:  # the header np.lib.format.write_array writes: version 1.0 where it fits
            np.lib.format.write_array_header_1_0(f, header)
        except ValueError:
            np.lib.format.write_array_header_2_0(f, header)

        def write(rows):
            nonlocal written
            rows = np.ascontiguousarray(rows, dtype=dtype)
            if rows.shape[1:] != shape[1:] or written + len(rows) > shape[0]:
                raise ValueError(f"{name}: rows of shape {rows.shape} do not continue an array of shape {shape} "
                                 f"after {written} rows")
            f.write(rows.data if rows.size else b"")
            written += len(rows)

        yield write
        if written != shape[0]:
            raise ValueError(f"{name}: {written} rows written of {shape[0]}")


@contextmanager
def streamed_npz(path):
    """An uncompressed .npz written member by member, atomically: yields the open ZipFile for ``add_array`` and
    ``array_member``; ``path`` appears only once every member is written."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        yield archive


def stored_array(path, name: str) -> tuple[int, np.dtype, tuple]:
    """Where member ``name``.npy of an .npz lies: (offset of its first data byte, dtype, shape).

    Only for an uncompressed (stored), C-ordered member without pickles, as ``np.savez`` and the writers above
    write them; PipelineError otherwise (or ValueError, OSError, BadZipFile for a damaged file).
    """
    with open(path, "rb") as f, zipfile.ZipFile(f) as archive:
        info = archive.getinfo(f"{name}.npy")
        if info.compress_type != zipfile.ZIP_STORED:
            raise PipelineError(f"{path}: member {name}.npy is compressed; it cannot be read in place")
        f.seek(info.header_offset)
        local = f.read(30)
        if len(local) != 30 or local[:4] != b"PK\x03\x04":
            raise ValueError(f"{name}.npy: bad local header")
        name_len, extra_len = int.from_bytes(local[26:28], "little"), int.from_bytes(local[28:30], "little")
        f.seek(info.header_offset + 30 + name_len + extra_len)
        version = np.lib.format.read_magic(f)
        read_header = {(1, 0): np.lib.format.read_array_header_1_0,
                       (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read_header is None:
            raise ValueError(f"{name}.npy: npy format version {version}")
        shape, fortran, dtype = read_header(f)
        if fortran or dtype.hasobject:
            raise ValueError(f"{name}.npy: not a C-ordered array of plain values")
        offset = f.tell()
        if offset - (info.header_offset + 30 + name_len + extra_len) + int(np.prod(shape)) * dtype.itemsize \
                != info.file_size:
            raise ValueError(f"{name}.npy: {info.file_size} bytes do not hold {shape} {dtype}")
        return offset, dtype, tuple(int(s) for s in shape)
