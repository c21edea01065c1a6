"""ImageNet 64 x 64 (Chrabaszcz et al., 2017), supplied by the user in its official npz format.

``datasets.<name>: {format: imagenet64, path: FOLDER, test_path: null or FOLDER, ...}`` in
params.yaml. FOLDER holds ``train_data_batch_1.npz`` .. ``train_data_batch_10.npz``; the test
split is ``val_data.npz`` in ``test_path`` (or in ``path`` when ``test_path`` is null). Every file
has ``data``: uint8[N, 3 * S * S] with each image's red plane, then green, then blue (rows top to
bottom), and ``labels``: 1-based class numbers 1..1000. The same code reads the 32 x 32 and
16 x 16 variants (S is taken from the row length).

Prepared: images uint8[N, S, S, 3], labels 0..999 (label - 1), class names "1" .. "1000" (the
official 1-based numbers). The files are read with ``allow_pickle=False``, a chunk of rows at a time
(compressed or not): preparing the 1.28 million training images holds one chunk in memory, not the
dataset. There is no fixed digest for user-supplied data: the prepared files record the SHA-256 of
what was prepared and the prepare step logs them.

``write_synthetic`` writes random files in this format (any N, seeded) for tests and scaling benchmarks.
"""

import zipfile
from pathlib import Path

import numpy as np

from ..artifacts.splits import ImageChunks, chunk_rows
from ..errors import PipelineError
from ..npz import add_array, array_member, streamed_npz
from ..progress import bar
from .images import check_labels, stack_images

TITLE = "ImageNet 64x64"
N_CLASSES = 1000
TRAIN_FILES = [f"train_data_batch_{i}.npz" for i in range(1, 11)]
TEST_FILE = "val_data.npz"
URL = "https://image-net.org/download-images.php (Downsampled ImageNet 64x64, npz format)"
READ_ERRORS = (OSError, ValueError, zipfile.BadZipFile, EOFError, KeyError)


def where_to_put(train_dir, test_dir) -> str:
    return (f"place the official downsampled ImageNet npz files ({TRAIN_FILES[0]} .. {TRAIN_FILES[-1]}) in "
            f"{train_dir}/ and {TEST_FILE} in {test_dir}/ (from {URL})")


def _unreadable(path, err) -> PipelineError:
    return PipelineError(f"{path}: not a readable npz file ({type(err).__name__}: {err}); replace it")


def _open_member(archive: zipfile.ZipFile, path, name: str):
    """(open member file positioned at the data, shape, dtype) of ``name``.npy."""
    if f"{name}.npy" not in archive.namelist():
        raise PipelineError(f"{path}: missing array {name!r}; an ImageNet npz batch holds 'data' and 'labels'")
    f = archive.open(f"{name}.npy")
    version = np.lib.format.read_magic(f)
    read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                   else np.lib.format.read_array_header_2_0)
    shape, fortran, dtype = read_header(f)
    if fortran or dtype.hasobject:
        raise PipelineError(f"{path}: {name!r} must be a C-ordered array of numbers, got {dtype} "
                            f"{'(Fortran order)' if fortran else ''}")
    return f, tuple(shape), dtype


def batch_info(path: Path) -> tuple[int, int, np.ndarray]:
    """(N, S, labels int64[N] in 0..999) of one npz batch, without reading its images."""
    try:
        with zipfile.ZipFile(path) as archive:
            f, shape, dtype = _open_member(archive, path, "data")
            f.close()
            with np.load(path, allow_pickle=False) as npz:
                if "labels" not in npz.files:
                    raise PipelineError(f"{path}: missing array 'labels'; an ImageNet npz batch holds 'data' and "
                                        "'labels'")
                labels = npz["labels"]
    except PipelineError:
        raise
    except READ_ERRORS as err:
        raise _unreadable(path, err) from None
    side = int(round((shape[1] / 3) ** 0.5)) if len(shape) == 2 else 0
    if dtype != np.uint8 or len(shape) != 2 or side == 0 or 3 * side * side != shape[1]:
        raise PipelineError(f"{path}: 'data' must be uint8[N, 3*S*S] (12288 for 64 x 64), got {dtype} "
                            f"with shape {shape}")
    labels = check_labels(np.asarray(labels).ravel() - 1, N_CLASSES, f"{path} (labels minus 1; official labels are 1..1000)")
    if len(labels) != shape[0]:
        raise PipelineError(f"{path}: {shape[0]} images but {len(labels)} labels")
    return shape[0], side, labels


def batch_images(path: Path, n: int, side: int):
    """The images of one npz batch, a chunk at a time: uint8[m, S, S, 3] in file order."""
    row = 3 * side * side
    try:
        with zipfile.ZipFile(path) as archive:
            f, _, _ = _open_member(archive, path, "data")
            with f:
                for start, stop in chunk_rows(n, row):
                    data = f.read((stop - start) * row)
                    if len(data) != (stop - start) * row:
                        raise EOFError(f"'data' ends after {start * row + len(data)} bytes")
                    planes = np.frombuffer(data, np.uint8).reshape(stop - start, 3, side, side)
                    yield np.ascontiguousarray(planes.transpose(0, 2, 3, 1))
    except PipelineError:
        raise
    except READ_ERRORS as err:
        raise _unreadable(path, err) from None


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """One npz batch, whole -> (images uint8[N, S, S, 3], labels int64[N] in 0..999)."""
    n, side, labels = batch_info(path)
    images = np.concatenate(list(batch_images(path, n, side))) if n else np.zeros((0, side, side, 3), np.uint8)
    return images, labels


def split_chunks(paths: list[Path], infos: list, resize, what: str) -> ImageChunks:
    """The images of ``paths`` (their batch_info ``infos``) in order, chunk by chunk; with ``resize`` [H, W] each
    chunk is resized and carries its original images' hash inputs."""
    n, side = sum(i[0] for i in infos), infos[0][1]
    shape = (n, *resize, 3) if resize else (n, side, side, 3)

    def chunks():
        for path, (count, s, _) in zip(bar(paths, desc=what), infos):
            for images in batch_images(path, count, s):
                if resize:
                    stacked = stack_images(list(images), resize, what)
                    yield stacked["images"], stacked["originals"]
                else:
                    yield images, None

    return ImageChunks(shape, chunks)


def load(spec: dict, log) -> dict:
    """Prepared arrays of a user's ImageNet64 folder (see the module docstring); the images as ImageChunks, read
    from the files while prepare writes them."""
    train_dir = Path(spec["path"])
    test_dir = Path(spec["test_path"] or spec["path"])
    missing = [str(train_dir / n) for n in TRAIN_FILES if not (train_dir / n).is_file()]
    missing += [str(test_dir / TEST_FILE)] if not (test_dir / TEST_FILE).is_file() else []
    if missing:
        raise PipelineError(f"{TITLE} files missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''}): "
                            f"{where_to_put(train_dir, test_dir)}")
    arrays = {"class_names": [str(c) for c in range(1, N_CLASSES + 1)]}
    sides = {}
    for split, paths in (("train", [train_dir / n for n in TRAIN_FILES]), ("test", [test_dir / TEST_FILE])):
        infos = [batch_info(p) for p in paths]
        sides[split] = {i[1] for i in infos}
        if len(sides[split]) > 1:
            raise PipelineError(f"{train_dir}: batches have different image sizes {sorted(sides[split])}")
        arrays[f"{split}_labels"] = np.concatenate([i[2] for i in infos])
        arrays[f"{split}_images"] = split_chunks(paths, infos, spec.get("resize"), f"imagenet64 {split}")
    if arrays["train_images"].shape[1:] != arrays["test_images"].shape[1:]:
        raise PipelineError(f"{TITLE}: train images are {arrays['train_images'].shape[1:]} but test images "
                            f"{arrays['test_images'].shape[1:]}; supply both splits at one resolution")
    log(f"{TITLE}: {len(arrays['train_labels'])} training and {len(arrays['test_labels'])} test images")
    return arrays


def write_synthetic(out_dir, n_train: int, n_val: int, seed: int = 0, side: int = 64, log=print) -> None:
    """Random files in the official format: train_data_batch_1..10.npz (n_train images in all, split as evenly as
    the official batches) and val_data.npz (n_val), ``data`` uint8[N, 3*side*side] planar RGB, 1-based int64
    ``labels``. Reproducible: the same (n_train, n_val, seed, side) give the same bytes.

    Each class has its own colour pattern (4 x 4 blocks, values 0..191) with uniform noise 0..63 added, so a
    learner can do better than chance; a label is uniform over the 1000 classes.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    blocks = np.random.default_rng([seed, 0]).integers(0, 192, (N_CLASSES, 3, 4, 4), dtype=np.uint8)
    scale = -(-side // 4)
    patterns = blocks.repeat(scale, axis=2).repeat(scale, axis=3)[:, :, :side, :side].reshape(N_CLASSES, -1)
    sizes = [n_train // 10 + (i < n_train % 10) for i in range(10)]
    for index, (name, n) in enumerate(zip(TRAIN_FILES + [TEST_FILE], sizes + [n_val]), start=1):
        rng = np.random.default_rng([seed, index])
        labels = rng.integers(1, N_CLASSES + 1, n, dtype=np.int64)
        with streamed_npz(out_dir / name) as archive:
            with array_member(archive, "data", np.uint8, (n, 3 * side * side)) as write:
                for start, stop in chunk_rows(n, 3 * side * side):
                    noise = rng.integers(0, 64, (stop - start, 3 * side * side), dtype=np.uint8)
                    write(patterns[labels[start:stop] - 1] + noise)
            add_array(archive, "labels", labels)
        log(f"{out_dir / name}: {n} images")
