"""``ifm-eval estimate`` and ``ifm-eval list-models``."""

from __future__ import annotations

import argparse
import json

from ifm_eval.config import load_config


def _estimate(args: argparse.Namespace) -> None:
    from ifm_eval.estimators.runner import run_model

    run_model(load_config(args.config), args.model, strict=args.strict)


def _list_models(args: argparse.Namespace) -> None:
    from ifm_eval.estimators.specs import expand_models

    models = expand_models(load_config(args.config))
    if args.json:
        print(json.dumps(models, indent=2, sort_keys=True))
    else:
        for name, spec in models.items():
            print(name if not args.long else f"{name}\t{spec['estimator']}\t{spec['outcome']}")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("estimate", help="estimate one model specification (results/estimates/)")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--model", required=True, help="spec name (see list-models)")
    p.add_argument(
        "--strict",
        action="store_true",
        help="fail instead of writing an empty 'not_estimable' result",
    )
    p.set_defaults(func=_estimate)
    p = sub.add_parser("list-models", help="print the expanded model specification names")
    p.add_argument("--config", default="config.yaml")
    p.add_argument("--json", action="store_true", help="print the full specs as JSON")
    p.add_argument("--long", action="store_true", help="name, estimator and outcome")
    p.set_defaults(func=_list_models)
