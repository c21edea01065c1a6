"""CIFAR-10 from the official "python version" archive, tried in the configured sources' order.

1. ``local``:    ``cifar-10-python.tar.gz`` in the raw folder (``data/raw/cifar10/``), or the folder
                 ``cifar-10-batches-py/`` extracted from it.
2. ``download``: the archive from the official page (5 s timeout per network operation).

The archive holds ``cifar-10-batches-py/data_batch_1`` .. ``data_batch_5`` (10,000 images each),
``test_batch`` and ``batches.meta``: Python pickles of dicts whose ``data`` is uint8[10000, 3072]
(1024 red, then 1024 green, then 1024 blue values per image, rows top to bottom) and ``labels``
a list of ints 0..9; ``batches.meta`` has ``label_names``. They are read with the numpy-only
unpickler (``safe_pickle``), which refuses any other global, so a pickle carrying an object or a
function call ends in a clear error and is never executed.

What is verified: the archive's MD5 as published on the CIFAR page (c58f3010...) and the MD5 of
every batch file (the values torchvision and other loaders check; they hold for the members of
the official archive). SHA-256 digests of the prepared arrays could not be computed on the
offline machine this was written on (the archive cannot be downloaded there), so ``DIGESTS`` is
empty: the prepared files record their own SHA-256 digests, which ``load_split`` checks.
"""

import tarfile
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from .images import check_labels, check_md5, split_shapes
from .safe_pickle import load_numpy_pickle
from .sources import download_file, first_available

TITLE = "CIFAR-10"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"  # published on https://www.cs.toronto.edu/~kriz/cifar.html
MEMBER_MD5 = {
    "data_batch_1": "c99cafc152244af753f735de768cd75f",
    "data_batch_2": "d4bba439e000b95fd0a9bffe97cbabec",
    "data_batch_3": "54ebc095f3ab1f0389bbae665268c751",
    "data_batch_4": "634d18415352ddfa80567beed471001a",
    "data_batch_5": "482c414d41f54cd18b22e5b47cb7c3cb",
    "test_batch": "40351d587109b95175f43aff81a1287e",
    "batches.meta": "5ff9c542aee3614f3951f8cda6e48888",
}
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCHES = ["test_batch"]
CLASS_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]

DIGESTS: dict = {}  # SHA-256 of the prepared arrays: not obtainable offline (see the module docstring)
SHAPES = split_shapes(50000, 10000, (32, 32, 3))


def where_to_put(raw_dir) -> str:
    return (f"place the official CIFAR-10 python archive {ARCHIVE} (from {URL}) in {raw_dir}/, "
            f"or its extracted folder as {raw_dir}/{FOLDER}/ (data_batch_1 .. data_batch_5, test_batch, batches.meta)")


def _text(value) -> str:
    return value.decode("latin1") if isinstance(value, bytes) else str(value)


def _plain_dict(obj, what: str) -> dict:
    """A batch dict with str keys (Python 2 pickles give str, other writers bytes)."""
    if not isinstance(obj, dict):
        raise PipelineError(f"{what}: expected a pickled dict, got {type(obj).__name__}; not an official CIFAR-10 batch")
    return {_text(k): v for k, v in obj.items()}


def parse_batch(raw: bytes, what: str, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """One pickled batch -> (images uint8[N, 32, 32, 3], labels int64[N])."""
    batch = _plain_dict(load_numpy_pickle(raw, what), what)
    if "data" not in batch or "labels" not in batch:
        raise PipelineError(f"{what}: batch lacks 'data' or 'labels' (keys: {sorted(batch)}); not a CIFAR-10 batch")
    data = batch["data"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        shape = getattr(data, "shape", None)
        raise PipelineError(f"{what}: 'data' must be uint8[N, 3072], got {getattr(data, 'dtype', type(data).__name__)} "
                            f"with shape {shape}; not an official CIFAR-10 batch")
    try:
        labels = np.asarray(batch["labels"])
    except (TypeError, ValueError):
        labels = np.asarray([])
    labels = check_labels(labels, n_classes, what)
    if len(labels) != len(data):
        raise PipelineError(f"{what}: {len(data)} images but {len(labels)} labels")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels


def parse_meta(raw: bytes, what: str) -> list[str]:
    meta = _plain_dict(load_numpy_pickle(raw, what), what)
    names = meta.get("label_names")
    if not isinstance(names, list) or len(names) != 10:
        raise PipelineError(f"{what}: 'label_names' must be a list of 10 class names; not the official batches.meta")
    return [_text(n) for n in names]


def arrays_from_members(read, origin: str) -> dict:
    """The prepared arrays from a reader of member files: read(name) -> bytes (MD5-checked here)."""
    def member(name):
        data = read(name)
        check_md5(data, MEMBER_MD5[name], f"{origin}: {name}", f"replace it with the official {ARCHIVE}")
        return data

    class_names = parse_meta(member("batches.meta"), f"{origin}: batches.meta")
    arrays = {"class_names": class_names}
    for split, names in (("train", TRAIN_BATCHES), ("test", TEST_BATCHES)):
        parts = [parse_batch(member(name), f"{origin}: {name}") for name in names]
        arrays[f"{split}_images"] = np.concatenate([p[0] for p in parts])
        arrays[f"{split}_labels"] = np.concatenate([p[1] for p in parts]).astype(np.uint8)
    return arrays


def read_archive(path: Path) -> dict:
    """Arrays from cifar-10-python.tar.gz after its MD5 check."""
    data = path.read_bytes()
    check_md5(data, ARCHIVE_MD5, str(path), "delete it and place the official archive there")
    import io

    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            def read(name):
                try:
                    return tar.extractfile(f"{FOLDER}/{name}").read()
                except (KeyError, AttributeError):
                    raise PipelineError(f"{path}: member {FOLDER}/{name} missing; not the official {ARCHIVE}") from None

            return arrays_from_members(read, str(path))
    except (tarfile.TarError, OSError, EOFError) as err:
        raise PipelineError(f"{path}: malformed archive ({type(err).__name__}: {err}); replace it with the official {ARCHIVE}") from None


def read_folder(folder: Path) -> dict:
    def read(name):
        path = folder / name
        if not path.is_file():
            raise PipelineError(f"{folder}: {name} missing; {where_to_put(folder.parent)}")
        return path.read_bytes()

    return arrays_from_members(read, str(folder))


def from_local(raw_dir: Path, log):
    """The official archive, or its extracted folder, in ``raw_dir``; None when neither is there."""
    if (raw_dir / ARCHIVE).is_file():
        log(f"cifar10: reading {raw_dir / ARCHIVE}")
        return read_archive(raw_dir / ARCHIVE)
    if (raw_dir / FOLDER).is_dir():
        log(f"cifar10: reading {raw_dir / FOLDER}/")
        return read_folder(raw_dir / FOLDER)
    return None


def from_download(raw_dir: Path, log):
    """Download the official archive into ``raw_dir``; None when the network fails."""
    if not download_file(URL, raw_dir / ARCHIVE, log, "cifar10"):
        return None
    return read_archive(raw_dir / ARCHIVE)


READERS = {"local": from_local, "download": from_download}


def fetch(raw_dir, sources, log=print) -> dict:
    """Arrays (uint8 images N x 32 x 32 x 3, uint8 labels, class names) from the first source that has them."""
    return first_available(TITLE, READERS, raw_dir, sources, where_to_put(raw_dir), log)
