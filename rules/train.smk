# train: one job per shard fits the shard's base models, each on its own subset.
# The training data is `ancient`: what a model trains on is pinned by the shard file's digests,
# so a rewritten train.npz only retrains shards whose shard file changed.


rule train:
    input:
        shard="work/{run}/partition/shard_{shard}.json",
        train=lambda w: ancient(prepared(RUNS[w.run]["dataset"], "train")),
        code=code("train.py", "learners/*.py", "features.py", "partition.py", "data/prepared.py"),
    output:
        "work/{run}/models/shard_{shard}.pt",
    params:
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: json.dumps(RUNS[w.run]["learner"]["params"], sort_keys=True),
        device=config["device"],
    threads: 1
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/train/shard_{shard}.log",
    benchmark:
        "logs/benchmarks/{run}/train_shard_{shard}.tsv"
    resources:
        mem_mb=4000,
        runtime=120,
    shell:
        "python -m pipeline train --shard {input.shard:q} --train {input.train:q} --learner {params.learner}"
        " --learner-params {params.learner_params:q} --device {params.device} --threads {threads}"
        " --out {output:q} > {log:q} 2>&1"
