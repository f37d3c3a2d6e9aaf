"""Run one model specification on the panel: dispatch, tidy output, metadata JSON.

``run_model(cfg, name, panel)`` applies the spec's sample filter and treatment rule to the
panel (a frame, or the Parquet file the ``estimate`` rule declares), calls the estimator and
converts its rows into the tidy schema of :mod:`.results`; :func:`run` is the ``estimate``
job and writes the declared tidy table and metadata.
"""

from __future__ import annotations

import logging
import time as _time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.estimators import registry
from ifm_eval.estimators.design import Design
from ifm_eval.estimators.results import (
    EstimateResult,
    empty_tidy,
    file_sha256,
    package_versions,
    tidy_frame,
    write_estimates,
)
from ifm_eval.estimators.specs import cohort_column, get_spec
from ifm_eval.stage_io import StageIO

log = logging.getLogger(__name__)

UNIT, TIME = "ags", "t"
ALPHA = registry.ALPHA

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


def estimate(data: pd.DataFrame, spec: dict[str, Any], cohort: str, unit: str = UNIT,
             time: str = TIME) -> EstimateResult:
    """Estimate one (normalised) spec on prepared ``data`` (registry dispatch)."""
    design = Design.from_spec(spec, unit=unit, time=time).with_(cohort=cohort)
    return registry.fit(data, design, spec)


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
    panel: pd.DataFrame | str | Path,
    out: tuple[str | Path, ...] | None = None,
    strict: bool = False,
    result: list | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Estimate model ``name`` of ``cfg`` on ``panel``; return (tidy table, metadata) and,
    with ``out = (tidy path, metadata path[, used path])``, write them (the used treated
    observations, municipality-level, go to the third path under ``data/``). ``result``:
    a list the :class:`EstimateResult` is appended to (in-process callers).

    If the estimator raises ``ValueError`` (the data cannot support the spec), a zero-row
    tidy table and metadata with ``status: not_estimable`` and the ``error`` are returned
    (logged as an error) unless ``strict``. Metadata ``status`` is ``ok`` otherwise.
    """
    spec = get_spec(cfg, name)
    started = datetime.now(UTC)
    t0 = _time.perf_counter()
    source: dict[str, Any]
    if isinstance(panel, (str, Path)):
        panel_path = Path(panel)
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
        # the event-time covariance of the spec's inference (pre-trend tests, HonestDiD)
        "vcov_event_time": None if res.vcov is None else {
            "event_times": [int(e) for e in res.vcov.index],
            "matrix": _jsonable(res.vcov.to_numpy(float).tolist())},
    }
    if result is not None:
        result.append(res)
    if out is not None:
        pq, js = out[:2]
        write_estimates(tidy, meta, pq, js)
        if len(out) > 2:
            used_table(res).to_parquet(out[2], index=False)
        if len(out) > 3:
            boot_table(res).to_parquet(out[3], index=False)
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


USED_COLUMNS = ("unit", "time", "cohort", "event_time", "weight", "headline")


def used_table(res: EstimateResult) -> pd.DataFrame:
    """The result's used treated observations in a fixed schema (empty if none)."""
    u = res.used
    if u is None or not len(u):
        return pd.DataFrame({"unit": pd.Series(dtype="str"), "time": pd.Series(dtype="int64"),
                             "cohort": pd.Series(dtype="int64"), "event_time": pd.Series(dtype="float64"),
                             "weight": pd.Series(dtype="float64"), "headline": pd.Series(dtype="bool")})
    out = u[list(USED_COLUMNS)].copy()
    out["unit"] = out["unit"].astype("str")
    out["event_time"] = out["event_time"].astype("float64")
    return out.sort_values(["unit", "time", "event_time"], kind="stable", ignore_index=True)


def boot_table(res: EstimateResult) -> pd.DataFrame:
    """The headline's bootstrap t-statistics under the null (columns ``term``, ``draw``,
    ``t_boot``; the observed t is in the metadata's ``info.bootstrap``); empty without a
    bootstrap."""
    term = (res.info.get("headline") or {}).get("term")
    draws = res.boot_draws or {}
    if term is None or term not in draws:
        return pd.DataFrame({"term": pd.Series(dtype="str"), "draw": pd.Series(dtype="int64"),
                             "t_boot": pd.Series(dtype="float64")})
    tb = np.asarray(draws[term], dtype=float)
    return pd.DataFrame({"term": term, "draw": np.arange(len(tb), dtype=np.int64), "t_boot": tb})


def run(cfg: dict[str, Any], name: str, io: StageIO, strict: bool = False) -> None:
    """The ``estimate`` job of model ``name``: input ``panel``; outputs ``tidy``, ``meta``,
    ``used`` (the treated observations behind the estimates, under ``data/``) and ``boot``
    (the headline's bootstrap t-statistics, :func:`boot_table`)."""
    io.require(inputs=("panel",), outputs=("tidy", "meta", "used", "boot"))
    run_model(cfg, name, io.input("panel"),
              out=(io.output("tidy"), io.output("meta"), io.output("used"), io.output("boot")), strict=strict)
