# attack: empirical poisoning attacks on a run (runs.<run>.attacks), one job per attack family, every budget in
# it: the poisoned training sets are written as edit files (insertions, exclusions) next to the results, the
# attacked ensembles evaluated from the clean run's distances (only the buckets an edit touches are rebuilt),
# and every attacked prediction checked against the run's certificates: a beaten certificate fails the job.
# attack_summary: the families' results as metrics/<run>_attacks.json and plots/<run>_attacks.{csv,png}.


rule attack:
    input:
        unpack(attack_inputs),
        code=code("stages/attack.py"),
    output:
        result="work/{run}/attacks/{attack}/result.json",
        edits=directory("work/{run}/attacks/{attack}/edits"),
    params:
        settings=lambda w: json.dumps(RUNS[w.run]["attacks"][w.attack], sort_keys=True),
        seed=lambda w: RUNS[w.run]["attacks"]["seed"],
        radii=config["radii"],
        learner=lambda w: RUNS[w.run]["learner"]["name"],
        learner_params=lambda w: learner_params_json(w.run),
        test_limit=lambda w: RUNS[w.run]["test_limit"],
        device=config["device"],
        files=attack_args,
    threads: 2
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/attack_{attack}.log",
    benchmark:
        "logs/benchmarks/{run}/attack_{attack}.tsv"
    resources:
        mem_mb=lambda w: mem_mb("attack", w.run),
        runtime=120,
    shell:
        "python -m pipeline attack --run {wildcards.run} --attack {wildcards.attack} --settings {params.settings:q}"
        " --seed {params.seed} --radii {params.radii} {params.files} --test-limit {params.test_limit}"
        " --learner {params.learner}"
        " --learner-params {params.learner_params:q} --device {params.device} --threads {threads}"
        " --result {output.result:q} --edits {output.edits:q} > {log:q} 2>&1"


rule attack_summary:
    input:
        results=lambda w: [f"work/{w.run}/attacks/{a}/result.json" for a in attack_families(w.run)],
        code=code("stages/attack.py"),
    output:
        metrics="metrics/{run}_attacks.json",
        curve=report("plots/{run}_attacks.csv", caption="captions/attacks.rst", category="Attacks",
                     subcategory="{run}", labels={"run": "{run}", "file": "success by budget (CSV)"}),
        plot=report("plots/{run}_attacks.png", caption="captions/attacks.rst", category="Attacks",
                    subcategory="{run}", labels={"run": "{run}", "file": "figure"}),
    conda:
        "../envs/pipeline.yaml"
    log:
        "logs/{run}/attack_summary.log",
    benchmark:
        "logs/benchmarks/{run}/attack_summary.tsv"
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        "python -m pipeline attack-summary --run {wildcards.run} --results {input.results:q}"
        " --metrics {output.metrics:q} --curve {output.curve:q} --plot {output.plot:q} > {log:q} 2>&1"
