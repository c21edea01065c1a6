# report: one table (text + HTML with the curves, and the attack figures of runs with attacks) over every run
# in params.yaml.


rule report:
    input:
        metrics=lambda w: [after_partition(run, f"metrics/{run}.json") for run in CONFIGURED_RUNS],
        plots=[f"plots/{run}_certified_accuracy.png" for run in CONFIGURED_RUNS]
        + [f"plots/{run}_attacks.png" for run in CONFIGURED_RUNS if attack_families(run)],
        attacks=[f"metrics/{run}_attacks.json" for run in CONFIGURED_RUNS if attack_families(run)],
        code=code("stages/report.py"),
    output:
        html="report/index.html",
        summary="report/summary.txt",
    params:
        studies=list(STUDIES),  # pointed to: `snakemake studies` builds them (rules/study.smk)
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/report.log",
    benchmark:
        "logs/benchmarks/report.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline report --metrics {input.metrics:q} --plots {input.plots:q} --attacks {input.attacks:q}"
        " --studies {params.studies} --out-dir report > {log:q} 2>&1"
