"""The heterogeneity jobs.

``heterogeneity`` (one job per ``heterogeneity:`` spec): inputs ``panel``; outputs ``table``
(results/heterogeneity/<spec>.csv: every group's overall and event-time rows with its
counts), ``differences`` (results/heterogeneity/<spec>_differences.csv), ``meta`` (JSON:
spec, groups, warnings) and ``used`` (data/processed: the treated municipality-months
behind each group's estimates, for the matched truth).

``heterogeneity_summary``: inputs the tables, differences, metas, used files and, on
stand-in data, ``panel`` and ``truth_counts``; outputs ``summary`` (headline per spec and
group, differences, and on stand-in data the matched planted truth and whether the
interval covers it), one figure per moderator (subgroup event studies side by side).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)


def _model_of(path: str | Path, suffix: str) -> str:
    name = Path(path).name
    return name[: -len(suffix)] if name.endswith(suffix) else Path(path).stem


def run_spec(cfg: dict[str, Any], name: str, io: StageIO) -> pd.DataFrame:
    """The ``heterogeneity`` job of spec ``name``."""
    from ifm_eval.estimators.results import EstimateResult, package_versions
    from ifm_eval.estimators.runner import _jsonable, used_table
    from ifm_eval.estimators.specs import get_spec, spec_kind
    from ifm_eval.heterogeneity.subgroups import (
        MIN_TREATED,
        differences,
        fit_subgroups,
        group_table,
    )
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv

    io.require(inputs=("panel",), outputs=("table", "differences", "meta", "used"))
    spec = get_spec(cfg, name)
    if spec_kind(spec) != "heterogeneity":
        raise ValueError(f"model {name!r} has no 'heterogeneity' key")
    moderator = spec["heterogeneity"]
    panel = pd.read_parquet(io.input("panel"))
    fits, info = fit_subgroups(panel, spec, moderator)
    table = group_table(fits, moderator).assign(spec=name, estimator=spec["estimator"], outcome=spec["outcome"])
    boot = spec["inference"].get("bootstrap")
    diffs = differences(fits, info["universe"], boot).assign(
        spec=name, moderator=moderator, estimator=spec["estimator"], outcome=spec["outcome"])
    synthetic = style.is_synthetic(cfg)
    write_csv(table, io.output("table"), synthetic=synthetic)
    write_csv(diffs, io.output("differences"), synthetic=synthetic)
    used = []
    for f in fits:
        if f.result is not None:
            used.append(used_table(f.result).assign(group=f.group))
    used_df = (pd.concat(used, ignore_index=True) if used
               else used_table(EstimateResult(spec["estimator"], pd.DataFrame())).assign(group=pd.Series(dtype="str")))
    used_df.to_parquet(io.output("used"), index=False)
    meta = {
        "model": name, "kind": "heterogeneity", "moderator": moderator, "spec": spec,
        "data_source": "synthetic stand-in data (SYNTHETISCHE DATEN)" if synthetic else "raw",
        "min_treated": MIN_TREATED,
        "groups": [{"group": f.group, "n_units": f.n_units, "n_treated": f.n_treated, "status": f.status,
                    "error": f.error, "warnings": f.warnings,
                    "headline": None if f.result is None else (f.result.info.get("headline") or {})}
                   for f in fits],
        "n_missing_units": info["n_missing_units"], "n_missing_treated": info["n_missing_treated"],
        "warnings": info["warnings"], "packages": package_versions(),
    }
    Path(io.output("meta")).write_text(json.dumps(_jsonable(meta), indent=1) + "\n", encoding="utf-8")
    log.info("heterogeneity %s: %d groups (%d estimated), %d difference rows", name, len(fits),
             sum(f.status == "ok" for f in fits), len(diffs))
    return table


def _read_csvs(paths: list[Path]) -> pd.DataFrame:
    frames = [pd.read_csv(p, dtype={"group": "str", "group_a": "str", "group_b": "str"}) for p in paths]
    frames = [f for f in frames if len(f)]
    out = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    return out.drop(columns=["data_source"], errors="ignore")


def matched_group_truth(cells: pd.DataFrame, outcome: str, used: pd.DataFrame, group: str,
                        headline: dict[str, Any]) -> tuple[float | None, pd.DataFrame]:
    """Planted truth of one group's headline and path (:func:`ifm_eval.validation.matched_truth`
    over the group's used observations)."""
    from ifm_eval.validation import matched_truth

    u = used[used["group"].astype(str) == group]
    if not len(u):
        return None, pd.DataFrame()
    mt = matched_truth(cells, outcome, u, headline)
    return mt.overall, mt.path


def summary_table(cfg: dict[str, Any], tables: pd.DataFrame, diffs: pd.DataFrame, metas: dict[str, dict],
                  used: dict[str, pd.DataFrame], cells: pd.DataFrame | None,
                  ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Headline rows per spec and group, and the headline differences, each with the
    matched planted truth and its coverage where ``cells`` (stand-in) is given. Also returns
    the event-time truth paths (spec, group, event_time, truth)."""
    if not metas:
        empty = pd.DataFrame(columns=["spec", "moderator", "estimator", "outcome", "group", "n_units", "n_treated",
                                      "status", "headline_term", "estimate", "se", "ci_low", "ci_high", "p"])
        return empty, pd.DataFrame(columns=["spec", "group_a", "group_b", "estimate", "se", "ci_low", "ci_high",
                                            "p", "boot_p"]), pd.DataFrame(columns=["event_time", "truth", "spec", "group"])
    head = tables[(tables["kind"] == "overall") & tables["headline"].fillna(False).astype(bool)] if len(tables) else tables
    groups_meta = []
    for name, m in metas.items():
        for g in m["groups"]:
            groups_meta.append({"spec": name, "moderator": m["moderator"], "estimator": m["spec"]["estimator"],
                                "outcome": m["spec"]["outcome"], "group": g["group"], "n_units": g["n_units"],
                                "n_treated": g["n_treated"], "status": g["status"]})
    gm = pd.DataFrame(groups_meta)
    keep = ["spec", "group", "term", "estimate", "se", "ci_low", "ci_high", "p"]
    summ = gm.merge(head[keep] if len(head) else pd.DataFrame(columns=keep), on=["spec", "group"], how="left")
    paths = []
    dh = diffs[diffs["headline"].fillna(False).astype(bool)].copy() if len(diffs) else pd.DataFrame(
        columns=["spec", "group_a", "group_b", "estimate", "se", "ci_low", "ci_high", "p", "boot_p"])
    if cells is not None:
        truth = {}
        for r in summ.itertuples(index=False):
            if r.status != "ok":
                continue
            m = metas[r.spec]
            hl = next(g["headline"] for g in m["groups"] if g["group"] == r.group)
            overall, path = matched_group_truth(cells, r.outcome, used[r.spec], r.group, hl)
            truth[(r.spec, r.group)] = overall
            if len(path):
                paths.append(path.reset_index()[["event_time", "truth"]].assign(spec=r.spec, group=r.group))
        summ["truth"] = [truth.get((s, g)) for s, g in zip(summ["spec"], summ["group"], strict=True)]
        summ["truth"] = summ["truth"].astype("float64")
        summ["covered"] = (summ["ci_low"] <= summ["truth"]) & (summ["truth"] <= summ["ci_high"])
        dh["truth"] = [None if truth.get((s, a)) is None or truth.get((s, b)) is None else truth[(s, a)] - truth[(s, b)]
                       for s, a, b in zip(dh["spec"], dh["group_a"], dh["group_b"], strict=True)]
        dh["truth"] = dh["truth"].astype("float64")
        dh["covered"] = (dh["ci_low"] <= dh["truth"]) & (dh["truth"] <= dh["ci_high"])
    summ = summ.rename(columns={"term": "headline_term"})
    paths_df = pd.concat(paths, ignore_index=True) if paths else pd.DataFrame(columns=["event_time", "truth", "spec", "group"])
    return summ, dh, paths_df


def run_summary(cfg: dict[str, Any], io: StageIO, args: Any = None) -> pd.DataFrame:
    """The ``heterogeneity_summary`` job."""
    from ifm_eval.heterogeneity.figures import subgroup_figure
    from ifm_eval.outputs import style
    from ifm_eval.outputs.tablefmt import write_csv

    synthetic = style.is_synthetic(cfg)
    # the per-spec lists (and the per-moderator figures) are empty without heterogeneity specs
    figs_out = ("figures", "pdfs") if "figures" in io.outputs else ()
    io.require(inputs=("panel",) + (("truth_counts",) if synthetic else ()),
               optional_inputs=("tables", "differences", "meta", "used"),
               outputs=("summary", "differences_summary") + figs_out)
    tables = _read_csvs(io.input_list("tables"))
    diffs = _read_csvs(io.input_list("differences"))
    metas = {_model_of(p, ".json"): json.loads(Path(p).read_text(encoding="utf-8")) for p in io.input_list("meta")}
    used = {_model_of(p, "_used.parquet"): pd.read_parquet(p) for p in io.input_list("used")}
    cells = None
    if synthetic:
        from ifm_eval.validation import load_cell_effects

        cells = load_cell_effects(pd.read_parquet(io.input("panel")), io.input("truth_counts"))
    summ, dh, paths = summary_table(cfg, tables, diffs, metas, used, cells)
    write_csv(summ, io.output("summary"), synthetic=synthetic)
    write_csv(dh, io.output("differences_summary"), synthetic=synthetic)
    lang = style.language(cfg)
    figs = {Path(p).stem: p for p in io.outputs.get("figures", ())}
    for moderator, png in figs.items():
        specs = [n for n, m in metas.items() if m["moderator"] == moderator]
        fig = subgroup_figure(tables[tables["spec"].isin(specs)] if len(tables) else tables,
                              paths[paths["spec"].isin(specs)], moderator, lang)
        style.finish_figure(fig, Path(png).with_suffix(""), synthetic=synthetic, lang=lang,
                            note=("Punkte: Schätzung je Untergruppe mit 95-%-KI; Linie: geplanter Effekt"
                                  if lang == "de" else "points: estimate per subgroup with 95% CI; line: planted effect")
                            if synthetic else None)
    return summ
