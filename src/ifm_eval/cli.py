"""Command-line interface: ``ifm-eval <stage> [options]``.

Each pipeline stage lives in its own module that exposes ``register(subparsers)``; the
module adds its subcommand(s) whose handler receives the parsed arguments.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
import time

#: Modules that each contribute one or more subcommands (in pipeline order).
STAGE_MODULES = (
    "ifm_eval.reference",
    "ifm_eval.synth.cli",
    "ifm_eval.ingest.cli",
    "ifm_eval.ingest.surveys",
    "ifm_eval.panel_cli",
    "ifm_eval.estimators.cli",
    "ifm_eval.outputs.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ifm-eval",
        description="Evaluation pipeline for Integrationsmanagement in Baden-Württemberg.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="stage", required=True, metavar="<stage>")
    for name in STAGE_MODULES:
        importlib.import_module(name).register(sub)
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
    t0 = time.perf_counter()
    try:
        args.func(args)
    except Exception as exc:  # clear one-line error for users, traceback with -v
        if args.verbose:
            raise
        log.error("%s: %s", type(exc).__name__, exc)
        return 1
    log.info("stage %s finished in %.1f s", args.stage, time.perf_counter() - t0)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
