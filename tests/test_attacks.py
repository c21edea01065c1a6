"""Empirical poisoning attacks (docs/attacks.md): crafting, the attacked ensembles against full pipeline runs on
the same edits, soundness in the loop (and that it catches an inflated certificate), the workflow targets."""

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.artifacts.attacks import read_result
from pipeline.attacks import soundness
from pipeline.attacks.crafting import nudge_sum, search, stamp, sum_shifts
from pipeline.attacks.label_flip import most_confused
from pipeline.attacks.targeted import runner_up
from pipeline.config import validate
from pipeline.errors import PipelineError
from pipeline.partition import assign_buckets

from .conftest import declared_and_measured, executed_jobs, make_project, snakemake, tiny_params, write_params
from .test_faults import run_and_kill

ATTACKS = {"seed": 0, "targeted": {"targets": 6, "max_budget": None}, "label_flip": {"budgets": [4, 10]},
           "backdoor": {"budgets": [3, 10], "target_class": 0, "patch": 4, "triggered": 40}}
CLEAN = ["work/{run}/certificates.parquet", "metrics/{run}.json", "work/{run}/distances/buckets_0.parquet",
         "work/{run}/partition/buckets_0.json"]


# --- crafting -------------------------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n_buckets=st.integers(2, 3000))
def test_near_copies_land_in_every_reachable_bucket_under_pixel_sum(seed, n_buckets):
    rng = np.random.default_rng(seed)
    density = rng.choice([0.002, 0.2, 0.99])  # nearly blank, digit-like, nearly full: some buckets one way only
    image = np.where(rng.random((28, 28)) < density, rng.integers(0, 256, (28, 28)), 0).astype(np.uint8)
    shifts = sum_shifts(image, n_buckets)
    for b in rng.choice(n_buckets, size=min(n_buckets, 5), replace=False):
        copy = nudge_sum(image, int(shifts[b]))
        assert copy.dtype == np.uint8 and copy.shape == image.shape
        assert int(copy.sum(dtype=np.int64)) - int(image.sum(dtype=np.int64)) == shifts[b]
        assert assign_buckets(copy[None], n_buckets, "pixel_sum")[0] == b
        assert np.abs(copy.astype(int) - image).sum() == abs(shifts[b])  # no pixel moved both ways
        other = int(image.sum(dtype=np.int64)) + shifts[b] - np.sign(shifts[b]) * n_buckets  # the other way round
        assert abs(shifts[b]) <= (n_buckets + 1) // 2 or not 0 <= other <= 255 * 784  # the nearer way, if it exists


def test_a_sha256_near_copy_is_searched_into_a_wanted_bucket():
    image = np.zeros((28, 28), np.uint8)
    image[10:18, 12:15] = 200
    wanted = np.zeros(50, bool)
    wanted[[7, 31]] = True
    copy, bucket = search(image, wanted, 50, "sha256", np.random.default_rng(0), tries=5000)
    assert bucket in (7, 31) and assign_buckets(copy[None], 50, "sha256")[0] == bucket
    assert 0 < np.abs(copy.astype(int) - image).sum() <= 9
    assert search(image, np.zeros(50, bool), 50, "sha256", np.random.default_rng(0), tries=100) is None


def test_the_trigger_is_a_checkerboard_in_the_corner():
    images = np.full((2, 8, 8), 100, np.uint8)
    out = stamp(images, 3)
    assert (out[:, :5] == 100).all() and (out[:, :, :5] == 100).all() and (images == 100).all()
    assert out[0, 5, 5] == 255 and out[0, 5, 6] == 0 and out[1, 7, 7] == 255
    assert stamp(np.zeros((1, 8, 8, 3), np.uint8), 2)[0, 6, 6].tolist() == [255, 255, 255]


def test_runner_up_is_the_dpa_certificates_closest_rival():
    assert runner_up(np.array([5, 9, 5, 1]), 1) == 0  # a tie: the smaller class is the closer rival
    assert runner_up(np.array([0, 9, 5, 5]), 1) == 2
    assert runner_up(np.array([9, 2, 4, 4]), 0) == 2


def test_label_flips_go_to_the_most_confused_class():
    labels = np.array([0, 0, 0, 1, 1, 2])
    predictions = np.array([0, 2, 2, 1, 0, 2])
    assert most_confused(predictions, labels, 3).tolist() == [2, 0, 0]  # class 2 is never confused: 2 + 1 mod 3


def test_the_soundness_check_names_the_sample_the_method_and_the_budget():
    clean = {"dpa": np.array([1, 2, 3]), "dpa_roe": np.array([1, 2, 3])}
    attacked = {"dpa": np.array([1, 0, 3]), "dpa_roe": np.array([1, 2, 3])}
    radius = {"dpa": np.array([5, 3, 0]), "dpa_roe": np.array([5, 4, 0])}
    assert soundness.check("targeted", 4, ["dpa", "dpa_roe"], radius, clean, attacked) == 3  # 3 is below 4: sound
    with pytest.raises(PipelineError, match=r"targeted attack with budget 3 changed the DPA prediction of test sample "
                                            r"1 from 2 to 0, but its DPA certificate says radius 3 >= 3"):
        soundness.check("targeted", 3, ["dpa", "dpa_roe"], radius, clean, attacked)


@pytest.mark.parametrize("change,message", [
    ({"label_flip": {"budgets": [3]}}, r"runs\.tiny\.attacks\.label_flip\.budgets\.0: 3 is not a multiple of 2"),
    ({"targeted": {"targets": 0, "max_budget": None}}, r"runs\.tiny\.attacks\.targeted\.targets: 0 is less than"),
    ({"backdoor": {"budgets": [1], "patch": 2, "triggered": 5}}, r"runs\.tiny\.attacks\.backdoor: 'target_class' is a "
                                                                  "required property"),
    ({"poison": 1}, r"runs\.tiny\.attacks: Additional properties are not allowed \('poison' was unexpected\)"),
])
def test_bad_attack_settings_name_the_key(raw_root, change, message):
    with pytest.raises(PipelineError, match=message):
        validate(tiny_params(raw_root, attacks={**ATTACKS, **change}))


def test_attacks_need_shared_distances_and_a_free_run_name(raw_root):
    params = tiny_params(raw_root, attacks=ATTACKS, learner={"name": "small_cnn", "params": {}})
    with pytest.raises(PipelineError, match=r"runs\.tiny\.attacks: .* needs learner orient_nn or hog_nn with "
                                            r"shared_distances: true; use one, or set attacks: null"):
        validate(params)
    params = tiny_params(raw_root, attacks=ATTACKS, shared_distances=False)
    with pytest.raises(PipelineError, match=r"shared_distances: true"):
        validate(params)
    params = tiny_params(raw_root)
    params["runs"]["tiny_attacks"] = params["runs"]["tiny"]
    with pytest.raises(PipelineError, match=r"runs\.tiny_attacks: a run name may not end in _attacks"):
        validate(params)


# --- the workflow ---------------------------------------------------------------------------------------------------

RUN = {"dpa": {}, "fa": {"method": "fa", "k": 10, "d": 2}}  # tiny DPA k=20; FA k=10, d=2


@pytest.fixture(scope="module", params=["dpa", "fa"])
def attacked(request, tmp_path_factory, raw_root):
    """A tiny project attacked: (project, the result of the snakemake run with attacks, method). The DPA project is
    run clean first, then with attacks added; the FA project with attacks from the start."""
    run = RUN[request.param]
    project = make_project(tmp_path_factory.mktemp(f"attack_{request.param}") / "p", tiny_params(raw_root, **run))
    clean = {}
    if request.param == "dpa":
        snakemake(project)
        clean = {p: (project / p.format(run="tiny")).read_bytes() for p in CLEAN}
    write_params(project, tiny_params(raw_root, **run, attacks=ATTACKS))
    result = snakemake(project)
    for p, data in clean.items():  # reused, never written
        assert (project / p.format(run="tiny")).read_bytes() == data, p
    return project, result, request.param


@pytest.mark.workflow
def test_adding_attacks_runs_only_the_attack_jobs(attacked):
    project, result, method = attacked
    jobs = executed_jobs(result)
    if method == "dpa":  # after the clean run: the attack jobs, their summary and the report, nothing else
        assert jobs == {"attack": 3, "attack_summary": 1, "report": 1, "all": 1}
    assert jobs["attack"] == 3 and jobs["attack_summary"] == 1
    rows = declared_and_measured(project, result)
    assert {Path(b).stem for b, *_ in rows} >= {"attack_targeted", "attack_label_flip", "attack_backdoor"}
    for bench, mem_mb, runtime_min, max_rss, seconds in rows:
        assert max_rss <= mem_mb and seconds <= 60 * runtime_min, (bench, mem_mb, max_rss, seconds)


@pytest.mark.workflow
def test_attack_outputs_and_the_hash_aware_attack_at_radius_plus_one(attacked):
    project, _, method = attacked
    metrics = json.loads((project / "metrics/tiny_attacks.json").read_text())
    assert set(metrics["attacks"]) == {"targeted", "label_flip", "backdoor"}
    for entry in metrics["attacks"].values():
        assert entry["certificates_checked"] > 0 and entry["soundness_violations"] == 0
    targeted = json.loads((project / "work/tiny/attacks/targeted/result.json").read_text())
    assert len(targeted["targets"]) == 6
    for t in targeted["targets"]:
        for m in (method, f"{method}_roe"):
            assert t["flip_budget"][m] is None or t["flip_budget"][m] > t["radius"][m]
        assert t["flip_budget"]["baseline"] == 1  # one near-copy beats the undefended nearest neighbour
    tight = targeted["tightness"][method]
    assert tight["flipped_within_radius"] == 0
    if method == "dpa":  # each near-copy turns one model: radius + 1 of them flip the plurality
        assert tight["flipped_at_radius_plus_one"] == 6
    assert tight["flipped_at_radius_plus_one"] + tight["flipped_later"] + tight["never_flipped"] == 6
    with np.load(project / f"work/tiny/attacks/targeted/edits/target_{targeted['targets'][0]['test_id']}.npz") as npz:
        assert npz["x"].shape == (targeted["targets"][0]["poisons"], 28, 28) and set(npz["y"]) == {
            targeted["targets"][0]["runner_up"]}
    flip = project / "work/tiny/attacks/label_flip/edits/B10"
    assert len(flip.joinpath("exclude.txt").read_text().split()) == 5
    assert (project / "plots/tiny_attacks.png").stat().st_size > 10_000
    summary = (project / "report/summary.txt").read_text()
    assert "tiny attacks: every attacked prediction checked against the certificates" in summary
    assert f"targeted, 6 targets flipped: {method.upper()} 0 within radius" in summary
    assert "tiny_attacks.png" in (project / "report/index.html").read_text()
    header = (project / "plots/tiny_attacks.csv").read_text().splitlines()[0].split(",")
    assert header[0] == "radius" and f"targeted_flipped_{method}" in header and "backdoor_success_baseline" in header


def edit_files(project, edit):
    """The insertion file and exclusion list (or None) of one attack of the project's tiny run: the targeted plan
    with the most poisons, or label flipping at budget 10."""
    if edit == "targeted":
        targeted = json.loads((project / "work/tiny/attacks/targeted/result.json").read_text())
        target = max(targeted["targets"], key=lambda t: t["poisons"])["test_id"]
        return f"work/tiny/attacks/targeted/edits/target_{target}.npz", None
    return "work/tiny/attacks/label_flip/edits/B10/insert.npz", "work/tiny/attacks/label_flip/edits/B10/exclude.txt"


@pytest.fixture(scope="module")
def replayed(attacked, raw_root):
    """A second project running the whole pipeline on two of the attacks' edits: runs ``targeted`` and
    ``label_flip``, the tiny run's settings with the edit files as ``insert`` and ``exclude``."""
    project, _, method = attacked
    params = tiny_params(raw_root, **RUN[method])
    tiny = params["runs"].pop("tiny")
    copy = project.parent / "replayed"
    for edit in ("targeted", "label_flip"):
        insert, exclude = edit_files(project, edit)
        params["runs"][edit] = {**tiny, "insert": insert, "exclude": exclude}
        for path in (insert, exclude):
            if path:
                (copy / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(project / path, copy / path)
    make_project(copy, params)
    shutil.copytree(project / "data/prepared", copy / "data/prepared")
    snakemake(copy)
    return copy


@pytest.mark.parametrize("edit", ["targeted", "label_flip"])
@pytest.mark.workflow
def test_attacked_ensembles_are_those_the_pipeline_trains_on_the_edits(attacked, replayed, edit):
    """The attack stage's ensemble after an edit (only the touched buckets rebuilt, from the clean run's distances)
    predicts every test sample exactly as a run of the whole pipeline on the same insertion file and exclusion list."""
    from pipeline.attacks.ensemble import attacked_predictions, changed_inputs, edited_buckets, models_fed
    from pipeline.edits import read_exclusions
    from pipeline.stages.attack import load_ensemble

    project, _, method = attacked
    insert, exclude = edit_files(project, edit)
    edited = pq.read_table(replayed / f"work/{edit}/certificates.parquet").to_pandas()

    w = lambda p: project / p.format(run="tiny")  # noqa: E731
    groups = sorted((project / "work/tiny/partition").glob("buckets_*.json"), key=lambda p: int(p.stem.split("_")[1]))
    n = len(groups)
    ens, clean = load_ensemble([w(f"work/{{run}}/distances/buckets_{g}.parquet") for g in range(n)], groups,
                               [w(f"work/{{run}}/partition/shard_{g}.json") for g in range(n)],
                               w("work/{run}/certificates.parquet"), w("work/{run}/distances/test_features.npz"),
                               project / "data/prepared/mnist/test.npz", project / "data/prepared/mnist/train.npz",
                               w("work/{run}/partition/inserted.npz"), "orient_nn", {}, 200, "cpu")
    with np.load(project / insert) as npz:
        x, y = npz["x"], npz["y"]
    removed = read_exclusions(project / exclude) if exclude else np.zeros(0, np.int64)
    touched, minima = edited_buckets(ens, clean["inputs"], clean["minima"], x, y, removed)
    changed = changed_inputs(clean["minima"], touched, minima)
    preds, _ = attacked_predictions(ens, clean["minima"], clean["preds"], clean["votes"], touched, minima[changed],
                                    changed, models_fed(ens, touched))
    assert len(changed) > 0
    assert np.array_equal(preds[method], edited["prediction"].to_numpy(np.int64))
    assert np.array_equal(preds[f"{method}_roe"], edited["prediction_roe"].to_numpy(np.int64))
    expected = np.unique(np.concatenate([assign_buckets(x, ens["n_buckets"], "pixel_sum"), ens["bucket_of"](removed)]))
    assert np.array_equal(touched, expected)  # the buckets the edit touches, no others


def attack_cli(project, family, settings, certificates, out):
    """`python -m pipeline attack` arguments for one family on the project's tiny run, writing into ``out``."""
    n = len(list((project / "work/tiny/partition").glob("buckets_*.json")))
    files = lambda pattern: [str(project / pattern.format(g)) for g in range(n)]  # noqa: E731
    return ["attack", "--run", "tiny", "--attack", family, "--settings", json.dumps(settings), "--seed", "0",
            "--radii", *map(str, range(6)), "--distances", *files("work/tiny/distances/buckets_{}.parquet"),
            "--bucket-groups", *files("work/tiny/partition/buckets_{}.json"),
            "--shards", *files("work/tiny/partition/shard_{}.json"), "--certificates", str(certificates),
            "--test-features", str(project / "work/tiny/distances/test_features.npz"),
            "--test", str(project / "data/prepared/mnist/test.npz"), "--test-limit", "200",
            "--train", str(project / "data/prepared/mnist/train.npz"),
            "--inserted", str(project / "work/tiny/partition/inserted.npz"), "--learner", "orient_nn",
            "--device", "cpu", "--result", str(out / "result.json"), "--edits", str(out / "edits")]


@pytest.mark.workflow
def test_an_inflated_certificate_is_caught(attacked, tmp_path, capsys):
    """A certificate that claims more than an attack achieves (a flipped target's radius raised to the poisons that
    flipped it): the attack stage fails naming the sample, the method and the budget, and writes nothing."""
    from pipeline.__main__ import main

    project, _, method = attacked
    targeted = json.loads((project / "work/tiny/attacks/targeted/result.json").read_text())
    victim = min((t for t in targeted["targets"] if t["flip_budget"][method] is not None),
                 key=lambda t: t["flip_budget"][method] - t["radius"][method])
    table = pq.read_table(project / "work/tiny/certificates.parquet")
    radius = table[f"radius_{method}"].to_numpy().copy()
    radius[victim["test_id"]] = victim["flip_budget"][method]
    column = table.schema.get_field_index(f"radius_{method}")
    inflated = table.set_column(column, f"radius_{method}", pa.array(radius, pa.int32()))
    pq.write_table(inflated.replace_schema_metadata(table.schema.metadata), tmp_path / "certificates.parquet")
    assert main(attack_cli(project, "targeted", ATTACKS["targeted"], tmp_path / "certificates.parquet", tmp_path)) == 2
    err = capsys.readouterr().err
    assert "soundness violated: the targeted attack with budget " in err
    assert f"{method.upper()} prediction of test sample {victim['test_id']} from {victim['label']}" in err
    assert f"certificate says radius {victim['flip_budget'][method]} >= " in err and "security bug" in err
    assert not (tmp_path / "result.json").exists() and not (tmp_path / "edits").exists()
    # the true certificates pass
    assert main(attack_cli(project, "targeted", ATTACKS["targeted"], project / "work/tiny/certificates.parquet",
                           tmp_path)) == 0
    assert (tmp_path / "result.json").read_bytes() == (project / "work/tiny/attacks/targeted/result.json").read_bytes()


@pytest.mark.workflow
@pytest.mark.parametrize("attacked", ["dpa"], indirect=True)  # what it checks does not depend on the method
def test_attacks_are_deterministic_and_heal_after_damage(attacked):
    project, _, _ = attacked
    result = project / "work/tiny/attacks/label_flip/result.json"
    before = result.read_bytes(), (project / "work/tiny/attacks/label_flip/edits/B10/insert.npz").read_bytes()
    # killed mid-run (SIGKILL, as the out-of-memory killer would), then a plain rerun
    run_and_kill(project, "attack", "label_flip", "--force", "work/tiny/attacks/label_flip/result.json")
    assert executed_jobs(snakemake(project)).get("attack") == 1
    assert (result.read_bytes(), (project / "work/tiny/attacks/label_flip/edits/B10/insert.npz").read_bytes()) == before
    shutil.rmtree(project / "work/tiny/attacks/label_flip/edits")  # a deleted output: the job runs again
    assert executed_jobs(snakemake(project)).get("attack") == 1
    assert (result.read_bytes(), (project / "work/tiny/attacks/label_flip/edits/B10/insert.npz").read_bytes()) == before
    damaged = project / "damaged_result.json"  # a damaged result is refused by the summary with one message
    damaged.write_text("{ not json")
    with pytest.raises(PipelineError, match=r"damaged_result\.json: unreadable attack result .* delete it and run"):
        read_result(damaged)


@pytest.mark.workflow
@pytest.mark.parametrize("attacked", ["dpa"], indirect=True)
def test_a_bad_backdoor_class_or_patch_is_refused_before_any_output(attacked, tmp_path, capsys):
    from pipeline.__main__ import main

    project, _, _ = attacked
    certificates = project / "work/tiny/certificates.parquet"
    for change, message in (({"target_class": 12}, "runs.tiny.attacks.backdoor.target_class: 12 is not a class of "
                                                   "the dataset (0..9)"),
                            ({"patch": 29}, "runs.tiny.attacks.backdoor.patch: 29 pixels is larger than the images "
                                            "(28 x 28)")):
        settings = {**ATTACKS["backdoor"], **change}
        assert main(attack_cli(project, "backdoor", settings, certificates, tmp_path)) == 2
        assert message in capsys.readouterr().err
        assert not list(tmp_path.iterdir())


@pytest.mark.workflow
@pytest.mark.parametrize("attacked", ["dpa"], indirect=True)
def test_the_report_refuses_a_damaged_attack_summary(attacked, tmp_path):
    from pipeline.stages.report import write_report

    project, _, _ = attacked
    bad = tmp_path / "tiny_attacks.json"
    bad.write_text('{"run": "tiny"}')
    with pytest.raises(PipelineError, match=r"tiny_attacks\.json: not an attack summary; delete it and run snakemake"):
        write_report([project / "metrics/tiny.json"], [], tmp_path / "report", [bad])
    assert not (tmp_path / "report").exists()
