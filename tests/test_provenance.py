"""Provenance: every checkpoint and predictions file records what it was computed from; predict and certify
refuse anything stale or damaged with one message naming the file and the fix; checkpoints are bit-identical."""

import hashlib
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipeline import provenance
from pipeline.artifacts.certificates import read_certificates
from pipeline.artifacts.partition_files import read_shard
from pipeline.artifacts.predictions import read_record
from pipeline.errors import PipelineError
from pipeline.provenance import content_digest, with_self_digest
from pipeline.stages.certify import certify_run
from pipeline.stages.predict import predict_shard
from pipeline.stages.train import train_shard


def predict(small_run, mnist_prepared, out, shard=None, params=None, model=None, test_limit=50):
    predict_shard(model or small_run / "models/shard_0.pt", shard or small_run / "partition/shard_0.json",
                  mnist_prepared / "test.npz", "hog_nn", params or {}, test_limit, "cpu", 1, out)


def certify(small_run, mnist_prepared, out_dir, predictions=None, shards=None, params=None, methods=("dpa", "dpa_roe"),
            test_limit=50, runoff=None):
    return certify_run("r", "mnist", predictions or sorted(small_run.glob("predictions/*.parquet")),
                       shards or sorted(small_run.glob("partition/shard_*.json")), mnist_prepared / "test.npz",
                       test_limit, [0, 1], list(methods), "hog_nn", params or {}, out_dir / "c.parquet",
                       out_dir / "m.json", out_dir / "c.csv", out_dir / "c.png",
                       runoff_paths=runoff or sorted(small_run.glob("runoff/*.parquet")))


def altered_shard(small_run, tmp_path, name="shard_0.json"):
    """shard_0.json whose model 1 lists one sample fewer (as after a deletion), with a valid self-digest."""
    shard = json.loads((small_run / "partition/shard_0.json").read_text())
    shard["models"][1]["sample_ids"] = shard["models"][1]["sample_ids"][1:]
    shard["models"][1]["subset_sha256"] = "0" * 64
    (tmp_path / name).write_text(json.dumps(with_self_digest(shard)))
    return tmp_path / name


def test_checkpoints_are_bit_identical_between_runs(small_run, mnist_prepared, tmp_path):
    train_shard(small_run / "partition/shard_0.json", mnist_prepared / "train.npz", "hog_nn", {}, "cpu", 1,
                tmp_path / "again.pt")
    assert (tmp_path / "again.pt").read_bytes() == (small_run / "models/shard_0.pt").read_bytes()


def test_checkpoint_records_its_subsets_and_learner(small_run):
    import torch

    ckpt = torch.load(small_run / "models/shard_1.pt", weights_only=True)
    shard = read_shard(small_run / "partition/shard_1.json")
    assert ckpt["provenance"]["models"] == provenance.model_records(shard["models"])
    spec = ckpt["provenance"]["learner"]
    assert spec["name"] == "hog_nn" and spec["params"]["orientations"] == 9
    assert spec["code_sha256"] == provenance.code_digest("hog_nn")


def test_predict_refuses_a_checkpoint_of_other_models(small_run, mnist_prepared, tmp_path):
    with pytest.raises(PipelineError, match=r"stale, it does not belong to .*shard_1.json \(it holds models 0..2, "
                                            r"the shard file 3..5\); retrain it: delete"):
        predict(small_run, mnist_prepared, tmp_path / "p.parquet", shard=small_run / "partition/shard_1.json")
    with pytest.raises(PipelineError, match="model 1 was trained on other samples than the shard file lists"):
        predict(small_run, mnist_prepared, tmp_path / "p.parquet", shard=altered_shard(small_run, tmp_path))
    assert not (tmp_path / "p.parquet").exists()


def test_predict_refuses_a_checkpoint_of_other_learner_settings(small_run, mnist_prepared, tmp_path, monkeypatch):
    with pytest.raises(PipelineError, match=r"stale, computed with other learner settings \(learner parameters "
                                            r"differ \(orientations\)\)"):
        predict(small_run, mnist_prepared, tmp_path / "p.parquet", params={"orientations": 8})
    monkeypatch.setattr(provenance, "code_digest", lambda name: "f" * 64)
    with pytest.raises(PipelineError, match="the learner's code has changed since"):
        predict(small_run, mnist_prepared, tmp_path / "p.parquet")
    assert not (tmp_path / "p.parquet").exists()


def test_predict_refuses_a_damaged_checkpoint(small_run, mnist_prepared, tmp_path):
    import torch

    ckpt = torch.load(small_run / "models/shard_0.pt", weights_only=True)
    ckpt["models"][0]["versions"][0]["images"][0, 5, 5] ^= 1  # one pixel of a stored training image
    torch.save(ckpt, tmp_path / "damaged.pt")
    with pytest.raises(PipelineError, match="damaged checkpoint .*; delete it and run snakemake again"):
        predict(small_run, mnist_prepared, tmp_path / "p.parquet", model=tmp_path / "damaged.pt")
    del ckpt["content_sha256"]
    torch.save(ckpt, tmp_path / "old.pt")
    with pytest.raises(PipelineError, match="or written by an older version"):
        predict(small_run, mnist_prepared, tmp_path / "p.parquet", model=tmp_path / "old.pt")
    assert not (tmp_path / "p.parquet").exists()


def test_a_damaged_shard_file_is_refused(small_run, tmp_path):
    shard = json.loads((small_run / "partition/shard_0.json").read_text())
    shard["models"][1]["buckets"] = [2]  # a valid-looking layout that would change FA certificates
    (tmp_path / "s.json").write_text(json.dumps(shard))
    with pytest.raises(PipelineError, match="damaged shard file .*delete it and run snakemake again"):
        read_shard(tmp_path / "s.json")


def test_certify_refuses_stale_predictions(small_run, mnist_prepared, tmp_path):
    shards = [altered_shard(small_run, tmp_path), small_run / "partition/shard_1.json"]
    cases = [
        (dict(shards=shards), r"shard_0.parquet: stale, it does not belong to .*model 1 was trained on other samples"),
        (dict(params={"cells": [7]}), r"stale, computed with other learner settings \(learner parameters differ "
                                      r"\(cells\)\)"),
        (dict(test_limit=40), "stale, computed on another test set .50 samples"),
        (dict(predictions=list(reversed(sorted(small_run.glob("predictions/*.parquet"))))), "holds shard 1, expected"),
    ]
    for changes, message in cases:
        out = tmp_path / "out"
        out.mkdir(exist_ok=True)
        with pytest.raises(PipelineError, match=message):
            certify(small_run, mnist_prepared, out, **changes)
        assert not list(out.iterdir())


def test_certify_refuses_run_off_election_without_matching_run_off_files(small_run, mnist_prepared, tmp_path):
    """ROE needs every shard's run-off file, from the predictions' checkpoints, for the finalists of their votes."""
    from pipeline.stages.certify import certify_run

    runoff = sorted(small_run.glob("runoff/*.parquet"))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(PipelineError, match=r"needs every shard's run-off file \(--runoff\)"):
        certify_run("r", "mnist", sorted(small_run.glob("predictions/*.parquet")),
                    sorted(small_run.glob("partition/shard_*.json")), mnist_prepared / "test.npz", 50, [0],
                    ["dpa", "dpa_roe"], "hog_nn", {}, out / "c.parquet", out / "m.json", out / "c.csv", out / "c.png")
    with pytest.raises(PipelineError, match="1 run-off files for 2 predictions files"):
        certify(small_run, mnist_prepared, out, runoff=runoff[:1])
    with pytest.raises(PipelineError, match="holds shard 1, expected shard 0"):
        certify(small_run, mnist_prepared, out, runoff=runoff[::-1])
    # shard 0 predicted by another checkpoint (the same models, a changed stored image): other finalists too
    import torch

    ckpt = torch.load(small_run / "models/shard_0.pt", weights_only=True)
    ckpt["models"][0]["versions"][0]["images"][:] = 0
    from pipeline.artifacts.checkpoints import save_checkpoint
    ckpt.pop("content_sha256", None)
    save_checkpoint(tmp_path / "other.pt", ckpt)
    predict(small_run, mnist_prepared, tmp_path / "shard_0.parquet", model=tmp_path / "other.pt")
    predictions = [tmp_path / "shard_0.parquet", small_run / "predictions/shard_1.parquet"]
    with pytest.raises(PipelineError, match="computed from another checkpoint than"):
        certify(small_run, mnist_prepared, out, predictions=predictions)
    from pipeline.artifacts.runoff import run_finalists
    from pipeline.stages.predict import runoff_shard

    before = run_finalists(sorted(small_run.glob("predictions/*.parquet")), 50, 6, 10)
    after = run_finalists(predictions, 50, 6, 10)
    assert not all(np.array_equal(a, b) for a, b in zip(before, after))  # the new votes move some finalists
    runoff_shard(tmp_path / "other.pt", small_run / "partition/shard_0.json", mnist_prepared / "test.npz", predictions,
                 predictions[0], "hog_nn", {}, 6, 50, "cpu", 1, tmp_path / "runoff_0.parquet")
    with pytest.raises(PipelineError, match="shard_1.parquet: computed for other finalists than the votes"):
        certify(small_run, mnist_prepared, out, predictions=predictions, runoff=[tmp_path / "runoff_0.parquet",
                                                                                runoff[1]])
    assert not list(out.iterdir())
    certify(small_run, mnist_prepared, out, predictions=predictions, methods=["dpa"])  # plain DPA needs no run-off


def test_runoff_refuses_predictions_that_are_not_its_checkpoints(small_run, mnist_prepared, tmp_path):
    """The run-off bits must belong to the votes certify reads: predictions of another checkpoint, or whose votes
    the checkpoint's scores do not give, are refused (nothing written)."""
    from pipeline.stages.predict import runoff_shard

    predictions = sorted(small_run.glob("predictions/*.parquet"))

    def runoff(own):
        runoff_shard(small_run / "models/shard_0.pt", small_run / "partition/shard_0.json", mnist_prepared / "test.npz",
                     predictions, own, "hog_nn", {}, 6, 50, "cpu", 1, tmp_path / "r.parquet")

    with pytest.raises(PipelineError, match="shard_1.parquet: predicted from another checkpoint"):
        runoff(predictions[1])
    table = pq.read_table(predictions[0])
    votes = table["vote"].to_numpy().copy()
    votes[7] = (votes[7] + 1) % 10
    pq.write_table(table.set_column(table.schema.get_field_index("vote"), "vote", pa.array(votes)),
                   tmp_path / "tampered.parquet")
    with pytest.raises(PipelineError, match="tampered.parquet: its votes differ from the scores"):
        runoff(tmp_path / "tampered.parquet")
    assert not (tmp_path / "r.parquet").exists()


def test_predictions_without_a_record_are_refused(small_run, mnist_prepared, tmp_path):
    table = pq.read_table(small_run / "predictions/shard_0.parquet")
    pq.write_table(table.replace_schema_metadata(None), tmp_path / "shard_0.parquet")
    with pytest.raises(PipelineError, match="records no provenance .*delete it and run snakemake again"):
        certify(small_run, mnist_prepared, tmp_path,
                predictions=[tmp_path / "shard_0.parquet", small_run / "predictions/shard_1.parquet"])


def test_results_record_their_provenance(small_run, mnist_prepared, tmp_path):
    metrics = certify(small_run, mnist_prepared, tmp_path)
    origin = metrics["provenance"]
    assert origin["test"]["n_test"] == 50 and origin["learner"]["name"] == "hog_nn"
    assert len(origin["partition_sha256"]) == len(origin["checkpoints_sha256"]) == 64
    records = [read_record(p) for p in sorted(small_run.glob("predictions/*.parquet"))]
    assert [r["checkpoint_sha256"] for r in records] == [hashlib.sha256(p.read_bytes()).hexdigest()
                                                         for p in sorted(small_run.glob("models/*.pt"))]
    assert json.loads((tmp_path / "m.json").read_text())["provenance"] == origin
    certificates, stored = read_certificates(tmp_path / "c.parquet")
    assert stored == origin and len(certificates) == 50
    # a different learner setting or partition gives different digests
    assert origin["learner"]["sha256"] != provenance.learner_spec("hog_nn", {**origin["learner"]["params"],
                                                                             "block": 2})["sha256"]


def test_content_digest_sees_dtype_shape_and_values():
    import torch

    base = {"w": torch.zeros(2, 3), "n": 1}
    digests = {content_digest(x) for x in (base, {"w": torch.zeros(3, 2), "n": 1}, {"w": torch.zeros(2, 3,
               dtype=torch.float64), "n": 1}, {"w": torch.zeros(2, 3), "n": 2}, {"w": torch.ones(2, 3), "n": 1})}
    assert len(digests) == 5 and content_digest(base) == content_digest({"n": 1, "w": torch.zeros(2, 3)})


def test_predict_writes_test_chunks_as_one_table(small_run, mnist_prepared, tmp_path, monkeypatch):
    """Scoring the test set in chunks gives exactly the table of scoring it at once."""
    from pipeline import resources

    monkeypatch.setattr(resources, "TEST_CHUNK_PIXELS", 784 * 16)  # chunks of 512 (the row-group size)
    predict(small_run, mnist_prepared, tmp_path / "chunked.parquet", test_limit=1100)
    monkeypatch.setattr(resources, "TEST_CHUNK_PIXELS", 2**23)
    predict(small_run, mnist_prepared, tmp_path / "whole.parquet", test_limit=1100)
    chunked, whole = pq.read_table(tmp_path / "chunked.parquet"), pq.read_table(tmp_path / "whole.parquet")
    assert chunked.num_rows == 1100 * 3 and chunked.equals(whole)
    assert pq.ParquetFile(tmp_path / "chunked.parquet").metadata.num_row_groups == 3


def test_hog_nn_scores_do_not_depend_on_the_other_models_of_the_shard(small_run):
    """A model's scores computed alone equal those computed beside the other models of its shard."""
    import torch

    from pipeline.learners import hog_nn, resolve_params

    ckpt = torch.load(small_run / "models/shard_0.pt", weights_only=True)
    states = [m["versions"][0] for m in ckpt["models"]]
    test = states[2]["images"].numpy()[:20]
    params = resolve_params("hog_nn", {})
    together = hog_nn.predict(states, test, 10, params, torch.device("cpu"))
    alone = hog_nn.predict(states[1:2], test, 10, params, torch.device("cpu"))
    assert np.array_equal(together[1], alone[0])
    assert isinstance(together, np.ndarray) and pa is not None
