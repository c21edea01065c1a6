"""params.yaml validation: every bad key is named in the message."""

import copy

import pytest
import yaml

from pipeline.config import load, validate
from pipeline.errors import PipelineError

from .conftest import REPO


@pytest.fixture
def params():
    return yaml.safe_load((REPO / "params.yaml").read_text())


def test_shipped_configs_are_valid():
    load(REPO / "params.yaml")
    for path in (REPO / "configs").glob("*.yaml"):
        load(path)


@pytest.mark.parametrize("change, message", [
    (lambda p: p["runs"]["mnist_dpa_k1200"].update(k=0), r"runs\.mnist_dpa_k1200\.k: 0 is less than the minimum of 1"),
    (lambda p: p["runs"]["mnist_dpa_k1200"]["learner"].update(name="resnet"),
     r"runs\.mnist_dpa_k1200\.learner\.name: 'resnet' is not one of"),
    (lambda p: p.update(radii=[0, 100, 50]), r"radii: must be strictly increasing"),
    (lambda p: p.update(radii=[0, 0]), r"radii: must be strictly increasing"),
    (lambda p: p["runs"]["mnist_dpa_k1200"]["learner"]["params"].update(cell=3),
     r"runs\.mnist_dpa_k1200\.learner\.params: learner 'orient_nn' has no parameter 'cell'"),
    (lambda p: p["runs"]["mnist_dpa_k1200"].pop("shard_size"), r"runs\.mnist_dpa_k1200: 'shard_size' is a required"),
    (lambda p: p["runs"]["mnist_dpa_k1200"].update(method="magic"), r"runs\.mnist_dpa_k1200\.method: 'magic'"),
    (lambda p: p["data"].update(sources=["ftp"]), r"data\.sources\.0: 'ftp' is not one of"),
    (lambda p: p["runs"]["mnist_dpa_k1200"].update(d=4), r"runs\.mnist_dpa_k1200\.d: must be 1 for method dpa"),
    (lambda p: p["runs"]["mnist_dpa_k1200"].update(method="fa", versions=3),
     r"runs\.mnist_dpa_k1200\.versions: DPA\* \(versions > 1\) applies to method dpa only"),
    (lambda p: p["runs"]["mnist_dpa_k1200"].update(roe="yes"), r"runs\.mnist_dpa_k1200\.roe: 'yes' is not of type"),
    (lambda p: p.update(colour="blue"), r"\(top level\): Additional properties are not allowed \('colour'"),
])
def test_invalid_params_name_the_key(params, change, message):
    bad = copy.deepcopy(params)
    change(bad)
    with pytest.raises(PipelineError, match=message):
        validate(bad)


def test_unreadable_files(tmp_path):
    with pytest.raises(PipelineError, match="not found"):
        load(tmp_path / "missing.yaml")
    (tmp_path / "bad.yaml").write_text("runs: [unclosed")
    with pytest.raises(PipelineError, match="not valid YAML"):
        load(tmp_path / "bad.yaml")
