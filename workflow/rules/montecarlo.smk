# Monte Carlo self-validation and power: one job per design and seed (resumable, spread by a
# cluster), a summary and the power / MDE stage. `snakemake monte_carlo --config
# monte_carlo='{k: 500}'` is the full run.

import ifm_eval.montecarlo.evidence as MC_EVIDENCE
from ifm_eval.montecarlo.stages import power_designs, replicate_seeds

MC_DIR = P.processed_dir(CFG) / "montecarlo"
MC_OUT = OT.montecarlo_outputs(CFG)
POWER_OUT = OT.power_outputs(CFG)
MC_DESIGNS = list(CFG["monte_carlo"]["designs"])
MC_SEEDS = replicate_seeds(CFG)
POWER_DESIGNS = power_designs(CFG)
POWER_SEEDS = replicate_seeds(CFG, CFG["monte_carlo"]["power"]["k"])
# what a replicate runs (not the summary, evidence or figure code: editing those must not
# rerun hundreds of replicates)
MC_CODE = module_files("montecarlo/replicate.py", "montecarlo/stages.py", "synth", "estimators", "validation.py",
                       "panel.py", "masking.py", "treatment.py", "months.py", "frame.py", "cli.py", "stage_io.py")


wildcard_constraints:
    design=r"effects|zero|violated|hr\d+(\.\d+)?",
    seed=r"\d+",


rule mc_replicate:
    input:
        gv=P.reference_path(CFG, "gv"),
        code=MC_CODE,
    output:
        rows=MC_DIR / "{design}" / "{seed}.parquet",
    params:
        config=CONFIG_FILE,
        synth=CFG["synth"],
        models=lambda wc: {n: MODELS[n] for n in (CFG["monte_carlo"]["models"] or [m for m, s in MODELS.items() if s["role"] == "main"])},
        io=cli_io,
    threads: 1
    resources:
        **RES("mc_replicate"),
    group:
        "mc"
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "montecarlo" / "{design}" / "{seed}.log",
    benchmark:
        LOGS / "bench" / "montecarlo" / "{design}" / "{seed}.tsv"
    shell:
        "ifm-eval mc-replicate --config {params.config} --design {wildcards.design} --seed {wildcards.seed} "
        "{params.io} > {log} 2>&1"


rule monte_carlo:
    input:
        rows=[MC_DIR / d / f"{s}.parquet" for d in MC_DESIGNS for s in MC_SEEDS],
        # the recorded full-size runs shipped with the package (ifm_eval.montecarlo.evidence)
        recorded=[p for p in [MC_EVIDENCE.RECORDED] if p.is_file()],
        recorded_before=[p for p in [MC_EVIDENCE.RECORDED_BEFORE] if p.is_file()],
        code=module_files("montecarlo", "outputs/style.py", "outputs/tablefmt.py", "cli.py", "stage_io.py"),
    output:
        summary=MC_OUT["summary"],
        event_time=MC_OUT["event_time"],
        targets=MC_OUT["targets"],
        evidence=MC_OUT["evidence"],
        figure=report(MC_OUT["figure"], caption="../report/montecarlo.rst",
                      category="5 Verlässlichkeit", subcategory="Monte Carlo"),
        pdf=MC_OUT["pdf"],
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("monte_carlo"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "montecarlo" / "summary.log",
    benchmark:
        LOGS / "bench" / "montecarlo" / "summary.tsv"
    shell:
        "ifm-eval monte-carlo --config {params.config} {params.io} > {log} 2>&1"


rule power:
    input:
        rows=[MC_DIR / d / f"{s}.parquet" for d in ["zero", *POWER_DESIGNS] for s in POWER_SEEDS],
        tidy=[t for t, n in zip(estimate_tidy(CFG), MODELS) if MODELS[n]["role"] == "main"],
        meta=[m for m, n in zip(estimate_meta(CFG), MODELS) if MODELS[n]["role"] == "main"],
        panel=P.processed_path(CFG, "panel"),
        code=module_files("montecarlo", "outputs/style.py", "outputs/tablefmt.py", "outputs/figures.py",
                          "cli.py", "stage_io.py"),
    output:
        mde=POWER_OUT["mde"],
        curve=POWER_OUT["curve"],
        detectable=POWER_OUT["detectable"],
        mde_figure=report(POWER_OUT["mde_figure"], caption="../report/mde.rst",
                          category="5 Verlässlichkeit", subcategory="MDE"),
        mde_pdf=POWER_OUT["mde_pdf"],
        power_figure=report(POWER_OUT["power_figure"], caption="../report/power_curve.rst",
                            category="5 Verlässlichkeit", subcategory="Power"),
        power_pdf=POWER_OUT["power_pdf"],
    params:
        config=CONFIG_FILE,
        io=cli_io,
    resources:
        **RES("power"),
    conda:
        ENV
    shadow:
        SHADOW
    log:
        LOGS / "montecarlo" / "power.log",
    benchmark:
        LOGS / "bench" / "montecarlo" / "power.tsv"
    shell:
        "ifm-eval power --config {params.config} {params.io} > {log} 2>&1"
