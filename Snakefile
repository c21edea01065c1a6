# Certified defenses against training-data poisoning by aggregation.
# Stages: prepare -> partition -> train -> predict -> certify -> report (one rule file each in rules/);
# nearest-neighbour learners: prepare -> partition -> distances -> certify -> report (rules/distances.smk);
# runs with attacks: certify -> attack -> attack_summary (rules/attack.smk); studies expand into runs and
# summarise them (rules/study.smk; `snakemake studies`).
# All logic lives in the `pipeline` package; every rule calls `python -m pipeline <stage>`.

from snakemake.utils import min_version

min_version("9.0")


import re
import sys

sys.path.insert(0, workflow.basedir)  # the pipeline package next to this workflow
from pipeline.config import check_yaml_syntax

# Snakemake's own message for a broken config file names neither the file nor the line.
check_yaml_syntax("params.yaml")


configfile: "params.yaml"


# rules/common.smk puts the running interpreter's folder first in PATH, so that jobs (also remote
# ones, which get PATH passed on) run `python -m pipeline` with the same packages.
envvars:
    "PATH",


include: "rules/common.smk"


# `snakemake --report report.zip` (after a run): the outputs flagged with report() in rules/, with captions
report: "rules/captions/workflow.rst"


wildcard_constraints:
    run="|".join(re.escape(r) for r in sorted(RUNS, key=len, reverse=True)),  # the configured runs and the studies' runs
    attack="targeted|label_flip|backdoor",
    study="|".join(re.escape(s) for s in sorted(STUDIES, key=len, reverse=True)) or "(?!)",  # the configured studies
    size=r"\d+",
    shard=r"\d+",
    group=r"\d+",
    dataset="[a-z0-9_]+",



include: "rules/data.smk"
include: "rules/partition.smk"
include: "rules/train.smk"
include: "rules/predict.smk"
include: "rules/distances.smk"
include: "rules/certify.smk"
include: "rules/report.smk"
include: "rules/attack.smk"
include: "rules/study.smk"


rule all:
    default_target: True
    input:
        final_outputs(),
        intermediate_outputs(),
        trained_outputs,


onsuccess:
    print_summary()
