"""Command-line interface: ``ifm-eval <stage> --config C --in NAME=PATH ... --out NAME=PATH ...``.

One pattern for every stage: the Snakemake rule passes its declared named inputs and
outputs (:func:`ifm_eval.workflow_support.cli_io`) and the validated effective config (for
parameters only, never for paths); the stage checks the names
(:meth:`ifm_eval.stage_io.StageIO.require`) and reads and writes exactly those files. All
subcommands are defined here, in :data:`COMMANDS`; each handler imports its stage lazily so
that ``ifm-eval --help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ifm_eval.stage_io import StageIO

# One BLAS/OpenMP thread per job (before numpy is first imported): Snakemake runs jobs in
# parallel, and multi-threaded BLAS reductions round differently from single-threaded ones,
# which would make the estimates differ in the last digits between runs on different
# machines or loads. A job that wants more threads sets IFM_EVAL_THREADS.
for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ[_var] = os.environ.get("IFM_EVAL_THREADS", "1")

Handler = Callable[[dict[str, Any] | None, StageIO, argparse.Namespace], Any]


@dataclass(frozen=True)
class Command:
    name: str
    handler: Handler
    help: str
    options: tuple[tuple[tuple[str, ...], dict[str, Any]], ...] = field(default_factory=tuple)
    config: bool = True  # takes --config (parameters)
    io: bool = True  # takes --in / --out


def _opt(*flags: str, **kw: Any) -> tuple[tuple[str, ...], dict[str, Any]]:
    return flags, kw


# ---------------------------------------------------------------------------- handlers
def _reference(cfg, io, a):
    from ifm_eval import reference

    io.require(inputs=("gv",), outputs=("frame",))
    reference.run(io.input("gv"), io.output("frame"))


def _synth(cfg, io, a):
    from ifm_eval.synth.run import run

    return run(cfg, io)


def _ingest(cfg, io, a):
    from ifm_eval.ingest.run import run_source

    run_source(cfg, a.source, io)


def _ingest_survey(cfg, io, a):
    from ifm_eval.ingest.survey_read import ingest_wave
    from ifm_eval.lineage import Lineage

    io.require(inputs=("raw",), outputs=("wave", "lineage"))
    lineage = Lineage(f"ingest_survey_{a.wave}")
    ingest_wave(a.wave, io.input("raw"), io.output("wave"), lineage)
    lineage.write(io.output("lineage"))


def _harmonise(cfg, io, a):
    from ifm_eval.ingest.survey_harmonise import run

    run(cfg, io)


def _treatment(cfg, io, a):
    from ifm_eval import treatment

    treatment.run(cfg, io)


def _panel(cfg, io, a):
    from ifm_eval import panel

    panel.run(cfg, io)


def _estimate(cfg, io, a):
    from ifm_eval.estimators.runner import run

    run(cfg, a.model, io, strict=a.strict)


def _check_raw(cfg, io, a):
    from ifm_eval.check_raw import run

    run(cfg, io, strict=a.strict)


def _list_models(cfg, io, a):
    import json

    from ifm_eval.estimators.specs import expand_models, spec_kind

    models = expand_models(cfg, kinds=None)
    if a.json:
        print(json.dumps(models, indent=2, sort_keys=True))
        return
    for name, spec in models.items():
        print(name if not a.long else f"{name}\t{spec_kind(spec)}\t{spec['role']}\t{spec['estimator']}\t{spec['outcome']}")


def _mc_replicate(cfg, io, a):
    from ifm_eval.montecarlo.stages import mc_replicate

    mc_replicate(cfg, io, a.design, a.seed)


def _mc(stage: str) -> Handler:
    def handler(cfg, io, a):
        from ifm_eval.montecarlo import stages

        return getattr(stages, stage)(cfg, io, a)

    handler.__name__ = f"_{stage}"
    return handler


def _randomization(cfg, io, a):
    from ifm_eval.credibility.inference_stage import randomization

    randomization(cfg, io, a.estimator)


def _cred(module: str, stage: str) -> Handler:
    def handler(cfg, io, a):
        import importlib

        return getattr(importlib.import_module(f"ifm_eval.credibility.{module}"), stage)(cfg, io, a)

    handler.__name__ = f"_{stage}"
    return handler


def _heterogeneity(cfg, io, a):
    from ifm_eval.heterogeneity.stage import run_spec

    return run_spec(cfg, a.model, io)


def _heterogeneity_summary(cfg, io, a):
    from ifm_eval.heterogeneity.stage import run_summary

    return run_summary(cfg, io, a)


def _dose_response(cfg, io, a):
    from ifm_eval.dose.stage import run_spec

    return run_spec(cfg, a.model, io)


def _dose_summary(cfg, io, a):
    from ifm_eval.dose.summary import run_summary

    return run_summary(cfg, io, a)


def _policy(cfg, io, a):
    from ifm_eval.policy.stage import run_policy

    return run_policy(cfg, io)


def _outputs(stage: str) -> Handler:
    def handler(cfg, io, a):
        from ifm_eval.outputs import stages

        return getattr(stages, stage)(cfg, io, a)

    handler.__name__ = f"_{stage}"
    return handler


COMMANDS: tuple[Command, ...] = (
    Command("reference", _reference, "parse the Destatis Gemeindeverzeichnis into the municipality frame",
            config=False),
    Command("synth", _synth, "generate the stand-in raw data (every file of data/raw/README.md + truth)"),
    Command("ingest", _ingest, "read and validate one administrative source",
            (_opt("--source", required=True, help="source key (ifm_eval.sources.ADMIN_SOURCES)"),)),
    Command("ingest-survey", _ingest_survey, "read and validate one survey wave",
            (_opt("--wave", required=True, help="codebook wave (w1 .. w5)"),)),
    Command("harmonise-surveys", _harmonise,
            "match keys, expand district answers, one row per municipality; item non-response"),
    Command("check-raw", _check_raw,
            "check a delivery against the file contract (data/raw/README.md) before a run: one "
            "report per file (found, readable, schema, conventions, coverage, repairs)",
            (_opt("--strict", action="store_true",
                  help="exit with an error if a file is missing or fails (after writing the report)"),)),
    Command("treatment", _treatment, "IM start month (three rules) and intensity per municipality"),
    Command("panel", _panel, "build the municipality x month panel, dictionary, lineage, data quality"),
    Command("estimate", _estimate, "estimate one model specification",
            (_opt("--model", required=True, help="spec name (see list-models)"),
             _opt("--strict", action="store_true",
                  help="fail instead of writing an empty 'not_estimable' result"))),
    Command("list-models", _list_models, "print the expanded model specifications",
            (_opt("--json", action="store_true", help="print the full specs as JSON"),
             _opt("--long", action="store_true", help="name, role, estimator and outcome")),
            io=False),
    Command("mc-replicate", _mc_replicate,
            "one Monte Carlo replicate: draw a stand-in world, estimate the main specs, compare with the truth",
            (_opt("--design", required=True, help="effects | zero | violated | hr<x>"),
             _opt("--seed", required=True, type=int, help="the replicate's seed"))),
    Command("monte-carlo", _mc("monte_carlo"),
            "summarise the replicates: bias, RMSE, calibration, coverage, size per estimator x outcome"),
    Command("power", _mc("power"), "analytic MDE of the main specs and the simulated power curve"),
    Command("randomization", _randomization,
            "randomization inference: one estimator's diagnosed specs on permuted start months (Verbände)",
            (_opt("--estimator", required=True, help="estimator of the diagnosed specs"),)),
    Command("credibility-inference", _cred("inference_stage", "credibility_inference"),
            "analytic, bootstrap, randomization and Romano-Wolf p-values of the diagnosed specs"),
    Command("pretrends", _cred("diagnostics_stage", "pretrends"),
            "joint pre-trend Wald tests and the power of the pre-test (Roth 2022) of the event studies"),
    Command("twfe-diagnostics", _cred("diagnostics_stage", "twfe_diagnostics"),
            "Goodman-Bacon decomposition and de Chaisemartin-D'Haultfoeuille weights of the static TWFE"),
    Command("honest-did-model", _cred("sensitivity_stage", "honest_did_model"),
            "HonestDiD sensitivity (Rambachan & Roth 2023) of one main event study",
            (_opt("--model", required=True, help="diagnosed spec name"),)),
    Command("honest-did", _cred("sensitivity_stage", "honest_did_stage"),
            "HonestDiD tables and figure of the main event studies (from the per-spec jobs)"),
    Command("heterogeneity", _heterogeneity,
            "subgroup event studies of one heterogeneity spec and the differences between subgroups",
            (_opt("--model", required=True, help="spec name with a 'heterogeneity' key"),)),
    Command("heterogeneity-summary", _heterogeneity_summary,
            "summary of the heterogeneity specs (matched truth on stand-in data) and their figures"),
    Command("dose-response", _dose_response,
            "continuous-treatment DiD (ATT(d), ACRT(d), uniform bands, binned check) of one dose spec",
            (_opt("--model", required=True, help="spec name with a 'dose' key"),)),
    Command("dose-summary", _dose_summary, "the dose specs side by side: summary table and ATT(d) figure"),
    Command("policy", _policy,
            "the Landtag's requests: demand projection, funded vs filled VZÄ, KPI tracking, cost per person"),
    Command("descriptives", _outputs("descriptives"),
            "replicate the short report's charts + comparison with the published shares"),
    Command("figures", _outputs("figures"),
            "event studies, robustness panel, cohort map, raw trends, group-time heat maps"),
    Command("tables", _outputs("tables"),
            "main results, all specifications, balance, coverage, item non-response, lineage"),
    Command("report", _outputs("report"), "final report as self-contained HTML and PDF (typst)",
            (_opt("--pages-png", help="also write every PDF page as PNG into this directory"),)),
    Command("check-disclosure", _outputs("check_disclosure"),
            "fail if any person-count cell of the given result files is below disclosure.min_cell"),
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ifm-eval",
        description="Evaluation pipeline for Integrationsmanagement in Baden-Württemberg. Every "
        "stage takes its files as --in NAME=PATH / --out NAME=PATH (as its Snakemake rule passes "
        "them) and its parameters from --config.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging, tracebacks")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")
    for cmd in COMMANDS:
        p = sub.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        if cmd.config:
            p.add_argument("--config", default="config.yaml", help="config file (default: config.yaml)")
        if cmd.io:
            p.add_argument("--in", dest="inputs", action="append", default=[], metavar="NAME=PATH",
                           help="declared input file (repeat; a name may repeat for a list)")
            p.add_argument("--out", dest="outputs", action="append", default=[], metavar="NAME=PATH",
                           help="declared output file (repeat)")
        for flags, kw in cmd.options:
            p.add_argument(*flags, **kw)
        p.set_defaults(command=cmd)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )
    log = logging.getLogger("ifm_eval")
    cmd: Command = args.command
    t0 = time.perf_counter()
    if os.environ.get("SLURM_JOB_ID"):  # a cluster job: say which (the SLURM test checks every job's log)
        log.info("SLURM_JOB_ID=%s on %s (partition %s)", os.environ["SLURM_JOB_ID"],
                 os.environ.get("SLURMD_NODENAME", "?"), os.environ.get("SLURM_JOB_PARTITION", "?"))
    try:
        cfg = None
        if cmd.config:
            from ifm_eval.config import load_config

            cfg = load_config(args.config)
        io = StageIO.parse(cmd.name, args.inputs, args.outputs) if cmd.io else StageIO(cmd.name)
        cmd.handler(cfg, io, args)
    except Exception as exc:  # clear one-line error for users, traceback with -v
        if args.verbose:
            raise
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    log.info("stage %s finished in %.1f s", cmd.name, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
