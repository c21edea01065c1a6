"""Deterministic .npz files: uncompressed, fixed member timestamps, so that equal arrays give equal bytes."""

import zipfile

import numpy as np

from .atomic import atomic_path


def write_npz(path, arrays: dict) -> None:
    """An uncompressed .npz whose bytes depend only on ``arrays`` (fixed member timestamps), written atomically."""
    with atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as archive:
        for name, array in arrays.items():
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            with archive.open(info, "w", force_zip64=True) as f:
                np.lib.format.write_array(f, np.asarray(array), allow_pickle=False)
