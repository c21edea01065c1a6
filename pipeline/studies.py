"""Studies (``studies:`` in params.yaml): named sweeps that expand into ordinary runs, plus the learning curve.

Pure functions over the params dict; the Snakefile (rules/common.smk) adds the runs they expand into to the
configured ones, and rules/study.smk summarises each study (docs/studies.md).

Kinds:

- ``learning_curve``: the base run's learner trained on random subsets of sizes ``sizes`` (log-spaced), every
  size with ``seeds`` draws; no runs (one job per size).
- ``k_sweep``: the base run at every k in ``k``, for each method in ``methods`` (DPA, FA with degree ``d``).
- ``base_model_scaling``: the base run with each learner setting in ``settings``, at every k in ``k``.

A study's run is the base run with the study's ``overrides`` and the swept values applied (its shard size
scaled with k, so that every run has as many jobs as the base run), and without attacks. A run with the
same settings as a configured run, or as a run of an earlier study, is that run (built once, shared).
"""

import copy
import json

import numpy as np

SWEPT = {"learning_curve": (), "k_sweep": ("k", "method", "d"), "base_model_scaling": ("k", "learner")}
STUDY_RUN_SEPARATOR = "__"  # study runs are called <study>__<what varies>, e.g. mnist_k__dpa_k600


def _merged(base: dict, overrides: dict) -> dict:
    """``base`` updated with ``overrides`` key by key (``learner`` replaced as a whole: a new learner's
    parameters do not inherit the old learner's)."""
    run = copy.deepcopy(base)
    for key, value in overrides.items():
        run[key] = copy.deepcopy(value)
    run["attacks"] = None
    run.setdefault("shared_distances", True)
    return run


def study_base(params: dict, name: str) -> dict:
    """The run a study varies: its base run with its overrides (no attacks)."""
    study = params["studies"][name]
    return _merged(params["runs"][study["base"]], study["overrides"])


def scaled_epochs(learner: dict, k: int, base_k: int) -> dict:
    """A learner spec whose epochs (and learning-rate milestones) are scaled by k / base_k, so that every base
    model takes about the same number of steps whatever its partition size (N / k samples); learners without
    epochs are returned as they are."""
    from .learners import resolve_params

    resolved = resolve_params(learner["name"], learner["params"])
    if "epochs" not in resolved or k == base_k:
        return copy.deepcopy(learner)
    factor = k / base_k
    params = dict(learner["params"], epochs=max(1, round(resolved["epochs"] * factor)))
    if "milestones" in resolved:
        params["milestones"] = [max(0, round(m * factor)) for m in resolved["milestones"]]
    return {"name": learner["name"], "params": params}


def scaled_shard_size(base: dict, k: int) -> int:
    """The base run's shard size scaled by k / (its k), so that a run of the study has as many train, predict
    or distances jobs as the base run, each with about as much work (k models of N / k samples each)."""
    return max(1, round(base["shard_size"] * k / base["k"]))


def planned_runs(params: dict, name: str) -> list[tuple[str, dict, dict]]:
    """(run name, run settings, what the study varies) of every run a study asks for, before sharing."""
    study = params["studies"][name]
    base = study_base(params, name)
    runs = []
    if study["kind"] == "k_sweep":
        for method in study["methods"]:
            d = 1 if method == "dpa" else (study["d"] or base["d"])
            for k in study["k"]:
                label = f"{method}_k{k}" + (f"_d{d}" if method == "fa" else "")
                run = dict(base, method=method, k=k, d=d, versions=1 if method == "fa" else base["versions"],
                           shard_size=scaled_shard_size(base, k))
                runs.append((f"{name}{STUDY_RUN_SEPARATOR}{label}", run, {"method": method, "k": k, "d": d}))
    elif study["kind"] == "base_model_scaling":
        for setting, learner in study["settings"].items():
            for k in study["k"]:
                spec = scaled_epochs(learner, k, base["k"]) if study["scale_epochs"] else copy.deepcopy(learner)
                run = dict(base, k=k, learner=spec, shard_size=scaled_shard_size(base, k))
                runs.append((f"{name}{STUDY_RUN_SEPARATOR}{setting}_k{k}", run, {"setting": setting, "k": k}))
    return runs


def run_key(run: dict) -> str:
    """What makes two runs the same computation: their settings with the learner's parameters resolved
    (defaults filled in), without attacks."""
    from .learners import resolve_params

    settings = {key: value for key, value in run.items() if key != "attacks"}
    settings["shared_distances"] = run.get("shared_distances", True)
    settings["learner"] = {"name": run["learner"]["name"],
                           "params": resolve_params(run["learner"]["name"], run["learner"]["params"])}
    return json.dumps(settings, sort_keys=True)


def expand(params: dict) -> tuple[dict, dict]:
    """(new runs, members): the runs the studies add (name -> settings), and per study the runs it reads as
    a list of {"run": name, **what varies} (a run equal to a configured or earlier study run is that run)."""
    existing = {run_key(run): name for name, run in params["runs"].items()}
    new_runs, members = {}, {}
    for name in params.get("studies", {}):
        members[name] = []
        for run_name, run, varies in planned_runs(params, name):
            key = run_key(run)
            if key not in existing:
                existing[key] = run_name
                new_runs[run_name] = run
            members[name].append({"run": existing[key], **varies})
    return new_runs, members


def curve_sizes(study: dict, n_train: int) -> list[int]:
    """Subset sizes of a learning curve: ``points`` sizes log-spaced from min_size to max_size (null: half
    the training set), rounded, distinct, then the whole training set (the full-data accuracy)."""
    top = min(study["max_size"] or n_train // 2, n_train)
    low = min(study["min_size"], top)
    sizes = np.unique(np.rint(np.geomspace(low, top, study["points"])).astype(int))
    return [int(s) for s in sizes if s < n_train] + [n_train]


def swept_override(study: dict):
    """(key, problem) of the first override of a setting the study varies itself, or None."""
    swept = [key for key in SWEPT[study["kind"]] if key in study["overrides"]]
    if not swept:
        return None
    return swept[0], (f"the study sets {swept[0]} itself (it varies {', '.join(SWEPT[study['kind']])}); remove it "
                      "from overrides")


def study_problems(params: dict) -> list[tuple[str, str]]:
    """(where, problem) of the checks the schema cannot express, in study order."""
    problems = []
    runs = params["runs"]
    studies = params.get("studies", {})
    for name, study in studies.items():
        where = f"studies.{name}"
        if study["base"] not in runs:
            problems.append((f"{where}.base", f"{study['base']!r} is not a run under runs: (runs: "
                             f"{', '.join(runs)})"))
            continue
        base = study_base(params, name)
        if study["kind"] == "k_sweep":
            if "fa" in study["methods"] and not study["d"] and base["method"] != "fa":
                problems.append((f"{where}.d", "method fa needs a spreading degree d; set d (e.g. 16)"))
            curve = study["learning_curve"]
            if curve is not None:
                other = studies.get(curve)
                if other is None or other["kind"] != "learning_curve":
                    problems.append((f"{where}.learning_curve", f"{curve!r} is not a learning_curve study"))
                elif other["base"] in runs:
                    mine, theirs = (_curve_setting(params, s) for s in (name, curve))
                    if mine != theirs:
                        problems.append((f"{where}.learning_curve", f"study {curve!r} measures another learner or "
                                         f"data ({theirs}) than this sweep ({mine}); point it at a learning curve "
                                         "of the same dataset, learner, parameters and train_limit"))
        if study["kind"] == "base_model_scaling":
            from .errors import PipelineError
            from .learners import resolve_params

            for setting, learner in study["settings"].items():
                try:
                    resolve_params(learner["name"], learner["params"])
                except PipelineError as err:
                    problems.append((f"{where}.settings.{setting}.params", str(err)))
            missing = [r for r in study["radii"] if r not in params["radii"]]
            if missing:
                problems.append((f"{where}.radii", f"{missing} are not among the radii: {params['radii']}"))
        if study["kind"] == "learning_curve" and study["max_size"] is not None \
                and study["max_size"] < study["min_size"]:
            problems.append((f"{where}.max_size", f"must be at least min_size ({study['min_size']})"))
    return problems


def _curve_setting(params: dict, name: str) -> str:
    base = study_base(params, name)
    from .learners import resolve_params

    return json.dumps({"dataset": base["dataset"], "train_limit": base["train_limit"],
                       "learner": base["learner"]["name"],
                       "params": resolve_params(base["learner"]["name"], base["learner"]["params"])}, sort_keys=True)


def subset(n_train: int, size: int, seed: int, draw: int) -> np.ndarray:
    """Training ids of one learning-curve subset, sorted: the first ``size`` of a permutation drawn from
    (seed, draw), so that a draw's subsets are nested as the size grows. int64[size]."""
    order = np.random.default_rng([seed, draw]).permutation(n_train)
    return np.sort(order[:size])

