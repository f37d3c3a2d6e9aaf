# Outputs: descriptive replication of the short report, result figures and tables, the final
# report (HTML + PDF) and the disclosure check over every published table.
# Thin rules: each calls one `ifm-eval <subcommand>` with its declared files (params.io); the
# implementing modules are inputs. Figures, tables and the report read exactly the estimates
# of the configured models (estimate_tidy / estimate_meta), never a directory listing, and
# each job checks that it wrote exactly its declared outputs. Main specifications are those
# with role: main in their metadata. The report (package outputs/report, texts in
# outputs/report/strings.yaml) requires every table and figure it shows as an input.

from ifm_eval.outputs import targets as OT

OUT_OUTCOMES = OT.outcomes(CFG, MODELS)
OUT_FIG = OT.figures_dir(CFG)
OUT_TAB = OT.tables_dir(CFG)
OUT_REPORT_HTML, OUT_REPORT_PDF = OT.report_paths(CFG)
OUT_CODE_COMMON = ["outputs/__init__.py", "outputs/style.py", "outputs/tablefmt.py", "outputs/targets.py",
                   "outputs/disclosure.py", "outputs/stages.py", "cli.py", "stage_io.py"]
OUTPUT_TARGETS = [str(OUT_REPORT_HTML), str(OUT_REPORT_PDF), str(OT.disclosure_check_path(CFG))]
GEO = dict(geo_gemeinden=P.reference_path(CFG, "geo_gemeinden"), geo_kreise=P.reference_path(CFG, "geo_kreise"))
TRUTH_COUNTS = dict(truth_counts=P.truth_counts_path(CFG)) if SYNTHETIC else {}
# stand-in data: each model's used treated observations, over which the matched truth is averaged
USED = dict(used=estimate_used(CFG)) if SYNTHETIC else {}


rule descriptives:
    input:
        survey=P.processed_path(CFG, "survey_harmonised"),
        treatment=P.processed_path(CFG, "treatment"),
        members=P.processed_path(CFG, "funding_members"),
        posts=P.processed_path(CFG, "im_posts"),
        frame=P.processed_path(CFG, "municipalities"),
        **GEO,
        code=module_files(*OUT_CODE_COMMON, "outputs/descriptives.py"),
    output:
        figures=[
            report(
                OUT_FIG / "descriptives" / f"{k}.png",
                caption="../report/descriptives.rst",
                category="1 Umsetzung (Kurzbericht)",
                subcategory=k,
            )
            for k in OT.DESCRIPTIVE_FIGURES
        ],
        pdfs=[OUT_FIG / "descriptives" / f"{k}.pdf" for k in OT.DESCRIPTIVE_FIGURES],
        shares=OUT_TAB / "descriptives_shares.csv",
        comparison=report(
            OUT_TAB / "descriptives_comparison.html",
            caption="../report/descriptives_comparison.rst",
            category="1 Umsetzung (Kurzbericht)",
            subcategory="Vergleich",
        ),
        comparison_other=[OUT_TAB / f"descriptives_comparison.{f}" for f in ("csv", "tex")],
    params:
        config=CONFIG_FILE,
        language=CFG["report"]["language"],
        io=cli_io,
    resources:
        **RES("descriptives"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "outputs" / "descriptives.log",
    benchmark:
        LOGS / "bench" / "outputs" / "descriptives.tsv"
    shell:
        "ifm-eval descriptives --config {params.config} {params.io} > {log} 2>&1"


rule figures:
    input:
        tidy=estimate_tidy(CFG),
        meta=estimate_meta(CFG),
        panel=P.processed_path(CFG, "panel"),
        **TRUTH_COUNTS,
        **USED,
        **GEO,
        code=module_files(*OUT_CODE_COMMON, "outputs/figures.py", "outputs/descriptives.py", "outputs/truth.py", "validation.py"),
    output:
        event_study=[
            report(
                OUT_FIG / f"event_study_{o}.png",
                caption="../report/event_study.rst",
                category="2 Ergebnisse",
                subcategory=o,
            )
            for o in OUT_OUTCOMES
        ],
        raw_trends=[
            report(
                OUT_FIG / f"raw_trends_{o}.png",
                caption="../report/raw_trends.rst",
                category="3 Daten",
                subcategory=o,
            )
            for o in OUT_OUTCOMES
        ],
        heatmap=[
            report(
                OUT_FIG / f"group_time_heatmap_{o}.png",
                caption="../report/heatmap.rst",
                category="2 Ergebnisse",
                subcategory=o,
            )
            for o in OUT_OUTCOMES
        ],
        robustness=report(
            OUT_FIG / "robustness.png",
            caption="../report/robustness.rst",
            category="2 Ergebnisse",
            subcategory="Robustheit",
        ),
        robustness_data=OT.robustness_data_path(CFG),
        cohort_map=report(
            OUT_FIG / "cohort_map.png",
            caption="../report/cohort_map.rst",
            category="3 Daten",
            subcategory="Kohorten",
        ),
        pdfs=OT.figure_paths(CFG, MODELS, fmt="pdf"),
        trend_data=[OUT_FIG / f"raw_trends_{o}.csv" for o in OUT_OUTCOMES],
    params:
        config=CONFIG_FILE,
        language=CFG["report"]["language"],
        min_cell=CFG["disclosure"]["min_cell"],
        io=cli_io,
    resources:
        **RES("figures"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "outputs" / "figures.log",
    benchmark:
        LOGS / "bench" / "outputs" / "figures.tsv"
    shell:
        "ifm-eval figures --config {params.config} {params.io} > {log} 2>&1"


rule tables:
    input:
        tidy=estimate_tidy(CFG),
        meta=estimate_meta(CFG),
        panel=P.processed_path(CFG, "panel"),
        lineage=P.processed_path(CFG, "lineage"),
        quality=P.processed_path(CFG, "data_quality"),
        **TRUTH_COUNTS,
        **USED,
        code=module_files(*OUT_CODE_COMMON, "outputs/tables.py", "outputs/figures.py", "outputs/truth.py", "validation.py"),
    output:
        html=[
            report(
                OUT_TAB / f"{k}.html",
                caption=f"../report/table_{k}.rst",
                category="4 Tabellen",
                subcategory=k,
            )
            for k in OT.result_tables(CFG)
        ],
        csv=OT.table_paths(CFG, "csv"),
        tex=OT.table_paths(CFG, "tex"),
    params:
        config=CONFIG_FILE,
        language=CFG["report"]["language"],
        min_cell=CFG["disclosure"]["min_cell"],
        io=cli_io,
    resources:
        **RES("tables"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "outputs" / "tables.log",
    benchmark:
        LOGS / "bench" / "outputs" / "tables.tsv"
    shell:
        "ifm-eval tables --config {params.config} {params.io} > {log} 2>&1"


REL_TABLES, REL_FIGURES = OT.reliability_report_inputs(CFG)
CRED_TABLES, CRED_FIGURES = OT.credibility_report_inputs(CFG)
LANDTAG_TABLES, LANDTAG_FIGURES = OT.landtag_report_inputs(CFG)


rule report:
    input:
        figures=OT.figure_paths(CFG, MODELS) + OT.descriptive_figure_paths(CFG) + REL_FIGURES + CRED_FIGURES
        + LANDTAG_FIGURES,
        tables=OT.table_paths(CFG, "csv") + [OUT_TAB / "descriptives_comparison.csv", OUT_TAB / "descriptives_shares.csv"]
        + REL_TABLES + CRED_TABLES + LANDTAG_TABLES,
        tidy=estimate_tidy(CFG),
        meta=estimate_meta(CFG),
        panel=P.processed_path(CFG, "panel"),
        **(dict(truth=P.truth_path(CFG), **TRUTH_COUNTS) if SYNTHETIC else {}),
        code=module_files(*OUT_CODE_COMMON, "outputs/report", "outputs/figures.py", "outputs/truth.py", "validation.py",
                          "heterogeneity/moderators.py", "dose/stage.py"),
    output:
        html=report(
            OUT_REPORT_HTML,
            caption="../report/final_report.rst",
            category="0 Bericht",
        ),
        pdf=OUT_REPORT_PDF,
    params:
        config=CONFIG_FILE,
        language=CFG["report"]["language"],
        io=cli_io,
    resources:
        **RES("report"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "outputs" / "report.log",
    benchmark:
        LOGS / "bench" / "outputs" / "report.tsv"
    shell:
        "ifm-eval report --config {params.config} {params.io} > {log} 2>&1"


rule check_disclosure:
    input:
        files=[
            OUT_REPORT_HTML,
            OUT_REPORT_PDF,
            *rules.descriptives.output,
            *rules.figures.output,
            *rules.tables.output,
            *estimate_tidy(CFG),
            *OT.montecarlo_outputs(CFG).values(),
            *OT.power_outputs(CFG).values(),
            *[p for rule_out in OT.credibility_outputs(CFG).values() for p in rule_out.values()],
            *[p for m in OT.heterogeneity_models(CFG, "heterogeneity")
              for k, p in OT.heterogeneity_spec_paths(CFG, m).items() if k != "used"],
            OT.heterogeneity_summary_outputs(CFG)["summary"],
            OT.heterogeneity_summary_outputs(CFG)["differences_summary"],
            *[p for m in OT.heterogeneity_models(CFG, "dose")
              for k, p in OT.dose_spec_paths(CFG, m).items() if k != "lineage"],
            OT.dose_summary_outputs(CFG)["summary"],
            *[p for k, p in OT.policy_outputs(CFG).items() if k in OT.policy_published_keys()],
        ],
        code=module_files("outputs/disclosure.py", "outputs/stages.py", "cli.py", "stage_io.py"),
    output:
        check=OT.disclosure_check_path(CFG),
    params:
        config=CONFIG_FILE,
        min_cell=CFG["disclosure"]["min_cell"],
        io=cli_io,
    resources:
        **RES("check_disclosure"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "outputs" / "check_disclosure.log",
    benchmark:
        LOGS / "bench" / "outputs" / "check_disclosure.tsv"
    shell:
        "ifm-eval check-disclosure --config {params.config} {params.io} > {log} 2>&1"
