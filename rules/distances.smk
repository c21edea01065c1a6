# distances (nearest-neighbour learners, e.g. hog_nn): the test samples' features once per run, then per
# bucket group the smallest distance from every test sample to each bucket's samples of each class. A
# model's scores are the minimum over its buckets (certify takes them from here), so DPA and FA cost the
# same distance work whatever d is (docs/design.md#shared-distances). The training data is `ancient`:
# what a bucket holds is pinned by the bucket-group file's digests, so only groups an edit touches rerun.


rule test_features:
    input:
        test=lambda w: prepared(RUNS[w.run]["dataset"], "test"),
        code=code("stages/distances.py"),
    output:
        "work/{run}/distances/test_features.npz",
    params:
        test_limit=lambda w: RUNS[w.run]["test_limit"],
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: learner_params_json(w.run),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/test_features.log",
    benchmark:
        "logs/benchmarks/{run}/test_features.tsv"
    resources:
        mem_mb=lambda w: mem_mb("test_features", w.run),
        runtime=30,
    shell:
        "python -m pipeline test-features --test {input.test:q} --test-limit {params.test_limit}"
        " --learner {params.learner} --learner-params {params.learner_params:q} --out {output:q} > {log:q} 2>&1"


rule distances:
    input:
        unpack(distances_inputs),
        code=code("stages/distances.py"),
    output:
        "work/{run}/distances/buckets_{group}.parquet",
    params:
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: learner_params_json(w.run),
        device=config["device"],
    threads: 1
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/distances/buckets_{group}.log",
    benchmark:
        "logs/benchmarks/{run}/distances_buckets_{group}.tsv"
    resources:
        mem_mb=lambda w: mem_mb("distances", w.run),
        runtime=lambda w: runtime_min("distances", w.run),
    shell:
        "python -m pipeline distances --buckets {input.buckets:q} --train {input.train:q} --inserted {input.inserted:q}"
        " --test-features {input.features:q} --learner {params.learner} --learner-params {params.learner_params:q}"
        " --device {params.device} --threads {threads} --out {output:q} > {log:q} 2>&1"
