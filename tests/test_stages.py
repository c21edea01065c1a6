"""Stage functions and the CLI: outputs, and one clear error with no partial output on bad input."""

import json
import subprocess
import sys
import types

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline import learners
from pipeline.artifacts.splits import save_split
from pipeline.errors import PipelineError
from pipeline.provenance import with_self_digest
from pipeline.stages.certify import certify_run
from pipeline.stages.predict import predict_shard
from pipeline.stages.train import train_shard

from .conftest import REPO


def test_predictions_and_run_off_tables(small_run, mnist_prepared):
    """Votes are the argmax of the models' scores; the run-off bits say which classes each finalist of the run's
    votes beats in each model, as the scores do."""
    from pipeline.artifacts.checkpoints import checkpoint_scores, load_checkpoint
    from pipeline.artifacts.runoff import load_beats
    from pipeline.artifacts.splits import load_split
    from pipeline.certify.roe import beats_from_logits

    table = pq.read_table(small_run / "predictions/shard_1.parquet").to_pandas()
    assert len(table) == 3 * 50 and sorted(table.model_id.unique()) == [3, 4, 5] and "logits" not in table
    images, _, _ = load_split(mnist_prepared / "test.npz")
    checkpoints = [load_checkpoint(small_run / f"models/shard_{s}.pt")[0] for s in range(2)]
    scores = np.concatenate([checkpoint_scores(learners.get("hog_nn"), c, images[:50], "cpu")
                             for c in checkpoints])  # [6, 50, 10]
    votes = np.argmax(scores, axis=2).T
    assert (table.vote.to_numpy().reshape(50, 3) == votes[:, 3:]).all()
    runoff = pq.read_table(small_run / "runoff/shard_1.parquet")
    assert runoff.num_rows == 150 and runoff.schema.field("beats").type.byte_width == 4  # 2 x 10 bits, in bytes
    beats = load_beats(sorted(small_run.glob("runoff/*.parquet")), 0, 50, 6, 10)
    assert np.array_equal(beats, beats_from_logits(votes, scores.transpose(1, 0, 2), 10))


def test_certify_outputs(small_run, mnist_prepared, tmp_path):
    metrics = certify_run("small", "mnist", sorted(small_run.glob("predictions/*.parquet")),
                          sorted(small_run.glob("partition/shard_*.json")), mnist_prepared / "test.npz", 50,
                          [0, 1, 2], ["dpa", "dpa_roe"], "hog_nn", {}, tmp_path / "c.parquet", tmp_path / "m.json",
                          tmp_path / "c.csv", tmp_path / "c.png",
                          runoff_paths=sorted(small_run.glob("runoff/*.parquet")))
    cert = pq.read_table(tmp_path / "c.parquet").to_pandas()
    assert list(cert.columns) == ["test_id", "label", "prediction", "radius_dpa", "prediction_roe",
                                  "radius_dpa_roe"] and len(cert) == 50
    assert ((cert.radius_dpa >= 0) == (cert.prediction == cert.label)).all()
    assert ((cert.radius_dpa_roe >= 0) == (cert.prediction_roe == cert.label)).all()
    assert cert.radius_dpa.max() <= 3  # 6 models: at most floor(6 / 2)
    saved = json.loads((tmp_path / "m.json").read_text())
    assert saved == metrics and saved["n_models"] == 6 and saved["n_train"] == 600
    assert saved["certified_accuracy"]["dpa"]["0"] == pytest.approx((cert.radius_dpa >= 0).mean())
    csv = (tmp_path / "c.csv").read_text().splitlines()
    assert saved["clean_accuracy"]["dpa"] == pytest.approx((cert.prediction == cert.label).mean())
    assert saved["methods"] == {"dpa": "DPA", "dpa_roe": "DPA+ROE"}
    assert csv[0] == "radius,dpa,dpa_roe"
    assert float(csv[1].split(",")[1]) == pytest.approx(saved["clean_accuracy"]["dpa"])
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_missing_predictions_are_an_error(small_run, mnist_prepared, tmp_path):
    with pytest.raises(PipelineError, match="1 predictions files for 2 shard files; give one per shard"):
        certify_run("small", "mnist", [small_run / "predictions/shard_0.parquet"],
                    sorted(small_run.glob("partition/shard_*.json")), mnist_prepared / "test.npz", 50, [0], ["dpa"],
                    "hog_nn", {}, tmp_path / "c.parquet", tmp_path / "m.json", tmp_path / "c.csv", tmp_path / "c.png")
    assert not list(tmp_path.iterdir())


def test_duplicate_predictions_are_an_error(small_run):
    from pipeline.stages.certify import certify_all, prediction_chunks

    preds = sorted(small_run.glob("predictions/*.parquet"))
    with pytest.raises(PipelineError, match="each expected exactly once"):
        certify_all(prediction_chunks(preds + preds[:1], 50, 6, 10), np.zeros(50, np.int64), ["dpa"], 10)


def test_training_data_changed_behind_the_shard_file(small_run, mnist_prepared, tmp_path):
    from pipeline.artifacts.splits import load_split

    images, labels, classes = load_split(mnist_prepared / "train.npz")
    shard = json.loads((small_run / "partition/shard_0.json").read_text())
    images = images.copy()
    images[shard["models"][1]["sample_ids"][0]] ^= 1
    save_split(tmp_path / "train.npz", images, labels, classes, "edited")
    with pytest.raises(PipelineError, match="model 1's training samples differ from the prepared data"):
        train_shard(small_run / "partition/shard_0.json", tmp_path / "train.npz", "hog_nn", {}, "cpu", 1,
                    tmp_path / "out.pt")
    assert not (tmp_path / "out.pt").exists()


def test_test_set_of_another_shape(small_run, tmp_path):
    images = np.zeros((5, 32, 32, 3), np.uint8)
    save_split(tmp_path / "test.npz", images, np.zeros(5, np.int64), [str(c) for c in range(10)], "other")
    with pytest.raises(PipelineError, match=r"test images \[32, 32, 3\] with 10 classes do not match"):
        predict_shard(small_run / "models/shard_0.pt", small_run / "partition/shard_0.json", tmp_path / "test.npz",
                      "hog_nn", {}, None, "cpu", 1, tmp_path / "p.parquet")
    assert not (tmp_path / "p.parquet").exists()


def test_nan_scores_are_an_error(small_run, mnist_prepared, tmp_path, monkeypatch):
    import torch

    from pipeline.provenance import content_digest, learner_spec

    fake = types.SimpleNamespace(DEFAULTS={}, predict=lambda states, images, n, params, device: np.full(
        (len(states), len(images), n), np.nan, np.float32))
    monkeypatch.setitem(learners.LEARNERS, "nan_learner", fake)
    ckpt = torch.load(small_run / "models/shard_0.pt", weights_only=True)
    ckpt["learner"], ckpt["params"] = "nan_learner", {}
    ckpt["provenance"]["learner"] = learner_spec("nan_learner", {})
    ckpt.pop("content_sha256")
    torch.save({**ckpt, "content_sha256": content_digest(ckpt)}, tmp_path / "nan.pt")
    with pytest.raises(PipelineError, match="NaN or all -inf scores"):
        predict_shard(tmp_path / "nan.pt", small_run / "partition/shard_0.json", mnist_prepared / "test.npz",
                      "nan_learner", {}, 20, "cpu", 1, tmp_path / "p.parquet")
    assert not (tmp_path / "p.parquet").exists()


def test_cli_reports_one_clear_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pipeline", "predict", "--model", str(tmp_path / "nope.pt"),
                             "--shard", str(tmp_path / "shard_0.json"), "--learner", "hog_nn",
                             "--test", str(tmp_path / "test.npz"), "--out", str(tmp_path / "p.parquet")],
                            capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "checkpoint missing" in result.stderr and not (tmp_path / "p.parquet").exists()


def test_cli_help_lists_every_stage():
    out = subprocess.run([sys.executable, "-m", "pipeline", "--help"], capture_output=True, text=True, cwd=REPO).stdout
    for stage in ("prepare", "partition", "train", "predict", "certify", "report"):
        assert stage in out


def test_dpa_star_sums_the_versions_of_each_model():
    from pipeline.artifacts.checkpoints import checkpoint_scores
    from pipeline.partition import model_seeds

    assert model_seeds(7, 3) == [7, 1_000_007, 2_000_007] and model_seeds(7) == [7]
    fake = types.SimpleNamespace(predict=lambda states, images, n, params, device: np.stack(
        [np.full((len(images), n), s["value"], np.float32) for s in states]))
    ckpt = {"n_classes": 3, "params": {}, "models": [
        {"model_id": 0, "versions": [{"value": 1.0}, {"value": 2.0}]},
        {"model_id": 1, "versions": [{"value": 10.0}, {"value": -4.0}]}]}
    logits = checkpoint_scores(fake, ckpt, np.zeros((5, 2, 2), np.uint8), None)
    assert logits.shape == (2, 5, 3) and (logits[0] == 3.0).all() and (logits[1] == 6.0).all()


def test_a_model_never_sees_samples_outside_its_subset(small_run, mnist_prepared, tmp_path):
    """Retraining one model on a training set whose every other sample was replaced gives the same model."""
    import torch

    from pipeline.artifacts.splits import load_split

    images, labels, classes = load_split(mnist_prepared / "train.npz")
    shard = json.loads((small_run / "partition/shard_0.json").read_text())
    shard["models"] = shard["models"][:1]
    (tmp_path / "one.json").write_text(json.dumps(with_self_digest(shard)))
    own = np.zeros(len(labels), bool)
    own[shard["models"][0]["sample_ids"]] = True
    noisy = images.copy()
    noisy[~own] = np.random.default_rng(0).integers(0, 256, size=noisy[~own].shape, dtype=np.uint8)
    save_split(tmp_path / "noisy.npz", noisy, labels, classes, "edited")
    params = {"epochs": 1, "width": 8}
    train_shard(tmp_path / "one.json", mnist_prepared / "train.npz", "small_cnn", params, "cpu", 1, tmp_path / "a.pt")
    train_shard(tmp_path / "one.json", tmp_path / "noisy.npz", "small_cnn", params, "cpu", 1, tmp_path / "b.pt")
    a = torch.load(tmp_path / "a.pt", weights_only=True)["models"][0]["versions"][0]
    b = torch.load(tmp_path / "b.pt", weights_only=True)["models"][0]["versions"][0]
    assert all(torch.equal(a["weights"][k], b["weights"][k]) for k in a["weights"])
    assert torch.equal(a["mean"], b["mean"]) and torch.equal(a["std"], b["std"])


def test_shard_files_missing_a_model_are_an_error(small_run, tmp_path):
    from pipeline.artifacts.partition_files import read_layout

    shard = json.loads((small_run / "partition/shard_0.json").read_text())
    shard["models"] = shard["models"][1:]
    (tmp_path / "s.json").write_text(json.dumps(with_self_digest(shard)))
    with pytest.raises(PipelineError, match="model ids 0..n-1 exactly once"):
        read_layout([tmp_path / "s.json", small_run / "partition/shard_1.json"])


def test_cuda_requested_without_a_gpu(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(PipelineError, match="no CUDA GPU is available; set device: auto or cpu"):
        learners.pick_device("cuda")
    assert learners.pick_device("auto").type == "cpu"
