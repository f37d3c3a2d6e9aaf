# The Landtag's requests answered from the data (ifm_eval.policy): demand projection,
# funded vs filled VZÄ, KPI tracking, cost per additional person from the main estimates.
# One job; published tables and figures under results/policy/, municipal tables under
# data/processed/policy/.

POLICY = OT.policy_outputs(CFG)
POLICY_SPECS = [m for m, s in MODELS.items() if s["role"] == "main"]


rule policy:
    input:
        refugees=P.processed_path(CFG, "refugees_au"),
        funding_verbaende=P.processed_path(CFG, "funding_verbaende"),
        funding_members=P.processed_path(CFG, "funding_members"),
        posts=P.processed_path(CFG, "im_posts"),
        kpi=P.processed_path(CFG, "kpi_reports"),
        panel=P.processed_path(CFG, "panel"),
        tidy=[str(P.estimate_paths(CFG, m)[0]) for m in POLICY_SPECS],
        meta=[str(P.estimate_paths(CFG, m)[1]) for m in POLICY_SPECS],
        code=module_files("policy", "lineage.py", "credibility/select.py", "outputs/style.py",
                          "outputs/tablefmt.py", "outputs/disclosure.py", "cli.py", "stage_io.py"),
    output:
        **{k: (report(v, caption="../report/policy.rst", category="8 Fragen des Landtags", subcategory=v.stem)
               if k.endswith("_figure") else v) for k, v in POLICY.items()},
    params:
        config=CONFIG_FILE,
        policy=CFG.get("policy", {}),
        io=cli_io,
    threads: 1
    resources:
        **RES("policy"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "policy.log",
    benchmark:
        LOGS / "bench" / "policy.tsv"
    shell:
        "ifm-eval policy --config {params.config} {params.io} > {log} 2>&1"
