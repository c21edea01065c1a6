# partition: bucket every training sample (pixel-sum hash) and write each shard's model training sets
# (DPA: model i <- bucket i; FA: model i <- buckets (i - s_j) mod k*d).
# One checkpoint per run (the number of shard files depends on the run's k and shard size). A
# checkpoint, so that Snakemake re-evaluates the jobs after it once it has run: a deletion or
# insertion of n training samples then retrains only the shards whose files changed (at most n
# models' shards for DPA, n*d for FA; see after_partition in common.smk).

for _run, _cfg in RUNS.items():

    checkpoint:
        name:
            f"partition_{_run}"
        input:
            train=prepared(_cfg["dataset"], "train"),
            **edit_files(_run),
            code=code("stages/partition.py"),
        output:
            assignment=f"work/{_run}/partition/assignment.parquet",
            inserted=f"work/{_run}/partition/inserted.npz",
            shards=shard_files(_run, "work/{run}/partition/shard_{shard}.json"),
            groups=shard_files(_run, BUCKET_GROUPS),  # buckets in groups of shard_size
        params:
            method=_cfg["method"],
            k=_cfg["k"],
            d=_cfg["d"],
            versions=_cfg["versions"],
            hash=_cfg["hash"],
            shard_size=_cfg["shard_size"],
            n_shards=shard_count(_run),
            train_limit=_cfg["train_limit"],
            exclusions=_cfg["exclude"],
            insertions=_cfg["insert"],
            out_dir=lambda w, output: os.path.dirname(output.assignment),
        conda:
            "../envs/pipeline.yaml"
        log:
            f"logs/{_run}/partition.log",
        benchmark:
            f"logs/benchmarks/{_run}/partition.tsv"
        resources:
            mem_mb=mem_mb("partition", _run),
            runtime=30,
        shell:
            "python -m pipeline partition --train {input.train:q} --method {params.method} --k {params.k}"
            " --d {params.d} --versions {params.versions} --hash {params.hash} --shard-size {params.shard_size}"
            " --expect-shards {params.n_shards} --train-limit {params.train_limit}"
            " --exclude {params.exclusions:q} --insert {params.insertions:q}"
            " --out-dir {params.out_dir:q} > {log:q} 2>&1"
