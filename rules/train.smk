# train: one job per shard fits the shard's base models, each on its own subset.
# The training data (prepared split + inserted samples) is `ancient`: what a model trains on is
# pinned by the shard file's digests, so only shards whose shard file changed retrain.


rule train:
    input:
        unpack(train_inputs),
        code=code("stages/train.py"),
    output:
        "work/{run}/models/shard_{shard}.pt",
    params:
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: learner_params_json(w.run),
        device=config["device"],
    threads: 1
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/train/shard_{shard}.log",
    benchmark:
        "logs/benchmarks/{run}/train_shard_{shard}.tsv"
    resources:
        mem_mb=lambda w: mem_mb("train", w.run),
        runtime=lambda w: runtime_min("train", w.run),
        gpu=lambda w: train_gpus(w.run),
    shell:
        "python -m pipeline train --shard {input.shard:q} --train {input.train:q} --inserted {input.inserted:q}"
        " --learner {params.learner}"
        " --learner-params {params.learner_params:q} --device {params.device} --threads {threads}"
        " --out {output:q} > {log:q} 2>&1"
