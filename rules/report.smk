# report: one table (text + HTML with the curves, and the attack figures of runs with attacks) over every run
# in params.yaml, and every run's curves in one plot with the published reference curves of their datasets
# (reference_curves in params.yaml). Outputs flagged with report() also go into `snakemake --report report.zip`
# (captions in rules/captions/).


rule report:
    input:
        metrics=lambda w: [after_partition(run, f"metrics/{run}.json") for run in CONFIGURED_RUNS],
        plots=[f"plots/{run}_certified_accuracy.png" for run in CONFIGURED_RUNS]
        + [f"plots/{run}_attacks.png" for run in CONFIGURED_RUNS if attack_families(run)],
        curves=[f"plots/{run}_certified_accuracy.csv" for run in CONFIGURED_RUNS],
        attacks=[f"metrics/{run}_attacks.json" for run in CONFIGURED_RUNS if attack_families(run)],
        references=reference_curves(),
        code=code("stages/report.py"),
    output:
        html=report("report/index.html", caption="captions/index.rst", category="Summary"),
        summary=report("report/summary.txt", caption="captions/summary.rst", category="Summary"),
        compare=report("report/compare.png", caption="captions/compare.rst", category="Summary"),
        curves="plots/certified_accuracy.csv",  # every run's curves in long form: the plot dvc.yaml declares
    params:
        studies=list(STUDIES),  # pointed to: `snakemake studies` builds them (rules/study.smk)
        references=lambda w, input: input.references or "none",
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
        " --curves {input.curves:q} --references {params.references:q} --all-curves {output.curves:q}"
        " --studies {params.studies}"
        " --out-dir report > {log:q} 2>&1"
