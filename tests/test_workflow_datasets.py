"""The papers' CIFAR-10 and GTSRB configs and a user dataset, end to end through Snakemake on generated files.

The files are written in the official layouts (a few dozen images each); the test project's copy of
the package declares them the official ones (their MD5s and shapes), as the real files would be.
"""

import json

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.data import cifar10

from . import official_formats as of
from .conftest import REPO, make_project, snakemake

pytestmark = pytest.mark.workflow


def paper_run(config: str, **changes) -> tuple[dict, dict]:
    params = yaml.safe_load((REPO / "configs" / config).read_text())
    (name, run), = params["runs"].items()
    run.update(changes)
    return params, run


def test_paper_configs_and_a_user_dataset_run_end_to_end(tmp_path):
    rng = np.random.default_rng(1)
    tiny = {"k": 4, "shard_size": 2, "test_limit": None}
    params, cifar_run = paper_run("cifar10_nin_dpa_k50.yaml", **tiny)
    cifar_run["learner"]["params"].update(epochs=1)
    _, gtsrb_run = paper_run("gtsrb_nin_dpa_k50.yaml", **tiny, roe=False)
    gtsrb_run["learner"]["params"].update(epochs=1)
    user_run = {**json.loads(json.dumps(gtsrb_run)), "dataset": "signs", "k": 3, "shard_size": 3, "roe": True,
                "learner": {"name": "hog_nn", "params": {"cells": [4], "deskew": False, "rotations": []}}}
    params["runs"] = {"cifar": cifar_run, "gtsrb": gtsrb_run, "signs": user_run}
    params["datasets"] = {"signs": {"format": "folder", "path": "userdata/train", "test_path": "userdata/test",
                                    "resize": [16, 16], "channels": 3}}
    project = make_project(tmp_path / "project", params)

    members, _ = of.cifar_members(rng)
    archive = of.write_cifar_archive(project / "data/raw/cifar10" / cifar10.ARCHIVE, members)
    of.declare_official(project / "pipeline/data/cifar10.py", of.cifar_overrides(archive, members, 40, 12))
    zips, expected = of.gtsrb_files(rng)
    zip_md5 = of.write_zips(project / "data/raw/gtsrb", zips)
    of.declare_official(project / "pipeline/data/gtsrb.py", of.gtsrb_overrides(zip_md5, expected))
    train_images, _ = of.write_image_folder(project / "userdata/train", rng)
    of.write_image_folder(project / "userdata/test", rng, per_class=2)

    snakemake(project)

    for run, n_train, n_test, n_models in (("cifar", 40, 12, 4), ("gtsrb", 36, 12, 4), ("signs", 18, 6, 3)):
        metrics = json.loads((project / f"metrics/{run}.json").read_text())
        assert (metrics["n_train"], metrics["n_test"], metrics["n_models"]) == (n_train, n_test, n_models), run
        cert = pq.read_table(project / f"work/{run}/certificates.parquet").to_pandas()
        assert len(cert) == n_test and cert.radius_dpa.max() <= n_models // 2
    assert json.loads((project / "metrics/cifar.json").read_text())["dataset"] == "cifar10"
    # GTSRB's buckets are the original images' pixel sums mod k, not the resized ones'.
    buckets = pq.read_table(project / "work/gtsrb/partition/assignment.parquet").column("bucket").to_pylist()
    assert buckets == [int(im.sum()) % 4 for im in expected["train"][0]]
    user_buckets = pq.read_table(project / "work/signs/partition/assignment.parquet").column("bucket").to_pylist()
    assert user_buckets == [int(im.sum()) % 3 for im in train_images]
    assert "signs" in (project / "logs/prepare/signs.log").read_text()
    assert "official files verified by MD5" in (project / "logs/prepare/cifar10.log").read_text()
