"""Prepared splits: ``data/prepared/<dataset>/{train,test}.npz``, written by the prepare stage.

Schema: ``images`` uint8[N, H, W] or uint8[N, H, W, C], ``labels`` int[N], ``class_names`` str[C],
``dataset``, ``images_sha256`` and ``labels_sha256`` (SHA-256 of the arrays' C-ordered bytes), and, for
datasets whose images were resized (GTSRB, user sets with ``resize``), the original images' hash
inputs ``original_pixel_sum`` int64[N] and ``original_sha256`` uint8[N, 32] with their own digest
``originals_sha256``. Readers check the stored digests (and a built-in dataset's official ones).

The file is an uncompressed npz, written member by member (images from chunks of rows: memory does not grow
with N). Jobs that need a few rows of a large training split read just those rows from the file
(``open_split_images``: ``StoredImages``); the partition step checks the whole file against its stored
digest, and every later job checks the rows it reads against the per-sample digests in the partition files.
"""

import hashlib
import os
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import PipelineError
from ..npz import add_array, array_member, stored_array, streamed_npz
from ..resources import CHUNK_BYTES

SPLITS = ("train", "test")
FIX = "delete it and run snakemake again (prepare rewrites it)"


def array_digest(array: np.ndarray) -> str:
    """SHA-256 of the C-ordered bytes of ``array``."""
    return hashlib.sha256(np.ascontiguousarray(array).reshape(-1).view(np.uint8).data).hexdigest()  # no copy


def originals_digest(originals: dict) -> str:
    """SHA-256 over the C-ordered bytes of the hash inputs' pixel_sum (int64) then sha256 (uint8)."""
    return hashlib.sha256(np.ascontiguousarray(originals["pixel_sum"], dtype=np.int64).tobytes()
                          + np.ascontiguousarray(originals["sha256"], dtype=np.uint8).tobytes()).hexdigest()


def chunk_rows(n_rows: int, row_bytes: int) -> list[tuple[int, int]]:
    """Consecutive (start, stop) row ranges of about CHUNK_BYTES each, covering 0 .. n_rows."""
    step = max(1, CHUNK_BYTES // max(1, row_bytes))
    return [(start, min(start + step, n_rows)) for start in range(0, n_rows, step)]


@dataclass(frozen=True, eq=False)
class ImageChunks:
    """Images made chunk by chunk, never whole: ``shape`` (uint8[N, ...]) and ``chunks()``, an iterator of
    (images uint8[m, ...], the original images' hash inputs of those rows or None) covering the N rows in order."""
    shape: tuple
    chunks: Callable[[], Iterator]
    dtype = np.dtype(np.uint8)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __len__(self) -> int:
        return self.shape[0]


def save_split(path, images, labels, class_names, dataset: str, originals: dict | None = None) -> dict:
    """Write a prepared split atomically; returns its ``images_sha256`` and ``labels_sha256``.

    ``images``: uint8[N, ...] or ImageChunks (written chunk by chunk: the originals then come with the chunks).
    ``originals``: the original images' hash inputs {"pixel_sum": int64[N], "sha256": uint8[N, 32]}
    (data.images.original_hash_arrays), or None.
    """
    chunks = images.chunks() if isinstance(images, ImageChunks) else iter([(images, None)])
    digest, parts = hashlib.sha256(), []
    with streamed_npz(path) as archive:
        with array_member(archive, "images", np.uint8, images.shape) as write:
            for rows, rows_originals in chunks:
                rows = np.ascontiguousarray(rows, dtype=np.uint8)
                write(rows)
                digest.update(rows.data if rows.size else b"")
                if rows_originals is not None:
                    parts.append(rows_originals)
        if parts:
            originals = {key: np.concatenate([p[key] for p in parts]) for key in ("pixel_sum", "sha256")}
        digests = {"images_sha256": digest.hexdigest(), "labels_sha256": array_digest(labels)}
        members = {"labels": labels, "class_names": np.asarray(class_names), "dataset": np.asarray(dataset),
                   **{key: np.asarray(value) for key, value in digests.items()}}
        if originals is not None:
            members.update(original_pixel_sum=np.asarray(originals["pixel_sum"], dtype=np.int64),
                           original_sha256=np.asarray(originals["sha256"], dtype=np.uint8),
                           originals_sha256=np.asarray(originals_digest(originals)))
        for name, value in members.items():
            add_array(archive, name, value)
    return digests


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


@dataclass(frozen=True, eq=False)
class StoredImages:
    """A prepared split's images, read from its file when indexed, never all at once.

    Behaves as uint8[n, ...] for ``len``, ``shape``, ``images[ids]`` (ids: int array, list, int or slice;
    rows in the order asked; reads only those rows) and ``np.asarray(images)``. The rows are the file's
    first ``n_file`` images, then ``extra`` (inserted samples, in memory); ``index`` selects the rows of that
    pool this view shows, in order (None: all). The file's bytes are not checked here: see check_images.
    """
    path: str
    offset: int
    row_shape: tuple
    n_file: int
    extra: np.ndarray | None = None
    index: np.ndarray | None = None
    dtype = np.dtype(np.uint8)

    @property
    def n_pool(self) -> int:
        return self.n_file + (0 if self.extra is None else len(self.extra))

    def __len__(self) -> int:
        return self.n_pool if self.index is None else len(self.index)

    @property
    def shape(self) -> tuple:
        return (len(self), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self) * int(np.prod(self.row_shape))

    def head(self, n: int) -> "StoredImages":
        """The pool's first ``n`` file rows, without extra rows or index."""
        return StoredImages(self.path, self.offset, self.row_shape, min(n, self.n_file))

    def with_extra(self, first_id: int, extra: np.ndarray) -> "StoredImages":
        """The file's first ``first_id`` rows followed by ``extra`` (rows first_id, first_id + 1, ...)."""
        return StoredImages(self.path, self.offset, self.row_shape, min(first_id, self.n_file),
                            np.asarray(extra, dtype=np.uint8))

    def subset(self, ids) -> "StoredImages":
        """The rows ``ids`` of this view, as a view."""
        ids = self._pool_ids(ids)
        return StoredImages(self.path, self.offset, self.row_shape, self.n_file, self.extra, ids)

    def _pool_ids(self, key) -> np.ndarray:
        if isinstance(key, slice):
            ids = np.arange(len(self), dtype=np.int64)[key]
        else:
            ids = np.asarray(key, dtype=np.int64)
            if ids.size and (ids.min() < -len(self) or ids.max() >= len(self)):
                raise IndexError(f"row {int(ids.max())} of {len(self)}")
            ids = np.where(ids < 0, ids + len(self), ids)
        return ids if self.index is None else self.index[ids]

    def __getitem__(self, key):
        single = np.ndim(key) == 0 and not isinstance(key, slice)
        ids = self._pool_ids(np.atleast_1d(key) if single else key)
        out = np.empty((len(ids), *self.row_shape), dtype=np.uint8)
        in_file = ids < self.n_file
        if in_file.any():
            out[in_file] = read_rows(self.path, self.offset, self.row_shape, ids[in_file])
        if not in_file.all():
            out[~in_file] = self.extra[ids[~in_file] - self.n_file]
        return out[0] if single else out

    def __array__(self, dtype=None, copy=None):
        rows = self[:]
        return rows if dtype is None else rows.astype(dtype)


def read_rows(path, offset: int, row_shape: tuple, ids: np.ndarray) -> np.ndarray:
    """Rows ``ids`` (int64[m], any order, repeats allowed) of a stored uint8 array: uint8[m, *row_shape].

    Consecutive ids are read with one system call; nothing else of the file is read.
    """
    row_bytes = int(np.prod(row_shape))
    if len(ids) == 0:
        return np.zeros((0, *row_shape), dtype=np.uint8)
    unique, inverse = np.unique(ids, return_inverse=True)
    rows = np.empty((len(unique), row_bytes), dtype=np.uint8)
    breaks = np.flatnonzero(np.diff(unique) != 1) + 1
    starts, stops = np.r_[0, breaks], np.r_[breaks, len(unique)]
    with open(path, "rb", buffering=0) as f:
        for a, b in zip(starts.tolist(), stops.tolist()):
            _pread_into(f.fileno(), memoryview(rows[a:b]).cast("B"), offset + int(unique[a]) * row_bytes, path)
    return rows[inverse.reshape(-1)].reshape(len(ids), *row_shape)


def _pread_into(fd: int, buffer: memoryview, position: int, path) -> None:
    done = 0
    while done < len(buffer):
        n = os.preadv(fd, [buffer[done:done + 2**30]], position + done)
        if n == 0:
            raise PipelineError(f"{path}: prepared data truncated; {FIX}")
        done += n


def open_split_images(path):
    """A prepared split with its images left on disk: (StoredImages, labels int64[N], class_names list[str]).

    Checks the labels against their stored SHA-256 and the stored digests against a built-in dataset's
    official ones. The images are checked where they are used: as a whole by check_images (the partition
    step), row by row against the partition's per-sample digests (every later job).
    """
    from ..data.prepared import DATASETS  # the official digests of built-in datasets

    path = Path(path)
    try:
        with open_split(path) as npz:
            labels = npz["labels"]
            class_names = [str(c) for c in npz["class_names"]]
            dataset = str(npz["dataset"])
            stored = str(npz["images_sha256"]), str(npz["labels_sha256"])
        offset, dtype, shape = stored_array(path, "images")
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError, PipelineError) as err:
        raise PipelineError(f"{path}: corrupt prepared data ({type(err).__name__}); {FIX}") from None
    if dtype != np.uint8 or len(shape) < 2 or shape[0] != len(labels) or array_digest(labels) != stored[1]:
        raise PipelineError(f"{path}: contents do not match their stored SHA-256; {FIX}")
    module = DATASETS.get(dataset)
    split = path.stem
    if module is not None and split in SPLITS and f"{split}_images" in module.DIGESTS:
        if stored != (module.DIGESTS[f"{split}_images"], module.DIGESTS[f"{split}_labels"]):
            raise PipelineError(f"{path}: not the official {dataset} {split} split; {FIX}")
    images = StoredImages(str(path), offset, shape[1:], shape[0])
    return images, labels.astype(np.int64), class_names


def check_images(path):
    """open_split_images, once the images are read in chunks and checked against their stored SHA-256 (bounded
    memory): (StoredImages, labels int64[N], class_names)."""
    images, labels, class_names = open_split_images(path)
    with open_split(Path(path)) as npz:
        stored = str(npz["images_sha256"])
    digest = hashlib.sha256()
    for start, stop in chunk_rows(len(images), int(np.prod(images.row_shape))):
        digest.update(images[start:stop].data)
    if digest.hexdigest() != stored:
        raise PipelineError(f"{path}: contents do not match their stored SHA-256; {FIX}")
    return images, labels, class_names


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
