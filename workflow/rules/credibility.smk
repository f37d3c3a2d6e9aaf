# Credibility diagnostics of the diagnosed (main) specifications: randomization inference
# (one job per estimator), the inference table (analytic / bootstrap / randomization /
# Romano-Wolf), pre-trend tests and their power, the static TWFE's decompositions and
# HonestDiD sensitivity. Each rule reads the declared estimate files (or the panel) and
# calls one `ifm-eval` stage.

from ifm_eval import paths as _P
from ifm_eval.credibility.select import diagnosed_estimators, diagnosed_specs
from ifm_eval.credibility.sensitivity_stage import honest_models

CRED = OT.credibility_outputs(CFG)
CRED_SPECS = list(diagnosed_specs(CFG))
CRED_ESTIMATORS = diagnosed_estimators(CFG)
HONEST_MODELS = honest_models(CFG)
CRED_INF_DIR = P.processed_dir(CFG) / "credibility"
CRED_TIDY = [str(_P.estimate_paths(CFG, m)[0]) for m in CRED_SPECS]
CRED_META = [str(_P.estimate_paths(CFG, m)[1]) for m in CRED_SPECS]
CRED_BOOT = [str(_P.boot_path(CFG, m)) for m in CRED_SPECS]
CRED_CODE = ["credibility/__init__.py", "credibility/select.py", "credibility/figures.py", "outputs/style.py",
             "outputs/tablefmt.py", "cli.py", "stage_io.py"]


wildcard_constraints:
    cred_estimator="|".join(CRED_ESTIMATORS) if CRED_ESTIMATORS else "NONE",
    honest_model="|".join(HONEST_MODELS) if HONEST_MODELS else "NONE",


rule randomization:
    input:
        panel=P.processed_path(CFG, "panel"),
        code=module_files("inference", "estimators", "credibility/inference_stage.py", *CRED_CODE),
    output:
        draws=CRED_INF_DIR / "randomization_{cred_estimator}.parquet",
    params:
        config=CONFIG_FILE,
        specs=lambda wc: {n: MODELS[n] for n in CRED_SPECS if MODELS[n]["estimator"] == wc.cred_estimator},
        randomization=CFG["credibility"]["randomization"],
        io=cli_io,
    threads: 1
    resources:
        **RES("randomization"),
    group:
        "permutation"
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "credibility" / "randomization_{cred_estimator}.log",
    benchmark:
        LOGS / "bench" / "credibility" / "randomization_{cred_estimator}.tsv"
    shell:
        "ifm-eval randomization --config {params.config} --estimator {wildcards.cred_estimator} "
        "{params.io} > {log} 2>&1"


rule credibility_inference:
    input:
        tidy=CRED_TIDY,
        meta=CRED_META,
        boot=CRED_BOOT,
        draws=[CRED_INF_DIR / f"randomization_{e}.parquet" for e in CRED_ESTIMATORS],
        code=module_files("inference", "credibility/inference_stage.py", *CRED_CODE),
    output:
        table=CRED["credibility_inference"]["table"],
        ri_draws=CRED["credibility_inference"]["ri_draws"],
        figure=report(CRED["credibility_inference"]["figure"], caption="../report/randomization.rst",
                      category="6 Glaubwürdigkeit", subcategory="Inferenz"),
        pdf=CRED["credibility_inference"]["pdf"],
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("credibility_inference"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "credibility" / "inference.log",
    benchmark:
        LOGS / "bench" / "credibility" / "inference.tsv"
    shell:
        "ifm-eval credibility-inference --config {params.config} {params.io} > {log} 2>&1"


rule pretrends:
    input:
        tidy=CRED_TIDY,
        meta=CRED_META,
        panel=P.processed_path(CFG, "panel"),
        code=module_files("diagnostics", "estimators", "credibility/diagnostics_stage.py",
                          "credibility/event_studies.py", *CRED_CODE),
    output:
        table=CRED["pretrends"]["table"],
        power=CRED["pretrends"]["power"],
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("pretrends"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "credibility" / "pretrends.log",
    benchmark:
        LOGS / "bench" / "credibility" / "pretrends.tsv"
    shell:
        "ifm-eval pretrends --config {params.config} {params.io} > {log} 2>&1"


rule twfe_diagnostics:
    input:
        panel=P.processed_path(CFG, "panel"),
        tidy=CRED_TIDY,
        meta=CRED_META,
        **(dict(truth_counts=P.truth_counts_path(CFG)) if SYNTHETIC else {}),
        code=module_files("diagnostics", "estimators", "credibility/diagnostics_stage.py",
                          "credibility/event_studies.py", "validation.py", *CRED_CODE),
    output:
        bacon=CRED["twfe_diagnostics"]["bacon"],
        bacon_summary=CRED["twfe_diagnostics"]["bacon_summary"],
        weights=CRED["twfe_diagnostics"]["weights"],
        figure=report(CRED["twfe_diagnostics"]["figure"], caption="../report/bacon.rst",
                      category="6 Glaubwürdigkeit", subcategory="TWFE"),
        pdf=CRED["twfe_diagnostics"]["pdf"],
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("twfe_diagnostics"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "credibility" / "twfe_diagnostics.log",
    benchmark:
        LOGS / "bench" / "credibility" / "twfe_diagnostics.tsv"
    shell:
        "ifm-eval twfe-diagnostics --config {params.config} {params.io} > {log} 2>&1"


rule honest_did_model:
    input:
        tidy=lambda wc: str(_P.estimate_paths(CFG, wc.honest_model)[0]),
        meta=lambda wc: str(_P.estimate_paths(CFG, wc.honest_model)[1]),
        panel=P.processed_path(CFG, "panel"),
        code=module_files("sensitivity", "estimators", "credibility/sensitivity_stage.py",
                          "credibility/event_studies.py", *CRED_CODE),
    output:
        rows=CRED_INF_DIR / "honest_did" / "{honest_model}.parquet",
        breakdown=CRED_INF_DIR / "honest_did" / "{honest_model}_breakdown.parquet",
    params:
        config=CONFIG_FILE,
        spec=lambda wc: MODELS[wc.honest_model],
        honest_did=CFG["credibility"]["honest_did"],
        io=cli_io,
    threads: 1
    resources:
        **RES("honest_did_model"),
    group:
        "honest"
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "credibility" / "honest_did" / "{honest_model}.log",
    benchmark:
        LOGS / "bench" / "credibility" / "honest_did_{honest_model}.tsv"
    shell:
        "ifm-eval honest-did-model --config {params.config} --model {wildcards.honest_model} "
        "{params.io} > {log} 2>&1"


rule honest_did:
    input:
        rows=[CRED_INF_DIR / "honest_did" / f"{m}.parquet" for m in HONEST_MODELS],
        breakdown_rows=[CRED_INF_DIR / "honest_did" / f"{m}_breakdown.parquet" for m in HONEST_MODELS],
        code=module_files("credibility/sensitivity_stage.py", *CRED_CODE),
    output:
        table=CRED["honest_did"]["table"],
        breakdown=CRED["honest_did"]["breakdown"],
        figure=report(CRED["honest_did"]["figure"], caption="../report/honest_did.rst",
                      category="6 Glaubwürdigkeit", subcategory="HonestDiD"),
        pdf=CRED["honest_did"]["pdf"],
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("honest_did"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "credibility" / "honest_did.log",
    benchmark:
        LOGS / "bench" / "credibility" / "honest_did.tsv"
    shell:
        "ifm-eval honest-did --config {params.config} {params.io} > {log} 2>&1"
