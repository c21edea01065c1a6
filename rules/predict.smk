# predict: votes of one shard's models on every test sample. For Run-Off Election, once every shard is
# predicted, runoff: which classes each round-1 finalist (from all the votes) beats in each of the shard's
# models, 2C bits per model and test sample instead of C float32 scores (the scores are computed again).
# The checkpoint must come from the shard file and the run's learner settings (checked, else refused);
# the outputs record both, for certify to check.


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
        " --device {params.device} --threads {threads} --out {output:q} > {log:q} 2>&1"


rule runoff:
    input:
        model=lambda w: after_partition(w.run, f"work/{w.run}/models/shard_{w.shard}.pt"),
        shard="work/{run}/partition/shard_{shard}.json",
        test=lambda w: prepared(RUNS[w.run]["dataset"], "test"),
        predictions=lambda w: after_partition(w.run, shard_files(w.run, PREDICTIONS)),
        own="work/{run}/predictions/shard_{shard}.parquet",
        code=code("stages/predict.py"),
    output:
        RUNOFF,
    params:
        test_limit=lambda w: RUNS[w.run]["test_limit"],
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: learner_params_json(w.run),
        n_models=lambda w: run_size(w.run)["n_models"],
        device=config["device"],
    threads: 1
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/runoff/shard_{shard}.log",
    benchmark:
        "logs/benchmarks/{run}/runoff_shard_{shard}.tsv"
    resources:
        mem_mb=lambda w: mem_mb("runoff", w.run),
        runtime=lambda w: runtime_min("predict", w.run),
    shell:
        "python -m pipeline runoff --model {input.model:q} --shard {input.shard:q} --test {input.test:q}"
        " --predictions {input.predictions:q} --own-predictions {input.own:q} --n-models {params.n_models}"
        " --test-limit {params.test_limit} --learner {params.learner} --learner-params {params.learner_params:q}"
        " --device {params.device} --threads {threads} --out {output:q} > {log:q} 2>&1"
