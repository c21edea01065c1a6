"""Loading and validating params.yaml: JSON schema first, then the checks a schema cannot express."""

import json
from pathlib import Path

import yaml

from .errors import PipelineError

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schemas" / "params.schema.json"


def _where(path) -> str:
    return ".".join(str(p) for p in path) or "(top level)"


def validate(params: dict, source: str = "params.yaml") -> dict:
    """Raise PipelineError naming the first bad key; return ``params`` unchanged when valid."""
    import jsonschema

    schema = json.loads(SCHEMA_PATH.read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(params), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if errors:
        err = errors[0]
        raise PipelineError(f"{source}: {_where(err.absolute_path)}: {err.message}")
    radii = params["radii"]
    if any(b <= a for a, b in zip(radii, radii[1:])):
        raise PipelineError(f"{source}: radii: must be strictly increasing, got {radii}")
    from .data.prepared import DATASETS

    for name, spec in params["datasets"].items():
        where = f"{source}: datasets.{name}"
        if name in DATASETS:
            raise PipelineError(f"{where}: {name} is a built-in dataset; give the user dataset another name")
        if spec["format"] in ("folder", "npz") and spec["test_path"] is None:
            raise PipelineError(f"{where}.test_path: format {spec['format']} needs the test split's "
                                f"{'folder' if spec['format'] == 'folder' else 'npz file'}")
        if spec["format"] == "imagenet64" and spec["channels"] != 3:
            raise PipelineError(f"{where}.channels: ImageNet64 images are RGB, use 3")
    for name, run in params["runs"].items():
        _check_run(params, name, run, source, f"runs.{name}")
    _check_studies(params, source, validator)
    return params


def _check_run(params: dict, name: str, run: dict, source: str, where: str) -> None:
    """The checks of one run a schema cannot express; ``where``: how the message names the run."""
    from .data.prepared import DATASETS
    from .learners import resolve_params

    if name.endswith("_attacks"):
        raise PipelineError(f"{source}: {where}: a run name may not end in _attacks (metrics/<run>_attacks.json "
                            "holds a run's attack results); rename the run")
    if run["dataset"] not in DATASETS and run["dataset"] not in params["datasets"]:
        raise PipelineError(f"{source}: {where}.dataset: {run['dataset']!r} is neither a built-in dataset "
                            f"({', '.join(DATASETS)}) nor declared under datasets:")
    if run["method"] == "dpa" and run["d"] != 1:
        raise PipelineError(f"{source}: {where}.d: must be 1 for method dpa (d is FA's spreading degree)")
    if run["versions"] > 1 and run["method"] != "dpa":
        raise PipelineError(f"{source}: {where}.versions: DPA* (versions > 1) applies to method dpa only")
    if run.get("attacks") is not None:
        from .learners import is_decomposable

        if not is_decomposable(run["learner"]["name"]) or not run.get("shared_distances", True):
            raise PipelineError(f"{source}: {where}.attacks: the attack stage evaluates attacked ensembles from "
                                "shared nearest-neighbour distances, so it needs learner orient_nn or hog_nn with "
                                "shared_distances: true; use one, or set attacks: null")
    try:
        resolve_params(run["learner"]["name"], run["learner"]["params"])
    except PipelineError as err:
        raise PipelineError(f"{source}: {where}.learner.params: {err}") from None


def _check_studies(params: dict, source: str, validator) -> None:
    """Study checks beyond the schema, then every run the studies expand into, as a run under runs: is checked."""
    from . import studies

    run_schema = {"$defs": validator.schema["$defs"], "$ref": "#/$defs/run"}
    for name, study in params.get("studies", {}).items():
        swept = studies.swept_override(study)
        if swept:
            raise PipelineError(f"{source}: studies.{name}.overrides.{swept[0]}: {swept[1]}")
        if study["base"] in params["runs"]:  # else study_problems names the base
            base = studies.study_base(params, name)
            errors = sorted(type(validator)(run_schema).iter_errors(base), key=lambda e: len(e.absolute_path))
            if errors:
                raise PipelineError(f"{source}: studies.{name}.overrides.{_where(errors[0].absolute_path)}: "
                                    f"{errors[0].message}")
    for where, problem in studies.study_problems(params):
        raise PipelineError(f"{source}: {where}: {problem}")
    new_runs, _ = studies.expand(params)
    for name, run in new_runs.items():
        study = name.split(studies.STUDY_RUN_SEPARATOR)[0]
        where = f"studies.{study} (its run {name})"
        if name in params["runs"]:
            raise PipelineError(f"{source}: {where}: a run under runs: has this name; rename that run")
        errors = sorted(type(validator)(run_schema).iter_errors(run), key=lambda e: len(e.absolute_path))
        if errors:
            raise PipelineError(f"{source}: {where}: {_where(errors[0].absolute_path)}: {errors[0].message}")
        _check_run(params, name, run, source, where)


def load(path="params.yaml") -> dict:
    path = Path(path)
    try:
        params = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise PipelineError(f"{path}: not found; run from the repository root or pass --configfile") from None
    except yaml.YAMLError as err:
        raise PipelineError(f"{path}: not valid YAML ({err})") from None
    return validate(params if params is not None else {}, str(path))


def check_yaml_syntax(path):
    """A YAML syntax error in ``path`` as ValueError naming the file, line and column.

    The Snakefile calls this on params.yaml before ``configfile:``, as Snakemake's own message for a
    broken config file names neither the file nor the line. (Files given with --configfile are read by
    Snakemake before the Snakefile runs.)
    """
    if not Path(path).is_file():
        return
    try:
        with open(path, encoding="utf-8") as f:
            yaml.safe_load(f)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        where = f", line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = err.problem or err.context or "invalid YAML"
        if err.context and err.problem and err.context_mark and err.context_mark != err.problem_mark:
            problem += (f" ({err.context} that starts at line {err.context_mark.line + 1}, "
                        f"column {err.context_mark.column + 1})")
        raise ValueError(f"{path}{where}: {problem}; fix the YAML syntax there "
                         "(indent with spaces, not tabs; quote values containing ': ' or '#')") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not valid YAML ({' '.join(str(err).split())}); fix the file") from None


def check_reference_curves(path, source="params.yaml") -> None:
    """The reference-curves CSV named in params.yaml exists and is well formed (pipeline/references.py)."""
    if path is None:
        return
    if not Path(path).is_file():
        raise PipelineError(f"{source}: reference_curves: file {path} not found; give a CSV of published curves "
                            "(configs/reference_curves.csv is one) or set reference_curves: null")
    from .references import read_references

    read_references(path)


def config_problem(params: dict):
    """The first problem of a config (validation, then the edit files it names) without its source, or None."""
    from .edits import check_edit_files

    try:
        validate(params, source="")
        check_edit_files(params["runs"], source="")
        check_reference_curves(params.get("reference_curves"), source="")
    except PipelineError as err:
        return str(err).removeprefix(": ")
    return None


def check_sources(params: dict, layers) -> None:
    """Validate a merged config; a problem is a PipelineError naming the source that brings it in.

    ``layers``: a function returning [(name, dict)] of the config's sources in merge order (later ones win,
    merged as Snakemake does); the source named is the first after which the merged config shows the problem.
    """
    import copy

    from snakemake.utils import update_config

    problem = config_problem(params)
    if problem is None:
        return
    sources = layers()
    source = " + ".join(name for name, _ in sources) or "config"
    merged = {}
    for name, layer in sources:
        update_config(merged, copy.deepcopy(layer))
        if config_problem(merged) == problem:
            source = name
            break
    raise PipelineError(f"{source}: {problem}")
