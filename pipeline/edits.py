"""Editing a run's training set: deleting samples by id (an exclusion list) and inserting new ones.

Sample ids: the prepared training set's samples are 0 .. N-1 in their prepared order (N after
``train_limit``); inserted samples follow as N, N+1, ... in the order of the insertion file.
A sample's bucket depends only on its own pixels (docs/design.md#partitioning), so deleting or inserting n samples
changes the training sets of at most n base models (DPA) or n*d (FA), and only their shards retrain.
"""

import zipfile
from pathlib import Path

import numpy as np

from .artifacts.partition_files import load_inserted
from .artifacts.splits import check_images, load_hash_inputs, open_split_images
from .data.images import check_labels, original_hash_arrays
from .errors import PipelineError


def read_exclusions(path) -> np.ndarray:
    """Sample ids listed in a text file, one per line ('#' starts a comment): sorted unique int64[n]."""
    try:
        lines = Path(path).read_text().splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise PipelineError(f"{path}: cannot read the exclusion list ({err}); it must be a text file of "
                            "training sample ids, one per line") from None
    ids = []
    for number, line in enumerate(lines, 1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        if not (text.isascii() and text.isdigit()):  # str.isdigit() alone also takes '²' and '１２'
            raise PipelineError(f"{path}, line {number}: {text!r} is not a sample id; write one non-negative "
                                "integer per line in the digits 0-9 ('#' starts a comment)")
        ids.append(int(text))
    return np.unique(np.asarray(ids, dtype=np.int64))


def load_insertions(path, image_shape: tuple, n_classes: int):
    """Samples to insert from an npz with ``x`` uint8[M, *image_shape] and ``y`` int[M] in [0, n_classes).

    Returns (images uint8[M, ...], labels int64[M]).
    """
    fix = (f"it must be an .npz with x (uint8, shape [M, {', '.join(map(str, image_shape))}]) "
           f"and y (integer labels 0..{n_classes - 1})")
    try:
        loaded = np.load(path, allow_pickle=False)
        if isinstance(loaded, np.ndarray):  # an .npy file: np.load returns its one array
            raise PipelineError(f"{path}: is a single array ({loaded.dtype} of shape {list(loaded.shape)}, "
                                f"an .npy file), not an .npz archive; {fix}, e.g. written by "
                                "numpy.savez(path, x=images, y=labels)")
        with loaded as npz:
            if "x" not in npz.files or "y" not in npz.files:
                raise PipelineError(f"{path}: has arrays {sorted(npz.files)}, not x and y; {fix}")
            x, y = npz["x"], npz["y"]
    except PipelineError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:
        raise PipelineError(f"{path}: cannot read the insertion file ({type(err).__name__}: {err}); {fix}") from None
    if x.dtype != np.uint8 or tuple(x.shape[1:]) != tuple(image_shape):
        raise PipelineError(f"{path}: x is {x.dtype} of shape {list(x.shape)}; {fix}")
    try:
        labels = check_labels(y, n_classes, f"{path}: y")
    except PipelineError as err:
        raise PipelineError(f"{err}; {fix}") from None
    if len(labels) != len(x):
        raise PipelineError(f"{path}: y has {len(labels)} labels for {len(x)} images; {fix}")
    return x, labels


def edited_training_set(train_path, train_limit=None, insert=None, exclude=None) -> dict:
    """The training samples a run partitions, after its edits (the prepared images checked against their stored
    SHA-256 on the way, in chunks).

    Returns images (StoredImages: read from the prepared file as they are used), labels and ids (int64[n], the
    kept sample ids), ``originals`` (the original-image hash inputs of resized datasets, see
    pipeline.data.load_hash_inputs, else None; an inserted sample is its own original) and ``inserted``:
    (images, labels, first_id) for save_inserted.
    """
    images, labels, class_names = check_images(train_path)
    originals = load_hash_inputs(train_path)
    if train_limit is not None:
        labels = labels[:train_limit]
        originals = None if originals is None else {key: value[:train_limit] for key, value in originals.items()}
    first_id = len(labels)
    if insert is not None:
        extra_images, extra_labels = load_insertions(insert, images.shape[1:], len(class_names))
    else:
        extra_images, extra_labels = np.zeros((0, *images.shape[1:]), np.uint8), labels[:0]
    images, labels = images.with_extra(first_id, extra_images), np.concatenate([labels, extra_labels])
    if originals is not None:
        own = original_hash_arrays(extra_images)
        originals = {key: np.concatenate([value, own[key]]) for key, value in originals.items()}
    ids = np.arange(len(labels), dtype=np.int64)
    if exclude is not None:
        ids = kept_ids(len(labels), read_exclusions(exclude), exclude)
        images, labels = images.subset(ids), labels[ids]
        originals = None if originals is None else {key: value[ids] for key, value in originals.items()}
    return {"images": images, "labels": labels, "ids": ids, "originals": originals,
            "inserted": (extra_images, extra_labels, first_id)}


def training_pool(train_path, inserted_path):
    """Every sample a shard file can name: (images, labels int64[N + M], class_names).

    The first ``first_id`` prepared samples, then the inserted ones, as the partition step saw them
    (``inserted_path`` None: the prepared samples alone). ``images`` is a StoredImages: ``images[ids]`` reads just
    those rows from the prepared file, unchecked; callers check them against the partition's digests.
    """
    images, labels, class_names = open_split_images(train_path)
    if inserted_path is None:
        return images, labels, class_names
    x, y, first_id = load_inserted(inserted_path)
    if first_id > len(labels) or tuple(x.shape[1:]) != tuple(images.shape[1:]):
        raise PipelineError(f"{inserted_path}: does not fit {train_path}; delete it and run snakemake "
                              "again (the partition step rewrites it)")
    return images.with_extra(first_id, x), np.concatenate([labels[:first_id], y]), class_names


def kept_ids(n_samples: int, excluded: np.ndarray, source="the exclusion list") -> np.ndarray:
    """Ids 0 .. n_samples-1 without the excluded ones: int64[n_samples - len(excluded)]."""
    outside = excluded[excluded >= n_samples]
    if outside.size:
        raise PipelineError(f"{source}: names sample {int(outside[0])}, but the training set has {n_samples} "
                            f"samples (ids 0..{n_samples - 1}, inserted samples included); remove that line")
    return np.setdiff1d(np.arange(n_samples, dtype=np.int64), excluded, assume_unique=True)


def check_edit_files(runs: dict, source="params.yaml") -> None:
    """Every exclusion list and insertion file named in the runs exists (a clear message otherwise)."""
    for name, run in runs.items():
        for key, what in (("exclude", "a text file of training sample ids to delete, one per line"),
                          ("insert", "an .npz with x and y of the samples to insert")):
            path = run.get(key)
            if path is not None and not Path(path).is_file():
                raise PipelineError(f"{source}: runs.{name}.{key}: file {path} not found; create it ({what}) "
                                    f"or set {key}: null")
