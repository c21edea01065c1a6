# certify: gather every model's votes (and logits), compute the certificates (DPA or FA, +ROE),
# metrics and the curve (CSV + PNG). The bucket -> models layout comes from the shard files. The scores
# come from every shard's predictions or, for a nearest-neighbour learner, from every bucket group's
# distances (each model: the minimum over its buckets). Inputs that do not record the current partition
# files, learner settings and test set are refused as stale.


rule certify:
    input:
        unpack(scores_inputs),
        test=lambda w: prepared(RUNS[w.run]["dataset"], "test"),
        code=code("stages/certify.py"),
        layout=lambda w: shard_files(w.run, "work/{run}/partition/shard_{shard}.json"),
    output:
        certificates="work/{run}/certificates.parquet",
        metrics=report("metrics/{run}.json", caption="captions/metrics.rst", category="Runs", subcategory="{run}",
                       labels={"run": "{run}", "file": "metrics"}),
        curve=report("plots/{run}_certified_accuracy.csv", caption="captions/curve.rst", category="Runs",
                     subcategory="{run}", labels={"run": "{run}", "file": "curve (CSV)"}),
        plot=report("plots/{run}_certified_accuracy.png", caption="captions/curve.rst", category="Runs",
                    subcategory="{run}", labels={"run": "{run}", "file": "curve (PNG)"}),
    params:
        dataset=lambda w: RUNS[w.run]["dataset"],
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: learner_params_json(w.run),
        methods=lambda w: certificate_methods(w.run),
        test_limit=lambda w: RUNS[w.run]["test_limit"],
        radii=config["radii"],
        scores=scores_args,
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/certify.log",
    benchmark:
        "logs/benchmarks/{run}/certify.tsv"
    resources:
        mem_mb=lambda w: mem_mb("certify", w.run),
        runtime=30,
    shell:
        "python -m pipeline certify --run {wildcards.run} --dataset {params.dataset} --learner {params.learner}"
        " --learner-params {params.learner_params:q}"
        " {params.scores} --shards {input.layout:q} --test {input.test:q}"
        " --test-limit {params.test_limit} --radii {params.radii} --methods {params.methods}"
        " --certificates {output.certificates:q} --metrics {output.metrics:q} --curve {output.curve:q}"
        " --plot {output.plot:q} > {log:q} 2>&1"
