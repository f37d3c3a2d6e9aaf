# Data rules: reference frame -> stand-in raw data -> one ingest job per source -> panel.

ADMIN_SOURCES = [
    "funding_applications",
    "im_posts",
    "kpi_reports",
    "refugees_au",
    "employment_ba",
    "training",
    "language_b1",
    "case_management",
]
# raw key -> processed key(s) written by `ifm-eval ingest --source <raw key>`
INGEST_OUTPUTS = {
    "funding_applications": ["funding_verbaende", "funding_members"],
    "im_posts": ["im_posts"],
    "kpi_reports": ["kpi_reports"],
    "refugees_au": ["refugees_au"],
    "employment_ba": ["employment_ba"],
    "training": ["training"],
    "language_b1": ["language_b1"],
    "case_management": ["case_management"],
}
WAVES = ["w1", "w2", "w3", "w4", "w5"]


wildcard_constraints:
    source="|".join(ADMIN_SOURCES),
    wave="|".join(WAVES),


rule reference:
    input:
        gv=P.reference_path(CFG, "gv"),
        code=module_files("reference.py"),
    output:
        P.processed_path(CFG, "municipalities"),
    conda:
        ENV
    log:
        LOGS / "reference.log",
    benchmark:
        LOGS / "bench" / "reference.tsv"
    shell:
        "ifm-eval reference --gv {input.gv} --out {output} > {log} 2>&1"


if SYNTHETIC:

    rule synth:
        input:
            gv=P.reference_path(CFG, "gv"),
            code=module_files("synth"),
        output:
            [P.raw_path(CFG, key) for key in P.RAW_FILES],
            truth=P.truth_path(CFG),
            truth_counts=P.truth_counts_path(CFG),
        params:
            seed=CFG["seed"],
            synth=CFG["synth"],
            config=CONFIG_FILE,
        resources:
            mem_mb=4000,
        conda:
            ENV
        log:
            LOGS / "synth.log",
        benchmark:
            LOGS / "bench" / "synth.tsv"
        shell:
            "ifm-eval synth --config {params.config} > {log} 2>&1"


# One rule per administrative source (ingest_funding_applications, ingest_im_posts, ...).
for _source in ADMIN_SOURCES:

    rule:
        name:
            f"ingest_{_source}"
        input:
            raw=P.raw_path(CFG, _source),
            frame=P.processed_path(CFG, "municipalities"),
            code=module_files("ingest", "lineage.py"),
        output:
            [P.processed_path(CFG, k) for k in INGEST_OUTPUTS[_source]],
        params:
            config=CONFIG_FILE,
            panel=CFG["panel"],
            source=_source,
        resources:
            mem_mb=6000 if _source == "case_management" else 1000,
        conda:
            ENV
        log:
            LOGS / f"ingest_{_source}.log",
        benchmark:
            LOGS / "bench" / f"ingest_{_source}.tsv"
        shell:
            "ifm-eval ingest --config {params.config} --source {params.source} > {log} 2>&1"


rule ingest_survey:
    input:
        raw=lambda wc: P.raw_path(CFG, f"survey_{wc.wave}"),
        codebook=module_files("codebook/surveys.yaml"),
        code=module_files("ingest/surveys.py", "ingest/keys.py"),
    output:
        P.processed_dir(CFG) / "ingest" / "survey_{wave}.parquet",
    params:
        config=CONFIG_FILE,
    conda:
        ENV
    log:
        LOGS / "ingest_survey_{wave}.log",
    benchmark:
        LOGS / "bench" / "ingest_survey_{wave}.tsv"
    shell:
        "ifm-eval ingest-survey --config {params.config} --wave {wildcards.wave} > {log} 2>&1"


rule harmonise_surveys:
    input:
        waves=[P.processed_path(CFG, f"survey_{w}") for w in WAVES],
        frame=P.processed_path(CFG, "municipalities"),
        members=P.processed_path(CFG, "funding_members"),
        codebook=module_files("codebook/surveys.yaml"),
        code=module_files("ingest/surveys.py", "ingest/keys.py"),
    output:
        harmonised=P.processed_path(CFG, "survey_harmonised"),
        key_report=P.processed_path(CFG, "key_report"),
    params:
        config=CONFIG_FILE,
        threshold=CFG["panel"]["fuzzy_match_threshold"],
    conda:
        ENV
    log:
        LOGS / "harmonise_surveys.log",
    benchmark:
        LOGS / "bench" / "harmonise_surveys.tsv"
    shell:
        "ifm-eval harmonise-surveys --config {params.config} > {log} 2>&1"


rule treatment:
    input:
        posts=P.processed_path(CFG, "im_posts"),
        members=P.processed_path(CFG, "funding_members"),
        verbaende=P.processed_path(CFG, "funding_verbaende"),
        frame=P.processed_path(CFG, "municipalities"),
        code=module_files("treatment.py", "panel_cli.py"),
    output:
        P.processed_path(CFG, "treatment"),
    params:
        config=CONFIG_FILE,
        rule=CFG["panel"]["treatment_rule"],
    conda:
        ENV
    log:
        LOGS / "treatment.log",
    benchmark:
        LOGS / "bench" / "treatment.tsv"
    shell:
        "ifm-eval treatment --config {params.config} > {log} 2>&1"


rule panel:
    input:
        treatment=P.processed_path(CFG, "treatment"),
        surveys=P.processed_path(CFG, "survey_harmonised"),
        sources=[
            P.processed_path(CFG, k)
            for k in ("refugees_au", "employment_ba", "training", "language_b1",
                      "kpi_reports", "case_management")
        ],
        frame=P.processed_path(CFG, "municipalities"),
        code=module_files("panel.py", "panel_cli.py", "data_quality.py", "lineage.py"),
    output:
        panel=P.processed_path(CFG, "panel"),
        dictionary=P.processed_path(CFG, "data_dictionary"),
        lineage=P.processed_path(CFG, "lineage"),
        quality=P.processed_path(CFG, "data_quality"),
    params:
        config=CONFIG_FILE,
        panel=CFG["panel"],
    resources:
        mem_mb=2000,
    conda:
        ENV
    log:
        LOGS / "panel.log",
    benchmark:
        LOGS / "bench" / "panel.tsv"
    shell:
        "ifm-eval panel --config {params.config} > {log} 2>&1"
