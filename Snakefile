# ifm_eval — the evaluation pipeline as a Snakemake DAG.
#
# Entry point only: validate the config, include the rule files, define the targets.
# Every rule is thin: it calls `ifm-eval <stage>` (the installed package's CLI) and lists the
# implementing modules among its inputs, so that a code change reruns exactly those jobs.
# All logic lives in src/ifm_eval/ (importable, unit-tested).

import os
from functools import partial
from pathlib import Path

from snakemake.utils import min_version

min_version("9.14.8")

from ifm_eval import paths as P
from ifm_eval.config import validate_config
from ifm_eval.workflow_support import (
    cli_io,
    estimate_meta,
    estimate_outputs,
    estimate_tidy,
    estimate_used,
    effective_config_file,
    model_names,
    module_files,
    rule_resources,
)


configfile: "config.yaml"


# Validated copy (defaults filled). A bad key stops here with a message naming it.
CFG = validate_config(config)
# IFM_EVAL_SHADOW=minimal runs every job in a Snakemake shadow directory holding only its
# declared inputs (the contract test: a stage that reads an undeclared file fails).
SHADOW = os.environ.get("IFM_EVAL_SHADOW") or None
# The stage CLIs read the same effective config (incl. any --config overrides) from this
# file (parameters only, never paths); it is rewritten only when its content changes, so
# re-parsing (SLURM) is a no-op. Absolute in shadow runs (the shadow holds inputs only).
CONFIG_FILE = effective_config_file(CFG, absolute=SHADOW is not None)
SYNTHETIC = CFG["data"]["source"] == "synthetic"
MODELS = model_names(CFG)
LOGS = Path("logs")
ENV = str(Path(workflow.basedir) / "workflow" / "envs" / "ifm_eval.yaml")
# Per-rule mem_mb / runtime from the measured peaks (workflow/resources.yaml,
# benchmarks/resources.py); what a cluster scheduler requests for each job.
RESOURCES_FILE = Path(workflow.basedir) / "workflow" / "resources.yaml"
RES = partial(rule_resources, path=RESOURCES_FILE)



include: "workflow/rules/data.smk"
include: "workflow/rules/estimate.smk"
include: "workflow/rules/outputs.smk"
include: "workflow/rules/montecarlo.smk"
include: "workflow/rules/credibility.smk"
include: "workflow/rules/heterogeneity.smk"
include: "workflow/rules/policy.smk"


rule all:
    default_target: True
    input:
        P.processed_path(CFG, "panel"),
        P.processed_path(CFG, "data_dictionary"),
        P.processed_path(CFG, "lineage"),
        P.processed_path(CFG, "data_quality"),
        estimate_outputs(CFG),
        OUTPUT_TARGETS,
        [str(p) for rule_out in CRED.values() for p in rule_out.values()],
        rules.heterogeneity_summary.output,
        [p for m in DOSE_MODELS for p in OT.dose_spec_paths(CFG, m).values()],
        rules.dose_summary.output,
        POLICY.values(),
