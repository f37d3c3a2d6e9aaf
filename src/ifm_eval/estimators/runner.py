"""Run one model specification on the panel: dispatch, tidy output, metadata JSON.

``run_model(cfg, name)`` reads ``data/processed/panel/panel.parquet`` (or a frame passed
in), applies the spec's sample filter and treatment rule, calls the estimator, converts
its rows into the tidy schema of :mod:`.results` and writes ``paths.estimate_paths``.
"""

from __future__ import annotations

import logging
import time as _time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval import paths
from ifm_eval.estimators.results import (
    EstimateResult,
    empty_tidy,
    file_sha256,
    package_versions,
    tidy_frame,
    write_estimates,
)
from ifm_eval.estimators.specs import cohort_column, get_spec

log = logging.getLogger(__name__)

UNIT, TIME = "ags", "t"
ALPHA = 0.05

#: Weight columns the runner derives from the panel when the spec names them.
#: ``refugees_2017``: the municipality's refugee stock on 2017-09-15 (time-invariant; the
#: panel's ``refugees_per_1000_2017 * population / 1000``). A time-invariant weight is
#: needed because Callaway-Sant'Anna takes each unit's weight from its first period; with
#: it every estimator targets the same refugee-weighted ATT (municipalities weighted by
#: their 2017 refugee stock).
DERIVED_WEIGHTS = {
    "refugees_2017": lambda d: (d["refugees_per_1000_2017"] * d["population"] / 1000.0).round(),
}


def _never_treated_check(data: pd.DataFrame, spec: dict[str, Any], gcol: str) -> None:
    """``control_group: never_treated`` needs never-treated units with an observed
    outcome; say why not instead of failing inside the estimator (or, for Sun-Abraham,
    silently falling back to the last-treated cohort)."""
    if spec["control_group"] != "never_treated":
        return
    never = data[gcol] == 0
    n_never = int(data.loc[never, UNIT].nunique()) if UNIT in data else int(never.sum())
    with_y = data.loc[never & data[spec["outcome"]].notna()]
    n_obs = int(with_y[UNIT].nunique()) if UNIT in with_y else len(with_y)
    if n_obs == 0:
        raise ValueError(
            f"control_group never_treated: the panel has {n_never} never-treated "
            f"municipalit{'y' if n_never == 1 else 'ies'} but none with an observed "
            f"{spec['outcome']} (on the stand-in data the never-treated have no refugees, "
            "so the rate is undefined); a never-treated comparison is not estimable on "
            "these data -- use not_yet_treated (Callaway-Sant'Anna) or last_treated "
            "(Sun-Abraham)"
        )


def prepare_data(
    panel: pd.DataFrame, spec: dict[str, Any], unit: str = UNIT, time: str = TIME
) -> tuple[pd.DataFrame, str, list[str]]:
    """Apply the sample filter; pick the cohort column; fill missing cluster ids.

    Returns (data, cohort column, warnings).
    """
    warns: list[str] = []
    data = panel
    if spec["sample"]:
        n0 = len(data)
        data = data.query(spec["sample"], engine="python")
        warns.append(f"sample {spec['sample']!r}: kept {len(data)} of {n0} rows")
        if data.empty:
            raise ValueError(f"sample {spec['sample']!r} leaves no rows")
    gcol = cohort_column(spec)
    if gcol not in data and spec["treatment_rule"] == "half_posts" and "g" in data:
        gcol = "g"
    need = [unit, time, gcol, spec["outcome"], *spec["covariates"], spec["cluster"]]
    if spec["weights"]:
        need.append(spec["weights"])
    wname = spec["weights"]
    if wname in DERIVED_WEIGHTS and wname not in data.columns:
        try:
            data = data.assign(**{wname: DERIVED_WEIGHTS[wname](data)})
        except KeyError as exc:
            raise KeyError(f"panel lacks column {exc} needed to derive weight {wname!r}") from exc
    missing = [c for c in dict.fromkeys(need) if c not in data.columns]
    if missing:
        raise KeyError(f"panel lacks column(s) {missing} needed by the spec")
    data = data.copy()
    cl = spec["cluster"]
    if cl != unit and data[cl].isna().any():
        n = int(data[cl].isna().sum())
        data[cl] = data[cl].astype("string").fillna("unit_" + data[unit].astype("string"))
        warns.append(f"{n} row(s) without {cl}: each such unit is its own cluster")
    data[gcol] = pd.to_numeric(data[gcol], errors="coerce").fillna(0).astype("int64")
    return data, gcol, warns


def _cs_rows(res, spec: dict[str, Any]) -> pd.DataFrame:
    lo, hi = spec["event_window"]
    a = res.att_gt
    rows = [
        pd.DataFrame(
            {
                "kind": "att_gt",
                "term": [
                    f"g{int(g)}_t{int(t)}" for g, t in zip(a["cohort"], a["time"], strict=False)
                ],
                "cohort": a["cohort"],
                "time": a["time"],
                "event_time": a["event_time"],
                "estimate": a["att"],
                "se": a["se"],
                "ci_low": a["ci_low"],
                "ci_high": a["ci_high"],
                "cband_low": a.get("cband_low"),
                "cband_high": a.get("cband_high"),
            }
        )
    ]
    label = {"dynamic": "event_time", "group": "cohort", "calendar": "time"}
    kind_of = {"dynamic": "event_time", "group": "group", "calendar": "calendar"}
    for agg_kind in ("simple", "dynamic", "group", "calendar"):
        try:
            if agg_kind == "dynamic":
                agg = res.aggregate("dynamic", min_e=lo, max_e=hi, balance_e=spec["balance_e"])
            else:
                agg = res.aggregate(agg_kind)
        except ValueError as exc:  # e.g. no event time in the window: report, keep the rest
            if agg_kind == "simple":
                raise
            res.warnings.append(f"aggregate {agg_kind} failed: {exc}")
            continue
        res.warnings.extend(f"aggregate {agg_kind}: {w}" for w in agg.warnings)
        rows.append(
            pd.DataFrame(
                {
                    "kind": ["overall"],
                    "term": ["att" if agg_kind == "simple" else agg_kind],
                    "estimate": [agg.overall],
                    "se": [agg.overall_se],
                }
            )
        )
        if agg_kind != "simple" and agg.table is not None:
            t = agg.table
            key = label[agg_kind]
            prefix = {"event_time": "e", "cohort": "g", "time": "t"}[key]
            frame = pd.DataFrame(
                {
                    "kind": kind_of[agg_kind],
                    "term": [
                        f"{prefix}{int(v):+d}" if key == "event_time" else f"{prefix}{int(v)}"
                        for v in t[key]
                    ],
                    "estimate": t["estimate"],
                    "se": t["se"],
                    "ci_low": t["ci_low"],
                    "ci_high": t["ci_high"],
                    "cband_low": t.get("cband_low"),
                    "cband_high": t.get("cband_high"),
                }
            )
            frame["event_time" if key == "event_time" else key] = t[key].to_numpy()
            rows.append(frame)
    return pd.concat(rows, ignore_index=True)


def estimate(
    data: pd.DataFrame, spec: dict[str, Any], cohort: str, unit: str = UNIT, time: str = TIME
) -> EstimateResult:
    """Dispatch one (normalised) spec to its estimator."""
    est = spec["estimator"]
    common = dict(
        data=data,
        outcome=spec["outcome"],
        unit=unit,
        time=time,
        cohort=cohort,
        covariates=spec["covariates"] or None,
        anticipation=spec["anticipation"],
        weights=spec["weights"],
        cluster=spec["cluster"],
        alpha=ALPHA,
    )
    window = tuple(spec["event_window"])
    if est == "twfe_static":
        from ifm_eval.estimators.twfe import twfe_static

        return twfe_static(**common)
    if est == "twfe_dynamic":
        from ifm_eval.estimators.twfe import twfe_dynamic

        return twfe_dynamic(**common, event_window=window)
    if est == "sun_abraham":
        from ifm_eval.estimators.sun_abraham import sun_abraham

        cg = {"not_yet_treated": "last_treated"}.get(spec["control_group"], spec["control_group"])
        # an explicit never_treated spec must not silently become a last-treated one
        return sun_abraham(
            **common,
            event_window=window,
            control_group=cg,
            fallback_last_treated=cg != "never_treated",
        )
    if est == "imputation":
        from ifm_eval.estimators.imputation import imputation

        return imputation(**common, event_window=window)
    if est == "gardner":
        from ifm_eval.estimators.gardner import gardner

        return gardner(**common, event_window=window)
    if est == "callaway_santanna":
        from ifm_eval.estimators import callaway_santanna

        inf = spec["inference"]
        boot = inf["type"] == "bootstrap"
        res = callaway_santanna(
            **common,
            control_group=spec["control_group"],
            method=spec["method"],
            base_period=spec["base_period"],
            n_boot=inf["draws"] if boot else 0,
            seed=inf["seed"],
        )
        table = _cs_rows(res, spec)
        warns = list(res.warnings)
        dropped = getattr(res, "dropped_cells", None)
        info: dict[str, Any] = {}
        if dropped is not None and len(dropped):
            warns.append(f"{len(dropped)} ATT(g,t) cell(s) dropped (no overlap / no data)")
            info["dropped_cells"] = (
                dropped.astype(object).where(dropped.notna(), None).to_dict(orient="records")
            )
        return EstimateResult(
            "callaway_santanna", table, int(res.n_units), None, res.n_clusters, warns, info
        )
    raise ValueError(f"unknown estimator {est!r}")


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and not np.isfinite(obj):
        return None
    if isinstance(obj, (pd.Timestamp,)):
        return obj.isoformat()
    return obj


def run_model(
    cfg: dict[str, Any],
    name: str,
    panel: pd.DataFrame | None = None,
    write: bool = True,
    strict: bool = False,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Estimate model ``name`` of ``cfg``; write and return (tidy table, metadata).

    If the estimator raises ``ValueError`` (the data cannot support the spec), a zero-row
    tidy table and metadata with ``status: not_estimable`` and the ``error`` are written
    (logged as an error) unless ``strict``. Metadata ``status`` is ``ok`` otherwise.
    """
    spec = get_spec(cfg, name)
    started = datetime.now(UTC)
    t0 = _time.perf_counter()
    panel_path = paths.processed_path(cfg, "panel")
    source: dict[str, Any]
    if panel is None:
        if not Path(panel_path).is_file():
            raise FileNotFoundError(f"panel not found: {panel_path} (run `ifm-eval panel`)")
        panel = pd.read_parquet(panel_path)
        source = {"path": str(panel_path), "sha256": file_sha256(panel_path)}
    else:
        source = {"path": None, "sha256": None, "note": "data frame passed in memory"}
    source["n_rows"] = int(len(panel))
    data, gcol, warns = prepare_data(panel, spec)
    status, error = "ok", None
    try:
        _never_treated_check(data, spec, gcol)
        res = estimate(data, spec, gcol)
    except ValueError as exc:
        # the data cannot support this spec (e.g. no never-treated unit with data, no
        # post-period cell in the window): record it instead of stopping the workflow
        if strict:
            raise
        status, error = "not_estimable", f"{type(exc).__name__}: {exc}"
        log.error("model %s not estimable: %s", name, error)
        res = EstimateResult(spec["estimator"], empty_tidy()[["kind"]])
    tidy = tidy_frame(
        res.table,
        spec=name,
        estimator=spec["estimator"],
        outcome=spec["outcome"],
        n_units=res.n_units,
        n_obs=res.n_obs,
        n_clusters=res.n_clusters,
        alpha=ALPHA,
    )
    runtime = _time.perf_counter() - t0
    all_warns = warns + list(res.warnings)
    meta = {
        "model": name,
        "data_source": (
            "synthetic stand-in data (SYNTHETISCHE DATEN)"
            if cfg["data"]["source"] == "synthetic"
            else "raw"
        ),
        "status": status,
        "error": error,
        "spec": spec,
        "estimator": spec["estimator"],
        "cohort_column": gcol,
        "input": source,
        "packages": package_versions(),
        "started_utc": started.isoformat(timespec="seconds"),
        "runtime_seconds": round(runtime, 3),
        "n_rows_out": int(len(tidy)),
        "n_units": res.n_units,
        "n_obs": res.n_obs,
        "n_clusters": res.n_clusters,
        "warnings": all_warns,
        "info": _jsonable(res.info),
        "alpha": ALPHA,
    }
    if write:
        pq, js = paths.estimate_paths(cfg, name)
        write_estimates(tidy, meta, pq, js)
        log.info(
            "model %s: %d rows -> %s (%.1f s, %d warning(s))",
            name,
            len(tidy),
            pq,
            runtime,
            len(all_warns),
        )
    for w in all_warns:
        log.warning("model %s: %s", name, w)
    return tidy, meta
