# prepare: fetch a dataset from its first available source (built-in datasets) or from the files a
# user declared under datasets: in params.yaml, verify it, write train/test npz. A source that fails
# verification is logged and the next one tried. Snakemake deletes train/test npz before rerunning this
# job; MNIST and Fashion-MNIST keep their verified copies in .verified/ beside them as the last resort.


rule prepare:
    input:
        code=code("stages/prepare.py"),
        user_files=lambda w: user_dataset_files(w.dataset),
    output:
        train=f"{PREPARED}/{{dataset}}/train.npz",
        test=f"{PREPARED}/{{dataset}}/test.npz",
    params:
        raw_dir=lambda w: f"{RAW}/{w.dataset}",
        out_dir=lambda w, output: os.path.dirname(output.train),
        sources=config["data"]["sources"],
        spec=lambda w: json.dumps(config["datasets"].get(w.dataset)),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/prepare/{dataset}.log",
    benchmark:
        "logs/benchmarks/prepare/{dataset}.tsv"
    resources:
        mem_mb=lambda w: prepare_mem_mb(w.dataset),
        runtime=30,
    shell:
        "python -m pipeline prepare --dataset {wildcards.dataset} --raw-dir {params.raw_dir:q}"
        " --out-dir {params.out_dir:q} --sources {params.sources} --spec {params.spec:q} > {log:q} 2>&1"
