"""Bad input ends with one clear message (CLI: one line `error: ...`, exit 2) and no partial output."""

import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from pipeline import learners
from pipeline.__main__ import main
from pipeline.artifacts.partition_files import save_inserted, write_partition
from pipeline.artifacts.splits import save_split
from pipeline.atomic import write_text
from pipeline.config import validate
from pipeline.edits import load_insertions, read_exclusions
from pipeline.errors import PipelineError
from pipeline.partition import partition

from .conftest import REPO, make_project, snakemake, tiny_params


def cli_error(capsys, argv) -> str:
    """Run the CLI; it must fail with exit status 2 and one line `error: ...`. Returns that line."""
    assert main([str(a) for a in argv]) == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()  # progress bars (stderr) may come first
    assert lines[-1].startswith("error: ") and "Traceback" not in captured.err, captured.err
    assert [line for line in lines if "error" in line.lower()] == lines[-1:], captured.err
    assert captured.out == ""
    return lines[-1]


def usage_error(capsys, argv) -> str:
    """Run the CLI; argparse must refuse an argument (exit status 2). Returns its message line."""
    with pytest.raises(SystemExit) as exit_info:
        main([str(a) for a in argv])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err.strip().splitlines()[-1]


# ---- learner parameters: a schema per learner --------------------------------------------------------------------


@pytest.mark.parametrize("name, params, message", [
    ("hog_nn", {"cells": "x"}, "learner 'hog_nn': cells: 'x' is not of type 'array'"),
    ("hog_nn", {"orientations": 0}, "learner 'hog_nn': orientations: 0 is less than the minimum of 1"),
    ("hog_nn", {"cells": []}, "learner 'hog_nn': cells: [] should be non-empty"),
    ("hog_nn", {"cells": [4, 4]}, "learner 'hog_nn': cells: [4, 4] has non-unique elements"),
    ("hog_nn", {"cells": [1, 4]}, "learner 'hog_nn': cells.0: 1 is less than the minimum of 2"),
    ("hog_nn", {"cells": [4.0]}, "learner 'hog_nn': cells.0: 4.0 is not of type 'integer'"),
    ("hog_nn", {"block": 0}, "learner 'hog_nn': block: 0 is less than the minimum of 1"),
    ("hog_nn", {"deskew": "yes"}, "learner 'hog_nn': deskew: 'yes' is not of type 'boolean'"),
    ("hog_nn", {"rotations": 10}, "learner 'hog_nn': rotations: 10 is not of type 'array'"),
    ("hog_nn", {"rotations": [float("nan")]}, "learner 'hog_nn': rotations: nan is not a finite number"),
    ("small_cnn", {"epochs": 0}, "learner 'small_cnn': epochs: 0 is less than the minimum of 1"),
    ("small_cnn", {"epochs": True}, "learner 'small_cnn': epochs: True is not of type 'integer'"),
    ("small_cnn", {"batch_size": 1}, "learner 'small_cnn': batch_size: 1 is less than the minimum of 2"),
    ("small_cnn", {"lr": 0}, "learner 'small_cnn': lr: 0 is less than or equal to the minimum of 0"),
    ("small_cnn", {"lr": "1e-3"}, "learner 'small_cnn': lr: '1e-3' is not of type 'number'"),
    ("small_cnn", {"lr": float("inf")}, "learner 'small_cnn': lr: inf is not a finite number"),
    ("small_cnn", {"momentum": 1.0}, "learner 'small_cnn': momentum: 1.0 is greater than or equal to the maximum"),
    ("small_cnn", {"weight_decay": -1e-4}, "learner 'small_cnn': weight_decay: -0.0001 is less than the minimum"),
    ("small_cnn", {"width": 0}, "learner 'small_cnn': width: 0 is less than the minimum of 1"),
    ("small_cnn", {"crop_padding": -1}, "learner 'small_cnn': crop_padding: -1 is less than the minimum of 0"),
    ("nin", {"milestones": [60, 30]}, "learner 'nin': milestones: [60, 30] must be in non-decreasing order"),
    ("nin", {"milestones": [-1]}, "learner 'nin': milestones.0: -1 is less than the minimum of 0"),
    ("nin", {"gamma": 0}, "learner 'nin': gamma: 0 is less than or equal to the minimum of 0"),
    ("nin", {"flip": 1}, "learner 'nin': flip: 1 is not of type 'boolean'"),
    ("nin", {"resize": 0}, "learner 'nin': resize: 0 is less than the minimum of 1"),
    ("nin", {"resize": "48"}, "learner 'nin': resize: '48' is not of type 'integer', 'null'"),
    ("nin", [1, 2], "learner 'nin': its parameters must be a mapping of names to values, not list [1, 2]"),
])
def test_learner_parameters_are_checked(name, params, message):
    with pytest.raises(PipelineError) as err:
        learners.resolve_params(name, params)
    assert str(err.value).startswith(message)
    if isinstance(params, dict):
        key = next(iter(params))
        assert f"(default: {json.dumps(learners.defaults(name)[key])})" in str(err.value)


def test_valid_learner_parameters_resolve_to_defaults_updated():
    assert learners.resolve_params("hog_nn", {"cells": [7], "rotations": [-7.5, 0, 7.5]}) == {
        **learners.defaults("hog_nn"), "cells": [7], "rotations": [-7.5, 0, 7.5]}
    assert learners.resolve_params("nin", {"resize": 48, "milestones": [10, 10, 20], "momentum": 0})["resize"] == 48
    for name in learners.SPECS:  # every learner's defaults meet its schema
        assert learners.resolve_params(name, None) == learners.defaults(name)


@pytest.mark.parametrize("path", ["params.yaml", *sorted(p.relative_to(REPO).as_posix()
                                                         for p in (REPO / "configs").glob("*.yaml"))])
def test_shipped_configs_meet_the_learner_schemas(path):
    validate(yaml.safe_load((REPO / path).read_text()), path)


def test_config_names_the_run_and_the_learner_parameter(tmp_path):
    params = tiny_params(tmp_path)
    params["runs"]["tiny"]["learner"] = {"name": "hog_nn", "params": {"cells": "x"}}
    with pytest.raises(PipelineError, match=r"^params.yaml: runs.tiny.learner.params: learner 'hog_nn': cells: 'x' "
                                            r"is not of type 'array'"):
        validate(params)


def test_learner_specs_import_without_torch():
    code = ("import sys; from pipeline.learners import resolve_params; resolve_params('nin', {'epochs': 3}); "
            "assert 'torch' not in sys.modules, 'torch imported'")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


def test_train_refuses_bad_learner_parameters_before_any_work(tmp_path, capsys):
    line = cli_error(capsys, ["train", "--shard", tmp_path / "shard_0.json", "--train", tmp_path / "train.npz",
                              "--inserted", tmp_path / "inserted.npz", "--learner", "hog_nn",
                              "--learner-params", '{"orientations": 0}', "--device", "cpu", "--out", tmp_path / "m.pt"])
    assert line.startswith("error: learner 'hog_nn': orientations: 0 is less than the minimum of 1")
    assert not (tmp_path / "m.pt").exists()


# ---- a synthetic prepared training set and partition ---------------------------------------------------------------


@pytest.fixture
def prepared(tmp_path):
    """train.npz of 40 random 28x28 images (10 classes), partitioned into k = 2 (one shard)."""
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(40, 28, 28), dtype=np.uint8)
    labels = np.arange(40) % 10
    save_split(tmp_path / "train.npz", images, labels, [str(c) for c in range(10)], "synthetic")
    assignment, shards, groups = partition(images, labels, np.arange(40), "dpa", k=2, shard_size=2)
    write_partition(tmp_path / "partition", assignment, shards, groups)
    save_inserted(tmp_path / "partition/inserted.npz", images[:0], labels[:0], 40)
    return tmp_path


def partition_args(root, *extra):
    return ["partition", "--train", root / "train.npz", "--k", "2", "--shard-size", "2", "--expect-shards", "1",
            "--out-dir", root / "out", *extra]


# ---- a. exclusion lists: ASCII digits only --------------------------------------------------------------------------


@pytest.mark.parametrize("line", ["²", "１２", "٣"])
def test_exclusion_ids_are_ascii_digits(tmp_path, line):
    path = tmp_path / "remove.txt"
    path.write_text(f"1\n{line}  # not an id\n", encoding="utf-8")
    with pytest.raises(PipelineError, match=rf"remove.txt, line 2: '{line}' is not a sample id; write one "
                                            r"non-negative integer per line in the digits 0-9"):
        read_exclusions(path)


@pytest.mark.parametrize("line", ["²", "１２"])
def test_partition_cli_with_a_non_ascii_exclusion_id(prepared, capsys, line):
    (prepared / "remove.txt").write_text(f"{line}\n", encoding="utf-8")
    message = cli_error(capsys, partition_args(prepared, "--exclude", prepared / "remove.txt"))
    assert f"remove.txt, line 1: '{line}' is not a sample id" in message
    assert not (prepared / "out").exists()


# ---- b. an insertion file that is an .npy ---------------------------------------------------------------------------


def test_insertion_file_that_is_an_npy(tmp_path):
    np.save(tmp_path / "add.npy", np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(PipelineError, match=r"add.npy: is a single array \(uint8 of shape \[2, 4, 4\], an .npy file\), "
                                            r"not an .npz archive; it must be an .npz with x"):
        load_insertions(tmp_path / "add.npy", (4, 4), 10)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 truncated"])
def test_insertion_file_empty_or_truncated(tmp_path, content):
    (tmp_path / "add.npz").write_bytes(content)
    with pytest.raises(PipelineError, match="add.npz: cannot read the insertion file"):
        load_insertions(tmp_path / "add.npz", (4, 4), 10)


def test_partition_cli_with_an_npy_insertion_file(prepared, capsys):
    np.save(prepared / "add.npy", np.zeros((2, 28, 28), np.uint8))
    message = cli_error(capsys, partition_args(prepared, "--insert", prepared / "add.npy"))
    assert "add.npy: is a single array" in message and "not an .npz archive" in message
    assert not (prepared / "out").exists()


# ---- c. counts must be positive -------------------------------------------------------------------------------------


@pytest.mark.parametrize("option", ["--k", "--shard-size", "--train-limit", "--d", "--versions", "--expect-shards"])
@pytest.mark.parametrize("value", ["0", "-3", "x", "１"])
def test_partition_counts_must_be_positive(tmp_path, capsys, option, value):
    argv = partition_args(tmp_path)
    if option in argv:
        argv[argv.index(option) + 1] = value
    else:
        argv += [option, value]
    message = usage_error(capsys, argv)
    assert f"argument {option}: must be a positive integer (1 or more), not '{value}'" in message
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stage, option", [("predict", "--test-limit"), ("predict", "--threads"),
                                           ("certify", "--test-limit")])
def test_test_limit_and_threads_must_be_positive(tmp_path, capsys, stage, option):
    argv = {"predict": ["predict", "--model", tmp_path / "m.pt", "--test", tmp_path / "test.npz",
                        "--out", tmp_path / "p.parquet"],
            "certify": ["certify", "--run", "r", "--dataset", "mnist", "--learner", "hog_nn",
                        "--predictions", tmp_path / "p.parquet", "--shards", tmp_path / "s.json",
                        "--test", tmp_path / "test.npz", "--radii", "0", "--certificates", tmp_path / "c.parquet",
                        "--metrics", tmp_path / "m.json", "--curve", tmp_path / "c.csv", "--plot", tmp_path / "c.png"]}
    message = usage_error(capsys, argv[stage] + [option, "0"])
    assert f"argument {option}: must be a positive integer (1 or more), not '0'" in message
    assert list(tmp_path.iterdir()) == []


def test_train_threads_must_be_positive(tmp_path, capsys):
    message = usage_error(capsys, ["train", "--shard", "s.json", "--train", "t.npz", "--inserted", "i.npz",
                                   "--learner", "hog_nn", "--threads", "0", "--out", tmp_path / "m.pt"])
    assert "argument --threads: must be a positive integer (1 or more), not '0'" in message


def test_no_train_limit_is_still_accepted(prepared, capsys):
    assert main([str(a) for a in partition_args(prepared, "--train-limit", "None")]) == 0
    assert "40 samples, 2 models in 1 shards" in capsys.readouterr().out


# ---- d. learner parameters must be a JSON object --------------------------------------------------------------------


@pytest.mark.parametrize("text", ["[1,2]", "3", '"cells"', "null"])
def test_learner_params_must_be_a_json_object(tmp_path, capsys, text):
    message = usage_error(capsys, ["train", "--shard", "s.json", "--train", "t.npz", "--inserted", "i.npz",
                                   "--learner", "hog_nn", "--learner-params", text, "--out", tmp_path / "m.pt"])
    assert "argument --learner-params: must be a JSON object of parameter names and values" in message
    assert text in message


# ---- e. report: missing, non-JSON or incomplete metrics --------------------------------------------------------------


def good_metrics(run="r1") -> dict:
    return {"run": run, "dataset": "mnist", "method": "dpa", "k": 2, "d": 1, "versions": 1, "learner": "hog_nn",
            "n_models": 2, "n_train": 40, "n_test": 10, "partition_size": {"min": 20, "mean": 20.0, "max": 20},
            "base_model_accuracy": 0.5, "methods": {"dpa": "DPA"}, "clean_accuracy": {"dpa": 0.6},
            "certified_accuracy": {"dpa": {"0": 0.6, "1": 0.2}}, "median_radius": {"dpa": 0},
            "median_radius_plus_one": {"dpa": 1}}


@pytest.mark.parametrize("content, problem", [
    (None, "metrics file not found"),
    ("{not json", "not a metrics file (not valid JSON"),
    ("[1, 2]", "not a metrics file (a JSON list, not an object)"),
    ('{"run": "r2"}', "not a complete metrics file of the certify step (missing or malformed: dataset, method"),
    (json.dumps({**good_metrics("r2"), "clean_accuracy": {}}),
     "not a complete metrics file of the certify step (missing or malformed: clean_accuracy.dpa)"),
    (json.dumps({**good_metrics("r2"), "partition_size": 3}),
     "not a complete metrics file of the certify step (missing or malformed: partition_size.min/mean/max)"),
])
def test_report_with_bad_metrics(tmp_path, capsys, content, problem):
    (tmp_path / "r1.json").write_text(json.dumps(good_metrics()))
    if content is not None:
        (tmp_path / "r2.json").write_text(content)
    message = cli_error(capsys, ["report", "--metrics", tmp_path / "r1.json", tmp_path / "r2.json",
                                 "--out-dir", tmp_path / "report"])
    assert message.startswith(f"error: {tmp_path / 'r2.json'}: {problem}")
    assert f"re-run certify for run 'r2' (snakemake --force {tmp_path / 'r2.json'} rewrites it)" in message
    assert not (tmp_path / "report").exists()


def test_report_with_a_missing_plot(tmp_path, capsys):
    (tmp_path / "r1.json").write_text(json.dumps(good_metrics()))
    message = cli_error(capsys, ["report", "--metrics", tmp_path / "r1.json",
                                 "--plots", tmp_path / "r1_certified_accuracy.png", "--out-dir", tmp_path / "report"])
    assert "r1_certified_accuracy.png: plot not found; re-run certify for run 'r1'" in message
    assert not (tmp_path / "report").exists()


def test_report_creates_its_out_dir(tmp_path, capsys):
    (tmp_path / "r1.json").write_text(json.dumps(good_metrics()))
    assert main(["report", "--metrics", str(tmp_path / "r1.json"), "--out-dir", str(tmp_path / "a" / "report")]) == 0
    assert "r1 DPA" in (tmp_path / "a/report/summary.txt").read_text()
    assert (tmp_path / "a/report/index.html").is_file()


# ---- f. output into a folder that does not exist --------------------------------------------------------------------


def test_atomic_write_refuses_a_missing_folder(tmp_path):
    with pytest.raises(PipelineError, match=rf"^{tmp_path / 'nope' / 'x.txt'}: folder {tmp_path / 'nope'} does not "
                                            "exist; create it or choose another output path$"):
        write_text(tmp_path / "nope" / "x.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_train_into_a_missing_folder(prepared, capsys):
    out = prepared / "models" / "shard_0.pt"
    message = cli_error(capsys, ["train", "--shard", prepared / "partition/shard_0.json", "--train",
                                 prepared / "train.npz", "--inserted", prepared / "partition/inserted.npz",
                                 "--learner", "hog_nn", "--device", "cpu", "--out", out])
    assert message == (f"error: {out}: folder {prepared / 'models'} does not exist; create it or choose another "
                       "output path")
    assert not (prepared / "models").exists()


def test_partition_creates_its_out_dir(prepared, capsys):
    argv = partition_args(prepared)
    argv[argv.index("--out-dir") + 1] = prepared / "new" / "partition"
    assert main([str(a) for a in argv]) == 0
    assert sorted(p.name for p in (prepared / "new/partition").iterdir()) == [
        "assignment.parquet", "buckets_0.json", "inserted.npz", "shard_0.json"]


# ---- g. the workflow: YAML syntax errors and the config file a bad key comes from -----------------------------------


@pytest.fixture
def parse_project(tmp_path):
    """A workflow copy with a valid params.yaml (parsing fails before any data is needed)."""
    return make_project(tmp_path / "project", tiny_params(tmp_path / "raw"))


@pytest.mark.workflow
def test_workflow_names_file_and_line_of_a_yaml_syntax_error(parse_project):
    text = (parse_project / "params.yaml").read_text().splitlines()
    line = next(i for i, t in enumerate(text) if t.strip().startswith("sources:"))
    text[line] = text[line].replace("sources:", "sources: [local, pypi")  # an unclosed flow sequence
    (parse_project / "params.yaml").write_text("\n".join(text) + "\n")
    result = snakemake(parse_project, "-n", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "params.yaml, line " in output, output
    assert f"that starts at line {line + 1}, column" in output, output
    assert "fix the YAML syntax there" in output


@pytest.mark.workflow
def test_workflow_names_the_configfile_a_bad_key_comes_from(parse_project):
    params = tiny_params(parse_project / "raw")
    params["runs"]["tiny"]["learner"]["params"] = {"orientations": 0}
    (parse_project / "other.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = snakemake(parse_project, "-n", "--configfile", "other.yaml", check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert ("other.yaml: runs.tiny.learner.params: learner 'orient_nn': orientations: 0 is less than the minimum of 2"
            in output), output
    assert "params.yaml: runs" not in output
    # the same key in params.yaml is named as coming from there
    (parse_project / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    result = snakemake(parse_project, "-n", check=False)
    assert "params.yaml: runs.tiny.learner.params: learner 'orient_nn': orientations: 0" in result.stdout + result.stderr
