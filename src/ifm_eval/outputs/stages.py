"""The jobs of the output stage: each reads the files its rule declares and writes exactly
the files its rule declares (checked after writing: a file written but not declared, or
declared but not written, is an error naming it)."""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ifm_eval.stage_io import StageIO, StageIOError

log = logging.getLogger(__name__)


def check_written(io: StageIO, written: list[Path], names: tuple[str, ...]) -> None:
    """The files written equal the declared outputs ``names`` (as a set)."""
    declared = {Path(p).resolve() for n in names for p in io.output_list(n)}
    got = {Path(p).resolve() for p in written}
    problems = []
    if extra := sorted(str(p) for p in got - declared):
        problems.append(f"written but not declared: {extra}")
    if missing := sorted(str(p) for p in declared - got):
        problems.append(f"declared but not written: {missing}")
    if problems:
        raise StageIOError(f"stage {io.stage}: " + "; ".join(problems))


def _one_dir(paths: list[Path], what: str) -> Path:
    dirs = sorted({Path(p).parent for p in paths})
    if len(dirs) != 1:
        raise StageIOError(f"{what}: declared files must share one directory, got {dirs}")
    return dirs[0]


def _cells(cfg: dict[str, Any], io: StageIO, panel: pd.DataFrame) -> pd.DataFrame | None:
    """True cell effects on stand-in data (declared ``truth_counts``), None on real data."""
    from ifm_eval.validation import load_cell_effects

    tc = io.optional_input("truth_counts")
    if cfg["data"]["source"] == "synthetic":
        if tc is None:
            raise StageIOError(f"stage {io.stage}: stand-in run but no truth_counts input declared")
        return load_cell_effects(panel, tc)
    if tc is not None:
        raise StageIOError(f"stage {io.stage}: truth_counts declared on real data (stand-in data only)")
    return None


def _used(cfg: dict[str, Any], io: StageIO, meta: dict[str, dict]) -> dict[str, pd.DataFrame] | None:
    """The used treated observations of every declared model (stand-in data: declared input
    ``used``, one ``<model>_used.parquet`` per model), None on real data."""
    files = io.input_list("used")
    if cfg["data"]["source"] != "synthetic":
        if files:
            raise StageIOError(f"stage {io.stage}: used observations declared on real data (stand-in data only)")
        return None
    by_model = {Path(f).name.removesuffix("_used.parquet"): f for f in files}
    if sorted(by_model) != sorted(meta):
        raise StageIOError(f"stage {io.stage}: used files {sorted(by_model)} do not match the models {sorted(meta)}")
    return {m: pd.read_parquet(f) for m, f in by_model.items()}


def _estimates(io: StageIO):
    from ifm_eval.outputs.figures import load_estimates

    return load_estimates(io.input_list("tidy"), io.input_list("meta"))


def descriptives(cfg: dict[str, Any], io: StageIO, args: argparse.Namespace | None = None) -> None:
    from ifm_eval.outputs.descriptives import build_descriptives, load_inputs

    names = ("figures", "pdfs", "shares", "comparison", "comparison_other")
    io.require(inputs=("survey", "treatment", "members", "posts", "frame", "geo_gemeinden", "geo_kreise"),
               outputs=names)
    inputs = load_inputs({k: io.input(k) for k in ("survey", "treatment", "members", "posts", "frame")})
    res = build_descriptives(cfg, inputs, (io.input("geo_gemeinden"), io.input("geo_kreise")),
                             fig_dir=_one_dir(io.output_list("figures") + io.output_list("pdfs"), "descriptives figures"),
                             table_dir=io.output("shares").parent)
    check_written(io, [*res["figures"], *res["tables"]], names)


def figures(cfg: dict[str, Any], io: StageIO, args: argparse.Namespace | None = None) -> None:
    from ifm_eval.outputs.figures import build_figures, spec_of
    from ifm_eval.outputs.targets import outcomes

    names = ("event_study", "raw_trends", "heatmap", "robustness", "robustness_data", "cohort_map", "pdfs", "trend_data")
    io.require(inputs=("tidy", "meta", "panel", "geo_gemeinden", "geo_kreise"), outputs=names,
               optional_inputs=("truth_counts", "used"))
    est, meta = _estimates(io)
    panel = pd.read_parquet(io.input("panel"))
    out_dir = _one_dir([p for n in names for p in io.output_list(n)], "figures")
    # outcomes of the declared models' specs (the rule declares the per-outcome figures the same way)
    keys = outcomes(cfg, {m: spec_of(meta, m) for m in meta})
    written = build_figures(cfg, est, meta, panel, _cells(cfg, io, panel),
                            (io.input("geo_gemeinden"), io.input("geo_kreise")), out_dir, outcome_keys=keys,
                            used=_used(cfg, io, meta))
    check_written(io, written, names)


def tables(cfg: dict[str, Any], io: StageIO, args: argparse.Namespace | None = None) -> None:
    from ifm_eval.outputs.tables import build_tables

    names = ("html", "csv", "tex")
    io.require(inputs=("tidy", "meta", "panel", "lineage", "quality"), outputs=names,
               optional_inputs=("truth_counts", "used"))
    est, meta = _estimates(io)
    panel = pd.read_parquet(io.input("panel"))
    out_dir = _one_dir([p for n in names for p in io.output_list(n)], "tables")
    written = build_tables(cfg, est, meta, panel, _cells(cfg, io, panel), pd.read_csv(io.input("quality")),
                           pd.read_csv(io.input("lineage")), out_dir, used=_used(cfg, io, meta))
    check_written(io, written, names)


def report(cfg: dict[str, Any], io: StageIO, args: argparse.Namespace | None = None) -> None:
    from ifm_eval.outputs.report import build_report, load_context

    io.require(inputs=("figures", "tables", "tidy", "meta", "panel"), outputs=("html", "pdf"),
               optional_inputs=("truth", "truth_counts"))
    est, meta = _estimates(io)
    truth = io.optional_input("truth")
    if (cfg["data"]["source"] == "synthetic") != (truth is not None):
        raise StageIOError("stage report: truth (and truth_counts) are inputs on stand-in data and only there")
    provenance = [io.input("panel"), *io.input_list("tidy"), *io.input_list("tables")]
    provenance += [p for p in (truth, io.optional_input("truth_counts")) if p is not None]
    ctx = load_context(cfg, est, meta, io.input_list("tables"), io.input_list("figures"), truth, provenance)
    pages = getattr(args, "pages_png", None) if args is not None else None
    build_report(ctx, io.output("html"), io.output("pdf"), pages_png=Path(pages) if pages else None)


def check_disclosure(cfg: dict[str, Any], io: StageIO, args: argparse.Namespace | None = None) -> None:
    from ifm_eval.outputs.disclosure import check_files, min_cell

    io.require(inputs=("files",), outputs=("check",))
    threshold = min_cell(cfg)
    files = io.input_list("files")
    violations = check_files(files, threshold)
    scanned = sorted(str(p) for p in files if p.suffix in {".csv", ".parquet"})
    result = {"min_cell": threshold, "files_scanned": len(scanned),
              "violations": [str(v) for v in violations], "passed": not violations}
    io.output("check").write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if violations:
        shown = "\n".join(str(v) for v in violations[:20])
        raise RuntimeError(f"{len(violations)} cell(s) below min_cell={threshold}:\n{shown}")
