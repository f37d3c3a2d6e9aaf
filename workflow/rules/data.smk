# Data rules: reference frame -> stand-in raw data -> one ingest job per source -> panel.
# Every rule passes its named inputs and outputs to the stage CLI (params.io = cli_io), so
# what a rule declares here is exactly what its stage reads and writes.

from ifm_eval.sources import ADMIN_SOURCES, OUTCOME_SOURCES, SOURCES, WAVES


wildcard_constraints:
    source="|".join(ADMIN_SOURCES),
    wave="|".join(WAVES),


rule reference:
    input:
        gv=P.reference_path(CFG, "gv"),
        code=module_files("reference.py", "cli.py", "stage_io.py"),
    output:
        frame=P.processed_path(CFG, "municipalities"),
    params:
        io=cli_io,
    resources:
        **RES("reference"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "reference.log",
    benchmark:
        LOGS / "bench" / "reference.tsv"
    shell:
        "ifm-eval reference {params.io} > {log} 2>&1"


if SYNTHETIC:

    rule synth:
        input:
            gv=P.reference_path(CFG, "gv"),
            code=module_files("synth", "size_class.py", "sources.py", "cli.py", "stage_io.py"),
        output:
            **{key: P.raw_path(CFG, key) for key in SOURCES},
            truth=P.truth_path(CFG),
            truth_counts=P.truth_counts_path(CFG),
        params:
            seed=CFG["seed"],
            synth=CFG["synth"],
            config=CONFIG_FILE,
            io=cli_io,
        resources:
            **RES("synth"),
        conda:
            ENV
        shadow:
            SHADOW
        log:
            LOGS / "synth.log",
        benchmark:
            LOGS / "bench" / "synth.tsv"
        shell:
            "ifm-eval synth --config {params.config} {params.io} > {log} 2>&1"


# One rule per administrative source (ingest_funding_applications, ingest_im_posts, ...).
for _source in ADMIN_SOURCES:

    rule:
        name:
            f"ingest_{_source}"
        input:
            raw=P.raw_path(CFG, _source),
            frame=P.processed_path(CFG, "municipalities"),
            code=module_files("ingest", "lineage.py", "frame.py", "months.py", "sources.py",
                              "cli.py", "stage_io.py"),
        output:
            **{k: P.processed_path(CFG, k) for k in SOURCES[_source].outputs},
            lineage=P.lineage_path(CFG, f"ingest_{_source}"),
        params:
            config=CONFIG_FILE,
            panel=CFG["panel"],
            source=_source,
            io=cli_io,
        resources:
            **RES(f"ingest_{_source}"),
        conda:
            ENV
        shadow:
            SHADOW
        log:
            LOGS / f"ingest_{_source}.log",
        benchmark:
            LOGS / "bench" / f"ingest_{_source}.tsv"
        shell:
            "ifm-eval ingest --config {params.config} --source {params.source} {params.io} > {log} 2>&1"


rule ingest_survey:
    input:
        raw=lambda wc: P.raw_path(CFG, f"survey_{wc.wave}"),
        code=module_files("codebook/surveys.yaml", "ingest/survey_read.py", "lineage.py",
                          "cli.py", "stage_io.py"),
    output:
        wave=P.processed_dir(CFG) / "ingest" / "survey_{wave}.parquet",
        lineage=P.processed_dir(CFG) / "lineage" / "ingest_survey_{wave}.csv",
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("ingest_survey"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "ingest_survey_{wave}.log",
    benchmark:
        LOGS / "bench" / "ingest_survey_{wave}.tsv"
    shell:
        "ifm-eval ingest-survey --config {params.config} --wave {wildcards.wave} {params.io} > {log} 2>&1"


rule harmonise_surveys:
    input:
        wave=[P.processed_path(CFG, f"survey_{w}") for w in WAVES],
        frame=P.processed_path(CFG, "municipalities"),
        members=P.processed_path(CFG, "funding_members"),
        code=module_files("codebook/surveys.yaml", "ingest/survey_read.py",
                          "ingest/survey_harmonise.py", "ingest/keys.py", "lineage.py", "frame.py",
                          "cli.py", "stage_io.py"),
    output:
        harmonised=P.processed_path(CFG, "survey_harmonised"),
        key_report=P.processed_path(CFG, "key_report"),
        item_nonresponse=P.processed_path(CFG, "item_nonresponse"),
        lineage=P.lineage_path(CFG, "harmonise_surveys"),
    params:
        config=CONFIG_FILE,
        threshold=CFG["panel"]["fuzzy_match_threshold"],
        io=cli_io,
    resources:
        **RES("harmonise_surveys"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "harmonise_surveys.log",
    benchmark:
        LOGS / "bench" / "harmonise_surveys.tsv"
    shell:
        "ifm-eval harmonise-surveys --config {params.config} {params.io} > {log} 2>&1"


rule treatment:
    input:
        frame=P.processed_path(CFG, "municipalities"),
        members=P.processed_path(CFG, "funding_members"),
        posts=P.processed_path(CFG, "im_posts"),
        code=module_files("treatment.py", "lineage.py", "frame.py", "cli.py", "stage_io.py"),
    output:
        treatment=P.processed_path(CFG, "treatment"),
        lineage=P.lineage_path(CFG, "treatment"),
    params:
        config=CONFIG_FILE,
        rule=CFG["panel"]["treatment_rule"],
        io=cli_io,
    resources:
        **RES("treatment"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "treatment.log",
    benchmark:
        LOGS / "bench" / "treatment.tsv"
    shell:
        "ifm-eval treatment --config {params.config} {params.io} > {log} 2>&1"


rule panel:
    input:
        frame=P.processed_path(CFG, "municipalities"),
        treatment=P.processed_path(CFG, "treatment"),
        survey=P.processed_path(CFG, "survey_harmonised"),
        item_nonresponse=P.processed_path(CFG, "item_nonresponse"),
        kpi_reports=P.processed_path(CFG, "kpi_reports"),
        case_management=P.processed_path(CFG, "case_management"),
        **{k: P.processed_path(CFG, k) for k in OUTCOME_SOURCES},
        lineage=P.lineage_paths(CFG),
        code=module_files("panel.py", "size_class.py", "lineage.py", "frame.py", "months.py", "sources.py",
                          "cli.py", "stage_io.py"),
    output:
        panel=P.processed_path(CFG, "panel"),
        dictionary=P.processed_path(CFG, "data_dictionary"),
        lineage=P.processed_path(CFG, "lineage"),
        quality=P.processed_path(CFG, "data_quality"),
        panel_lineage=P.lineage_path(CFG, "panel"),
    params:
        config=CONFIG_FILE,
        panel=CFG["panel"],
        io=cli_io,
    resources:
        **RES("panel"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "panel.log",
    benchmark:
        LOGS / "bench" / "panel.tsv"
    shell:
        "ifm-eval panel --config {params.config} {params.io} > {log} 2>&1"


# Check a delivery against the contract before a run (not part of `all`): `snakemake check_raw`.
# Real deliveries (data.source: raw) pass only the files that exist, so that a missing file is
# reported rather than stopping the DAG; stand-in files are made by the synth rule.
rule check_raw:
    input:
        **{f"raw_{k}": P.raw_path(CFG, k) for k in SOURCES
           if SYNTHETIC or P.raw_path(CFG, k).is_file()},
        frame=P.processed_path(CFG, "municipalities"),
        code=module_files("check_raw.py", "ingest", "codebook/surveys.yaml", "lineage.py",
                          "frame.py", "months.py",
                          "sources.py", "cli.py", "stage_io.py"),
    output:
        report=P.processed_dir(CFG) / "checks" / "raw_delivery.md",
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("check_raw"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "check_raw.log",
    benchmark:
        LOGS / "bench" / "check_raw.tsv"
    shell:
        "ifm-eval check-raw --config {params.config} {params.io} > {log} 2>&1"
