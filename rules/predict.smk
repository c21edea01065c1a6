# predict: votes (and, for Run-Off Election, float32 logits) of one shard's models on every test sample.
# The checkpoint must come from the shard file and the run's learner settings (checked, else refused);
# the predictions record both, for certify to check.


rule predict:
    input:
        model=lambda w: after_partition(w.run, f"work/{w.run}/models/shard_{w.shard}.pt"),
        shard="work/{run}/partition/shard_{shard}.json",
        test=lambda w: prepared(RUNS[w.run]["dataset"], "test"),
        code=code("stages/predict.py"),
    output:
        "work/{run}/predictions/shard_{shard}.parquet",
    params:
        test_limit=lambda w: RUNS[w.run]["test_limit"],
        logits=lambda w: "--logits" if needs_logits(certificate_methods(w.run)) else "--no-logits",
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: learner_params_json(w.run),
        device=config["device"],
    threads: 1
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/predict/shard_{shard}.log",
    benchmark:
        "logs/benchmarks/{run}/predict_shard_{shard}.tsv"
    resources:
        mem_mb=lambda w: mem_mb("predict", w.run),
        runtime=lambda w: runtime_min("predict", w.run),
    shell:
        "python -m pipeline predict --model {input.model:q} --shard {input.shard:q} --test {input.test:q}"
        " --test-limit {params.test_limit} --learner {params.learner} --learner-params {params.learner_params:q}"
        " {params.logits} --device {params.device} --threads {threads} --out {output:q} > {log:q} 2>&1"
