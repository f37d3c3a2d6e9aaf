# Heterogeneity and dose-response: one job per `heterogeneity:` spec (subgroup event studies
# of one moderator, ifm_eval.heterogeneity), a summary job (matched truth on stand-in data,
# figures side by side), one job per `dose:` spec (ifm_eval.dose). Specs with these keys are
# not `estimate` jobs (ifm_eval.estimators.specs.spec_kind).

HET_MODELS = OT.heterogeneity_models(CFG, "heterogeneity")
HET_SUMMARY = OT.heterogeneity_summary_outputs(CFG)
HET_CODE = module_files("heterogeneity", "estimators", "inference", "size_class.py", "outputs/style.py",
                        "outputs/tablefmt.py", "cli.py", "stage_io.py")


wildcard_constraints:
    het_model="|".join(HET_MODELS) if HET_MODELS else "NONE",


rule heterogeneity:
    input:
        panel=P.processed_path(CFG, "panel"),
        code=HET_CODE,
    output:
        **{k: str(v).replace("HETMODEL", "{het_model}")
           for k, v in OT.heterogeneity_spec_paths(CFG, "HETMODEL").items()},
    params:
        config=CONFIG_FILE,
        spec=lambda wc: HET_MODELS[wc.het_model],
        io=cli_io,
    threads: 1
    resources:
        **RES("heterogeneity"),
    group:
        "heterogeneity"
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "heterogeneity" / "{het_model}.log",
    benchmark:
        LOGS / "bench" / "heterogeneity" / "{het_model}.tsv"
    shell:
        "ifm-eval heterogeneity --config {params.config} --model {wildcards.het_model} {params.io} > {log} 2>&1"


rule heterogeneity_summary:
    input:
        tables=[OT.heterogeneity_spec_paths(CFG, m)["table"] for m in HET_MODELS],
        differences=[OT.heterogeneity_spec_paths(CFG, m)["differences"] for m in HET_MODELS],
        meta=[OT.heterogeneity_spec_paths(CFG, m)["meta"] for m in HET_MODELS],
        used=[OT.heterogeneity_spec_paths(CFG, m)["used"] for m in HET_MODELS],
        panel=P.processed_path(CFG, "panel"),
        **(dict(truth_counts=P.truth_counts_path(CFG)) if SYNTHETIC else {}),
        code=module_files("heterogeneity", "validation.py", "credibility/figures.py", "outputs/style.py",
                          "outputs/tablefmt.py", "cli.py", "stage_io.py"),
    output:
        summary=HET_SUMMARY["summary"],
        differences_summary=HET_SUMMARY["differences_summary"],
        figures=[report(p, caption="../report/heterogeneity.rst", category="7 Heterogenität",
                        subcategory=p.stem) for p in HET_SUMMARY["figures"]],
        pdfs=HET_SUMMARY["pdfs"],
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("heterogeneity_summary"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "heterogeneity" / "summary.log",
    benchmark:
        LOGS / "bench" / "heterogeneity" / "summary.tsv"
    shell:
        "ifm-eval heterogeneity-summary --config {params.config} {params.io} > {log} 2>&1"


DOSE_MODELS = OT.heterogeneity_models(CFG, "dose")


wildcard_constraints:
    dose_model="|".join(DOSE_MODELS) if DOSE_MODELS else "NONE",


rule dose_response:
    input:
        panel=P.processed_path(CFG, "panel"),
        **(dict(truth_counts=P.truth_counts_path(CFG)) if SYNTHETIC else {}),
        code=module_files("dose", "estimators/runner.py", "estimators/specs.py", "validation.py", "lineage.py",
                          "credibility/figures.py", "outputs/style.py", "outputs/tablefmt.py", "cli.py",
                          "stage_io.py"),
    output:
        table=str(OT.dose_spec_paths(CFG, "DOSEMODEL")["table"]).replace("DOSEMODEL", "{dose_model}"),
        curve=str(OT.dose_spec_paths(CFG, "DOSEMODEL")["curve"]).replace("DOSEMODEL", "{dose_model}"),
        meta=str(OT.dose_spec_paths(CFG, "DOSEMODEL")["meta"]).replace("DOSEMODEL", "{dose_model}"),
        figure=report(str(OT.dose_spec_paths(CFG, "DOSEMODEL")["figure"]).replace("DOSEMODEL", "{dose_model}"),
                      caption="../report/dose_response.rst", category="7 Heterogenität",
                      subcategory="Dosis-Wirkung"),
        pdf=str(OT.dose_spec_paths(CFG, "DOSEMODEL")["pdf"]).replace("DOSEMODEL", "{dose_model}"),
        lineage=str(OT.dose_spec_paths(CFG, "DOSEMODEL")["lineage"]).replace("DOSEMODEL", "{dose_model}"),
    params:
        config=CONFIG_FILE,
        spec=lambda wc: DOSE_MODELS[wc.dose_model],
        io=cli_io,
    threads: 1
    resources:
        **RES("dose_response"),
    group:
        "heterogeneity"
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "heterogeneity" / "{dose_model}.log",
    benchmark:
        LOGS / "bench" / "heterogeneity" / "{dose_model}.tsv"
    shell:
        "ifm-eval dose-response --config {params.config} --model {wildcards.dose_model} {params.io} > {log} 2>&1"


rule dose_summary:
    input:
        tables=[OT.dose_spec_paths(CFG, m)["table"] for m in DOSE_MODELS],
        curves=[OT.dose_spec_paths(CFG, m)["curve"] for m in DOSE_MODELS],
        meta=[OT.dose_spec_paths(CFG, m)["meta"] for m in DOSE_MODELS],
        code=module_files("dose/summary.py", "dose/stage.py", "credibility/figures.py", "outputs/style.py",
                          "outputs/tablefmt.py", "cli.py", "stage_io.py"),
    output:
        summary=OT.dose_summary_outputs(CFG)["summary"],
        figure=report(OT.dose_summary_outputs(CFG)["figure"], caption="../report/dose_response.rst",
                      category="7 Heterogenität", subcategory="Dosis-Wirkung"),
        pdf=OT.dose_summary_outputs(CFG)["pdf"],
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("dose_summary"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "heterogeneity" / "dose_summary.log",
    benchmark:
        LOGS / "bench" / "heterogeneity" / "dose_summary.tsv"
    shell:
        "ifm-eval dose-summary --config {params.config} {params.io} > {log} 2>&1"
