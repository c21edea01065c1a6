"""Memory (MB) and run time (minutes) each job declares to Snakemake and the cluster scheduler.

Computed from the run: sizes of the prepared splits (bytes of uint8 pixels), models per shard,
training samples per model, the test-set size and the learner. Each estimate is an upper bound
of the job's peak resident memory with a margin (tests/test_workflow.py checks it against the
peaks Snakemake's benchmark files record); run times assume a CPU unless the learner trains on a
GPU, and are generous (a cluster kills a job that runs past its declared time).
"""

import math
import os

MB = 2**20
TEST_CHUNK_PIXELS = 2**23  # test pixels predict scores at once (bounds its memory; all of MNIST's test set)
ROW_GROUP_TESTS = 512  # test samples per Parquet row group of a predictions file (pipeline.artifacts.predictions)
PYTHON_MB = 250         # interpreter, numpy, pandas, pyarrow
TORCH_MB = 700          # + torch (its CPU and CUDA libraries), resident after import
CERTIFY_CHUNK_MB = 256  # votes (and run-off bits) certify reads at once
CHUNK_BYTES = 64 * MB  # pixels read or written at once where a split is streamed (pipeline/artifacts/splits.py)

# Learner working memory per training sample in flight (bytes per input pixel), and training
# throughput in sample-epochs per second (CPU, GPU): conservative figures for the run-time bound.
TORCH_LEARNERS = {"small_cnn": {"bytes_per_pixel": 64 * 4 * 6, "rate": (2_000, 20_000)},
                  "nin": {"bytes_per_pixel": 192 * 4 * 30, "rate": (60, 3_000)}}
HOG_BYTES_PER_PIXEL = 160  # HOG intermediates (float64 gradients, angles, int64 bins, votes) per pixel
NN_BYTES_PER_PIXEL = 320  # nearest-neighbour feature maps' intermediates per pixel (orient_nn: 12 direction maps)
NN_CHUNK_PIXELS = 2**21  # pixels mapped to features at once (learners/nearest_neighbour.py FEATURE_CHUNK_PIXELS)
HOG_FEATURES_PER_PIXEL = 40  # float64 features (about 3 per pixel for the default cells), quantised float32 copies


def _mb(n_bytes: float) -> int:
    return int(math.ceil(n_bytes / MB))


def prepare_mem_mb(dataset_bytes: int) -> int:
    """Prepare: raw arrays (float copies in some sources), the prepared arrays and their digests."""
    return PYTHON_MB + 1000 + _mb(10 * dataset_bytes)


def prepare_streamed_mem_mb(n_images: int, pixels: int) -> int:
    """Prepare from files read a chunk at a time (ImageNet64's npz batches): a few chunks of CHUNK_BYTES (read,
    transposed, resized, written), and the labels and the originals' hash inputs of every image."""
    return PYTHON_MB + 300 + _mb(8 * CHUNK_BYTES + n_images * 120 + 4 * pixels)


def partition_mem_mb(n_train: int, d: int, max_subset_bytes: int) -> int:
    """Partition: the training images read a chunk at a time (hashed, digested), then one model's (or bucket's)
    images at a time (ordered by content), the per-sample digests and the shard and bucket-group files."""
    return PYTHON_MB + 200 + _mb(6 * CHUNK_BYTES + n_train * (500 + 40 * d) + 8 * d * max_subset_bytes)


def train_mem_mb(learner: str, n_train: int, shard_bytes: int, pixels: int, batch_size: int = 0) -> int:
    """Train: the split's labels (its images are read a model's samples at a time), the shard's training subsets
    and the checkpoint being written (``shard_bytes``: pixels of all the shard's training subsets), the learner's
    working memory (``pixels``: per image, after any resize)."""
    work = TORCH_LEARNERS[learner]["bytes_per_pixel"] * pixels * batch_size if learner in TORCH_LEARNERS else 0
    return TORCH_MB + 200 + _mb(24 * n_train + 4 * shard_bytes + work)


def predict_mem_mb(learner: str, test_bytes: int, n_test: int, n_models: int, n_classes: int, model_bytes: int,
                   max_subset_bytes: int, pixels: int, chunk_tests: int) -> int:
    """Predict: the test split, the checkpoint, one chunk of ``chunk_tests`` test samples' scores and table,
    and the learner's working memory (hog_nn: one chunk's and one model's features; torch learners: a
    batch of 1024 test images through the network)."""
    chunk = min(n_test, chunk_tests)
    scores = chunk * n_models * (4 * n_classes * 4 + 32)  # scores, their transpose, votes and Arrow columns
    if learner in TORCH_LEARNERS:
        work = 4 * n_test * pixels * 2 + TORCH_LEARNERS[learner]["bytes_per_pixel"] * pixels * 1024 // 3
    else:
        copies = 3  # the model's images with their rotated copies (default rotations)
        work = ((HOG_BYTES_PER_PIXEL + HOG_FEATURES_PER_PIXEL) * pixels * (chunk + copies * max_subset_bytes // pixels)
                + 4 * chunk * copies * max_subset_bytes // pixels)
    return TORCH_MB + 200 + _mb(3 * test_bytes + 3 * model_bytes + scores + work)


def test_features_mem_mb(test_bytes: int, n_test: int, pixels: int) -> int:
    """Test features: the test split, one chunk of images through the feature map (NN_CHUNK_PIXELS) and every
    test sample's features (float64 and their float32 quantised copy)."""
    chunk_pixels = min(n_test * pixels, NN_CHUNK_PIXELS)
    return TORCH_MB + 200 + _mb(3 * test_bytes + NN_BYTES_PER_PIXEL * chunk_pixels + HOG_FEATURES_PER_PIXEL * n_test * pixels)


def distances_mem_mb(train_bytes: int, n_test: int, pixels: int, group_samples: int, copies: int, n_group_buckets: int,
                     n_buckets: int, n_classes: int) -> int:
    """Bucket distances: the training pool (loaded, digested, the group's samples taken), the test features, the
    group's samples with their augmented copies through the HOG steps and as features, one block of squared
    distances (nearest.BLOCK_BYTES, with the scatter's index) and one row group of minima (table and copies)."""
    rows = group_samples * copies
    row_group = min(n_test, max(1, 2**26 // (4 * max(1, n_buckets * n_classes)))) * n_group_buckets * n_classes * 4
    return TORCH_MB + 200 + _mb(4 * train_bytes + 3 * n_test * pixels * 4 + NN_BYTES_PER_PIXEL * min(rows * pixels, NN_CHUNK_PIXELS)
                                + (HOG_FEATURES_PER_PIXEL + 12) * rows * pixels + 3 * 2**27 + 4 * row_group)


def certify_distances_mem_mb(test_bytes: int, n_test: int, n_train: int, d: int) -> int:
    """Certify from bucket distances: the test split, the shard and bucket-group files (every model's and
    bucket's sample ids as Python objects), one chunk of every bucket's minima (about CERTIFY_CHUNK_MB), the
    models' scores and votes and the certificates' temporaries (about as much again each)."""
    return PYTHON_MB + 400 + _mb(3 * test_bytes + 4 * CERTIFY_CHUNK_MB * MB + n_train * (d + 1) * 100 + n_test * 200)


def certify_mem_mb(test_bytes: int, n_test: int, n_models: int, n_classes: int, run_off: bool) -> int:
    """Certify: the test split, one chunk of votes (and run-off bits, unpacked) read from every shard, the
    certificates, a plot."""
    per_test = n_models * (3 + (3 * n_classes if run_off else 0))
    chunk = min(n_test * per_test, CERTIFY_CHUNK_MB * MB)
    return PYTHON_MB + 400 + _mb(3 * test_bytes + 4 * chunk + n_test * 200)


def train_runtime_min(learner: str, sample_epochs: int, on_gpu: bool) -> int:
    """Minutes for a train job: ``sample_epochs`` = sum over the shard's models (and versions) of samples x epochs."""
    if learner not in TORCH_LEARNERS:
        return 30
    rate = TORCH_LEARNERS[learner]["rate"][1 if on_gpu else 0]
    return 30 + int(math.ceil(2 * sample_epochs / rate / 60))


def predict_runtime_min(learner: str, n_test: int, n_models: int, train_per_model: int, on_gpu: bool) -> int:
    """Minutes for a predict job: distances (hog_nn) or forward passes over the test set for every model."""
    if learner in TORCH_LEARNERS:
        rate = 50 * TORCH_LEARNERS[learner]["rate"][1 if on_gpu else 0]  # inference: many times faster
        return 30 + int(math.ceil(2 * n_models * n_test / rate / 60))
    return 30 + int(math.ceil(n_models * (n_test * train_per_model * 3 / 2e8 + 1) / 60))


def npz_shape(path, member: str = "images"):
    """Shape of one array in an .npz without reading its data (only the .npy header), or None."""
    import zipfile

    import numpy as np

    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{member}.npy") as f:
            major, _ = np.lib.format.read_magic(f)
            read_header = np.lib.format.read_array_header_1_0 if major == 1 else np.lib.format.read_array_header_2_0
            shape, _, _ = read_header(f)
            return tuple(shape)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None


def dataset_size(train_path, test_path, known_shapes=None, n_classes: int = 10) -> dict:
    """n_train, n_test, image shape and classes of a dataset: from the prepared files' headers when they
    exist, else from ``known_shapes`` (a built-in dataset's SHAPES), else ImageNet 64x64's sizes."""
    train, test = npz_shape(train_path), npz_shape(test_path)
    if train is None or test is None:
        shapes = known_shapes or {"train_images": (1_281_167, 64, 64, 3), "test_images": (50_000, 64, 64, 3)}
        train, test = shapes["train_images"], shapes["test_images"]
        n_classes = n_classes if known_shapes else 1000
    else:
        n_classes = (npz_shape(train_path, "class_names") or (n_classes,))[0]
    return {"n_train": train[0], "n_test": test[0], "image_shape": tuple(train[1:]), "n_classes": n_classes}


def test_chunk_size(image_shape) -> int:
    """Test samples predict scores at once: a multiple of ROW_GROUP_TESTS holding about TEST_CHUNK_PIXELS pixels."""
    pixels = max(1, math.prod(image_shape))
    return max(ROW_GROUP_TESTS, TEST_CHUNK_PIXELS // pixels // ROW_GROUP_TESTS * ROW_GROUP_TESTS)


def files_bytes(paths) -> int:
    """Total size of the files at ``paths`` (folders walked)."""
    walk = lambda p: (os.path.join(r, f) for r, _, fs in os.walk(p) for f in fs) if os.path.isdir(p) else [p]  # noqa: E731
    return sum(os.path.getsize(f) for p in paths for f in walk(p))


def run_size(run: dict, size: dict, learner_params: dict, shared_distances: bool = False) -> dict:
    """What a run's job resources depend on, from its params.yaml entry ``run``, its dataset's ``size``
    (dataset_size), its resolved learner parameters and whether its models' scores come from shared
    distances (docs/design.md#shared-distances)."""
    pixels = math.prod(size["image_shape"])
    limit = lambda n, cap: n if cap is None else min(n, cap)  # noqa: E731
    n_train, n_test = limit(size["n_train"], run["train_limit"]), limit(size["n_test"], run["test_limit"])
    spread = run["d"] if run["method"] == "fa" else 1
    n_models = run["k"] * spread
    per_model = -(-n_train * spread // n_models)
    resized = learner_params.get("resize") or 0
    channels = size["image_shape"][-1] if len(size["image_shape"]) == 3 else 1
    return {
        "learner": run["learner"]["name"], "params": learner_params, "pixels": pixels,
        "work_pixels": resized * resized * channels or pixels,
        "train_bytes": size["n_train"] * pixels, "test_bytes": size["n_test"] * pixels, "n_train": n_train,
        "n_test": n_test, "n_classes": size["n_classes"], "n_models": n_models, "d": run["d"],
        "shard_models": min(run["shard_size"], n_models), "versions": run["versions"], "roe": run["roe"],
        "max_subset": 2 * per_model + 20,  # the hash spreads samples about evenly; twice the mean bounds a subset
        "shared_distances": shared_distances,
    }


def attack_mem_mb(train_bytes: int, test_bytes: int, n_train: int, n_test: int, n_buckets: int, n_classes: int,
                  pixels: int, copies: int) -> int:
    """An attack job: every bucket's minima of the test set (and a copy's worth of edits), the training images
    (and stamped copies), the cached features of the training samples and their copies (at most 3 float32 per
    pixel), chunks of model scores."""
    return TORCH_MB + 500 + _mb(2 * train_bytes + 3 * test_bytes + 2 * 4 * n_test * n_buckets * n_classes
                                + 12 * n_train * copies * pixels + 8 * 4 * 2**24)


def job_mem_mb(stage: str, z: dict) -> int:
    """Memory (MB) a job of ``stage`` declares, from run_size ``z``."""
    if stage == "partition":
        return partition_mem_mb(z["n_train"], z["d"], z["max_subset"] * z["pixels"])
    if stage == "train":
        return train_mem_mb(z["learner"], z["n_train"], z["shard_models"] * z["max_subset"] * z["pixels"],
                            z["work_pixels"], z["params"].get("batch_size", 0))
    if stage in ("predict", "runoff"):
        model_bytes = z["shard_models"] * z["max_subset"] * z["pixels"] if z["learner"] not in TORCH_LEARNERS else 0
        chunk = test_chunk_size([z["pixels"]])
        runoff = 0 if stage == "predict" else (2 * CERTIFY_CHUNK_MB * MB + z["n_test"] * 16
                                               + 4 * min(chunk, z["n_test"]) * z["shard_models"] * 2 * z["n_classes"])
        return runoff + predict_mem_mb(z["learner"], z["test_bytes"], z["n_test"], z["shard_models"], z["n_classes"],
                                       model_bytes, z["max_subset"] * z["pixels"], z["work_pixels"], chunk)
    if stage == "certify" and z["shared_distances"]:
        return certify_distances_mem_mb(z["test_bytes"], z["n_test"], z["n_train"], z["d"])
    if stage == "certify":
        return certify_mem_mb(z["test_bytes"], z["n_test"], z["n_models"], z["n_classes"], z["roe"])
    if stage == "test_features":
        return test_features_mem_mb(z["test_bytes"], z["n_test"], z["pixels"])
    if stage == "distances":
        group_samples = z["shard_models"] * z["max_subset"] // max(1, z["d"])  # a bucket holds 1/d of a model's samples
        copies = 1 + len(z["params"].get("rotations", []))
        return distances_mem_mb(z["train_bytes"], z["n_test"], z["pixels"], group_samples, copies, z["shard_models"],
                                z["n_models"], z["n_classes"])
    if stage == "attack":
        return attack_mem_mb(z["train_bytes"], z["test_bytes"], z["n_train"], z["n_test"], z["n_models"] // z["versions"],
                             z["n_classes"], z["pixels"], 1 + len(z["params"].get("rotations", [])))
    raise ValueError(f"no memory model for stage {stage!r}")


def job_runtime_min(stage: str, z: dict, on_gpu: bool) -> int:
    """Minutes a train, predict or distances job declares, from run_size ``z``."""
    if stage == "distances":  # distances of the test set to the group's samples and their copies, as predict's
        rows = z["shard_models"] * z["max_subset"] // max(1, z["d"]) * (1 + len(z["params"].get("rotations", [])))
        return 30 + int(math.ceil(z["n_test"] * rows * 3 / 2e8 / 60))
    if stage == "train":
        sample_epochs = z["shard_models"] * z["versions"] * z["max_subset"] * z["params"].get("epochs", 1)
        return train_runtime_min(z["learner"], sample_epochs, on_gpu)
    return predict_runtime_min(z["learner"], z["n_test"], z["shard_models"] * z["versions"], z["max_subset"], on_gpu)
