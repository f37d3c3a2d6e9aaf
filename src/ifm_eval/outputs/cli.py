"""Subcommands of the output stage: ``descriptives``, ``figures``, ``tables``, ``report``,
``check-disclosure`` (each ``--config C``). Registered through ``ifm_eval.cli.STAGE_MODULES``."""

from __future__ import annotations

import argparse


def _descriptives(args: argparse.Namespace) -> None:
    from ifm_eval.config import load_config
    from ifm_eval.outputs.descriptives import build_descriptives

    build_descriptives(load_config(args.config))


def _figures(args: argparse.Namespace) -> None:
    from ifm_eval.config import load_config
    from ifm_eval.outputs.figures import build_figures
    from ifm_eval.workflow_support import model_names

    cfg = load_config(args.config)
    build_figures(cfg, models_cfg=model_names(cfg) or None)


def _tables(args: argparse.Namespace) -> None:
    from ifm_eval.config import load_config
    from ifm_eval.outputs.tables import build_tables

    build_tables(load_config(args.config))


def _report(args: argparse.Namespace) -> None:
    from pathlib import Path

    from ifm_eval.config import load_config
    from ifm_eval.outputs.report import build_report

    cfg = load_config(args.config)
    if args.language:
        cfg["report"]["language"] = args.language
    build_report(cfg, logs_dir=args.logs, pages_png=Path(args.pages_png) if args.pages_png else None)


def _check(args: argparse.Namespace) -> None:
    from ifm_eval.outputs.disclosure import run_check

    run_check(args)


def register(sub: argparse._SubParsersAction) -> None:
    specs = [
        ("descriptives", _descriptives, "replicate the short report's charts + comparison with the published shares"),
        ("figures", _figures, "event studies, robustness panel, cohort map, raw trends, group-time heat maps"),
        ("tables", _tables, "main results, all specifications, balance, coverage, item non-response, lineage"),
        ("report", _report, "final report as self-contained HTML and PDF (typst)"),
        ("check-disclosure", _check, "fail if any person-count cell under results/ is below disclosure.min_cell"),
    ]
    for name, func, helptext in specs:
        p = sub.add_parser(name, help=helptext, description=helptext)
        p.add_argument("--config", default="config.yaml", help="config file (default: config.yaml)")
        if name == "report":
            p.add_argument("--language", choices=["de", "en"], help="override report.language")
            p.add_argument("--logs", default="logs", help="directory with bench/*.tsv (run time per rule)")
            p.add_argument("--pages-png", help="also write every PDF page as PNG into this directory")
        if name == "check-disclosure":
            p.add_argument("--results", help="directory to scan (default: data.results_dir)")
            p.add_argument("--out", help="write the check result as JSON here")
        p.set_defaults(func=func)
