# certify: gather every shard's votes (and logits), compute the certificates (DPA or FA, +ROE),
# metrics and the curve (CSV + PNG). The bucket -> models layout comes from the shard files. Predictions
# that do not record the current shard files, learner settings and test set are refused as stale.


rule certify:
    input:
        predictions=lambda w: after_partition(w.run, shard_files(w.run, "work/{run}/predictions/shard_{shard}.parquet")),
        test=lambda w: prepared(RUNS[w.run]["dataset"], "test"),
        code=code("stages/certify.py"),
        layout=lambda w: shard_files(w.run, "work/{run}/partition/shard_{shard}.json"),
        # not read, but listed so that a missing checkpoint is rebuilt (and its shard re-predicted)
        # whenever certify has to run, e.g. after a train job that failed
        models=lambda w: after_partition(w.run, shard_files(w.run, "work/{run}/models/shard_{shard}.pt")),
    output:
        certificates="work/{run}/certificates.parquet",
        metrics="metrics/{run}.json",
        curve="plots/{run}_certified_accuracy.csv",
        plot="plots/{run}_certified_accuracy.png",
    params:
        dataset=lambda w: RUNS[w.run]["dataset"],
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: learner_params_json(w.run),
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
        mem_mb=lambda w: mem_mb("certify", w.run),
        runtime=30,
    shell:
        "python -m pipeline certify --run {wildcards.run} --dataset {params.dataset} --learner {params.learner}"
        " --learner-params {params.learner_params:q}"
        " --predictions {input.predictions:q} --shards {input.layout:q} --test {input.test:q}"
        " --test-limit {params.test_limit} --radii {params.radii} --methods {params.methods}"
        " --certificates {output.certificates:q} --metrics {output.metrics:q} --curve {output.curve:q}"
        " --plot {output.plot:q} > {log:q} 2>&1"
