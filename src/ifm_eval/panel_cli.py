"""``ifm-eval treatment`` and ``ifm-eval panel``: treatment timing and the panel."""

from __future__ import annotations

import argparse

from ifm_eval.config import load_config


def _treatment(args: argparse.Namespace) -> None:
    from ifm_eval import treatment

    treatment.run(load_config(args.config))


def _panel(args: argparse.Namespace) -> None:
    from ifm_eval import panel

    panel.run(load_config(args.config))


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("treatment", help="IM start month (three rules) and intensity per municipality")
    p.add_argument("--config", default="config.yaml")
    p.set_defaults(func=_treatment)
    p = sub.add_parser("panel", help="build the municipality x month panel, dictionary, lineage, data quality")
    p.add_argument("--config", default="config.yaml")
    p.set_defaults(func=_panel)
