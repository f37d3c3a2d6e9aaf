# Estimation: one job per model specification (the spec name is the wildcard; the spec
# itself reaches the job through params, so editing one spec reruns only that job).


wildcard_constraints:
    model="|".join(MODELS) if MODELS else "NO_MODELS",


rule estimate:
    input:
        panel=P.processed_path(CFG, "panel"),
        code=module_files("estimators", "inference", "cli.py", "stage_io.py"),
    output:
        tidy=P.results_dir(CFG) / "estimates" / "{model}.parquet",
        meta=P.results_dir(CFG) / "estimates" / "{model}.json",
        used=P.processed_dir(CFG) / "estimates" / "{model}_used.parquet",  # = P.used_path
        boot=P.processed_dir(CFG) / "estimates" / "{model}_boot.parquet",  # = P.boot_path
    params:
        config=CONFIG_FILE,
        spec=lambda wc: MODELS[wc.model],
        io=cli_io,
    threads: 1
    resources:
        **RES("estimate"),
    group:
        "estimate"
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "estimate" / "{model}.log",
    benchmark:
        LOGS / "bench" / "estimate" / "{model}.tsv"
    shell:
        "ifm-eval estimate --config {params.config} --model {wildcards.model} {params.io} > {log} 2>&1"
