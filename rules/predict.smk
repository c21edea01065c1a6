# predict: votes (and, for Run-Off Election, float32 logits) of one shard's models on every test sample.


rule predict:
    input:
        model=lambda w: after_partition(w.run, f"work/{w.run}/models/shard_{w.shard}.pt"),
        test=lambda w: prepared(RUNS[w.run]["dataset"], "test"),
        code=code("predict.py", "learners/*.py", "features.py", "certify/votes.py", "data/prepared.py"),
    output:
        "work/{run}/predictions/shard_{shard}.parquet",
    params:
        test_limit=lambda w: RUNS[w.run]["test_limit"],
        logits=lambda w: "--logits" if RUNS[w.run]["roe"] else "--no-logits",
        device=config["device"],
    threads: 1
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/predict/shard_{shard}.log",
    benchmark:
        "logs/benchmarks/{run}/predict_shard_{shard}.tsv"
    resources:
        mem_mb=4000,
        runtime=60,
    shell:
        "python -m pipeline predict --model {input.model:q} --test {input.test:q} --test-limit {params.test_limit}"
        " {params.logits} --device {params.device} --threads {threads} --out {output:q} > {log:q} 2>&1"
