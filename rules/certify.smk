# certify: gather every shard's votes (and logits), compute the certificates (DPA or FA, +ROE),
# metrics and the curve (CSV + PNG). The bucket -> models layout comes from the shard files.


rule certify:
    input:
        predictions=lambda w: after_partition(w.run, shard_files(w.run, "work/{run}/predictions/shard_{shard}.parquet")),
        test=lambda w: prepared(RUNS[w.run]["dataset"], "test"),
        code=code("results.py", "certify/*.py", "metrics.py", "predict.py", "data/prepared.py"),
        layout=lambda w: shard_files(w.run, "work/{run}/partition/shard_{shard}.json"),
    output:
        certificates="work/{run}/certificates.parquet",
        metrics="metrics/{run}.json",
        curve="plots/{run}_certified_accuracy.csv",
        plot="plots/{run}_certified_accuracy.png",
    params:
        dataset=lambda w: RUNS[w.run]["dataset"],
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        methods=lambda w: certificate_methods(w.run),
        test_limit=lambda w: RUNS[w.run]["test_limit"],
        radii=config["radii"],
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/certify.log",
    benchmark:
        "logs/benchmarks/{run}/certify.tsv"
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        "python -m pipeline certify --run {wildcards.run} --dataset {params.dataset} --learner {params.learner}"
        " --predictions {input.predictions:q} --shards {input.layout:q} --test {input.test:q}"
        " --test-limit {params.test_limit} --radii {params.radii} --methods {params.methods}"
        " --certificates {output.certificates:q} --metrics {output.metrics:q} --curve {output.curve:q}"
        " --plot {output.plot:q} > {log:q} 2>&1"
