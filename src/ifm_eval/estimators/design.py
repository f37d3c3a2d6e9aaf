"""The estimation design: what one model estimates on which observations.

A :class:`Design` (frozen) names the outcome, the unit, time and cohort columns, the
covariates, weights and cluster, the anticipation, the event window, the control group and
the sample filter. It is built once from a model spec (:meth:`Design.from_spec`) or from an
estimator's keyword arguments (:func:`split_design`), and :func:`prepare_panel` turns data
plus design into the :class:`Panel` every estimator of this package works on:

* cohort coding: 0, missing or infinite = never treated; cohorts starting after the last
  period (+ anticipation) are never treated too (reported);
* ``_d`` = 1 from ``cohort - anticipation`` on; ``_e`` = ``time - cohort`` (NaN for the
  never treated);
* rows with a missing outcome, covariate, weight or cluster are dropped (counted);
* a covariate constant within every unit would be absorbed by the unit effects; with
  ``covariate_trends`` it enters instead as covariate x period interactions (the first
  period omitted), the usual way to condition parallel trends on baseline characteristics
  in a regression (:meth:`Panel.regressors` builds them as a sparse matrix).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Internal column names of the prepared frame.
Y, UNIT, TIME, COHORT, CL, W, D, REL = "_y", "_unit", "_time", "_g", "_cl", "_w", "_d", "_e"
#: Unit and period codes (0..n-1, sorted levels of the whole prepared frame).
UC, TC = "_uc", "_tc"

#: Default minimum number of untreated (comparison) units a period needs before treated
#: observations in it are used (see :func:`period_support`).
MIN_UNTREATED_PER_PERIOD = 30

#: treatment_rule -> cohort column of the panel.
COHORT_COLUMNS = {"half_posts": "g_half_posts", "first_post": "g_first_post", "all_posts": "g_all_posts"}


@dataclass(frozen=True)
class Design:
    """What a model estimates (see module docstring). ``window`` is the event window
    ``(min, max)`` (None = every observed event time); ``sample`` the pandas query the
    runner applied before estimation (recorded, not re-applied)."""

    outcome: str
    unit: str = "ags"
    time: str = "t"
    cohort: str = "g"
    covariates: tuple[str, ...] = ()
    weights: str | None = None
    cluster: str | None = None
    anticipation: int = 0
    window: tuple[int, int] | None = None
    control_group: str = "not_yet_treated"
    sample: str | None = None
    covariate_trends: bool = True

    def __post_init__(self) -> None:
        object.__setattr__(self, "covariates", tuple(self.covariates or ()))
        if self.window is not None:
            object.__setattr__(self, "window", (int(self.window[0]), int(self.window[1])))
        if int(self.anticipation) != self.anticipation or self.anticipation < 0:
            raise ValueError("anticipation must be a non-negative integer")
        object.__setattr__(self, "anticipation", int(self.anticipation))

    @property
    def reference(self) -> int:
        """The reference event time ``-1 - anticipation``."""
        return -1 - self.anticipation

    @classmethod
    def from_spec(cls, spec: dict[str, Any], unit: str = "ags", time: str = "t") -> Design:
        """The design of a normalised model spec (:mod:`ifm_eval.estimators.specs`)."""
        return cls(outcome=spec["outcome"], unit=unit, time=time,
                   cohort=COHORT_COLUMNS[spec["treatment_rule"]],
                   covariates=tuple(spec.get("covariates") or ()), weights=spec.get("weights"),
                   cluster=spec.get("cluster"), anticipation=int(spec.get("anticipation") or 0),
                   window=tuple(spec["event_window"]) if spec.get("event_window") else None,
                   control_group=spec.get("control_group", "not_yet_treated"),
                   sample=spec.get("sample"))

    def with_(self, **changes: Any) -> Design:
        return replace(self, **changes)


_DESIGN_KEYS = {f.name for f in fields(Design)} | {"event_window"}


def split_design(kwargs: dict[str, Any]) -> tuple[Design, dict[str, Any]]:
    """Split an estimator's keyword arguments into its :class:`Design` and the remaining
    estimator options (``event_window`` is accepted for ``window``)."""
    d = {k: v for k, v in kwargs.items() if k in _DESIGN_KEYS}
    rest = {k: v for k, v in kwargs.items() if k not in _DESIGN_KEYS}
    if "event_window" in d:
        d["window"] = d.pop("event_window")
    if d.get("covariates") is None:
        d["covariates"] = ()
    return Design(**d), rest


def design_args(data: pd.DataFrame | None, args: tuple, kwargs: dict[str, Any],
                positional: Sequence[str] = ("outcome", "unit", "time", "cohort")) -> tuple[Design, dict[str, Any]]:
    """Design and options of a public estimator call ``fn(data, outcome, unit, time, cohort,
    **kw)`` or ``fn(data, design, **options)``."""
    if args and isinstance(args[0], Design):
        if len(args) > 1:
            raise TypeError("after a Design only keyword options are accepted")
        return args[0], dict(kwargs)
    if len(args) > len(positional):
        raise TypeError(f"at most {len(positional)} positional arguments after data")
    kw = {**dict(zip(positional, args, strict=False)), **kwargs}
    return split_design(kw)


@dataclass
class Panel:
    """A prepared estimation frame (internal column names) plus what was dropped on the way.

    ``covariates`` are the internal regressor names (``_x0``, ``_x1_t14`` for a covariate x
    period interaction, ...), ``covariate_names`` their readable names; the interactions
    are not columns of ``df`` but built by :meth:`regressors`.
    """

    df: pd.DataFrame
    design: Design
    covariates: list[str]
    covariate_names: list[str]
    weighted: bool
    warnings: list[str] = field(default_factory=list)
    trend_covariates: list[str] = field(default_factory=list)  # readable names
    trend_columns: list[str] = field(default_factory=list)  # their raw columns in df
    periods: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def anticipation(self) -> int:
        return self.design.anticipation

    @property
    def n_units(self) -> int:
        return int(self.df[UNIT].nunique())

    @property
    def n_clusters(self) -> int:
        return int(self.df[CL].nunique())

    @property
    def n_unit_codes(self) -> int:
        return int(self.df[UC].max()) + 1 if len(self.df) else 0

    def fe(self, rows: np.ndarray | None = None, weights: np.ndarray | None = None):
        """The two-way fixed-effects projector (:class:`~ifm_eval.estimators.fe.TwoWayFE`)
        of the rows ``rows`` (bool mask or index; default all), in the unit and period code
        spaces of the whole frame."""
        from ifm_eval.estimators.fe import TwoWayFE

        d = self.df if rows is None else self.df.iloc[np.flatnonzero(rows) if np.asarray(rows).dtype == bool else rows]
        w = d[W].to_numpy(float) if weights is None else weights
        return TwoWayFE(d[UC].to_numpy(), d[TC].to_numpy(), w, self.n_unit_codes, len(self.periods))

    def regressors(self, df: pd.DataFrame | None = None,
                   names: Sequence[str] | None = None) -> tuple[sp.csr_matrix, list[str]]:
        """The covariate regressors of the rows of ``df`` as a sparse matrix (columns
        ``names``, default :attr:`covariates`): raw covariates, and for trend covariates one
        column per period (except the first) holding the covariate in that period."""
        df = self.df if df is None else df
        names = list(self.covariates if names is None else names)
        n = len(df)
        if not names:
            return sp.csr_matrix((n, 0)), []
        tc = df[TC].to_numpy()
        rows, cols, vals = [], [], []
        col_of = {nm: j for j, nm in enumerate(names)}
        trend_pos = {c: i for i, c in enumerate(self.trend_columns)}
        for raw in dict.fromkeys(nm.split("_t")[0] if nm.split("_t")[0] in trend_pos else nm for nm in names):
            x = df[raw].to_numpy(dtype=float)
            if raw in trend_pos:
                lut = np.array([col_of.get(f"{raw}_t{int(t)}", -1) for t in self.periods])
                j = lut[tc] if len(lut) else np.full(n, -1)
                ok = j >= 0
                rows.append(np.flatnonzero(ok))
                cols.append(j[ok])
                vals.append(x[ok])
            else:
                rows.append(np.arange(n))
                cols.append(np.full(n, col_of[raw]))
                vals.append(x)
        r, c, v = np.concatenate(rows), np.concatenate(cols), np.concatenate(vals)
        nz = v != 0
        return sp.csr_matrix((v[nz], (r[nz], c[nz])), shape=(n, len(names))), names

    def label(self, name: str) -> str:
        return dict(zip(self.covariates, self.covariate_names, strict=True)).get(name, name)


def prepare_panel(data: pd.DataFrame, design: Design) -> Panel:
    """Copy the needed columns into internal names and code the treatment (module doc)."""
    covariates = list(design.covariates)
    need = [design.outcome, design.unit, design.time, design.cohort, *covariates]
    for extra in (design.weights, design.cluster):
        if extra:
            need.append(extra)
    missing = [c for c in dict.fromkeys(need) if c not in data.columns]
    if missing:
        raise KeyError(f"column(s) not in the data: {missing}")
    anticipation = design.anticipation
    df = pd.DataFrame(
        {
            Y: pd.to_numeric(data[design.outcome], errors="coerce").astype(float),
            UNIT: data[design.unit].to_numpy(),
            TIME: pd.to_numeric(data[design.time]).to_numpy(),
            COHORT: pd.to_numeric(data[design.cohort], errors="coerce").to_numpy(dtype=float),
        },
        index=data.index,
    )
    raw = [f"_x{i}" for i in range(len(covariates))]
    for name, col in zip(raw, covariates, strict=True):
        df[name] = pd.to_numeric(data[col], errors="coerce").astype(float)
    df[W] = pd.to_numeric(data[design.weights], errors="coerce").astype(float) if design.weights else 1.0
    df[CL] = data[design.cluster].to_numpy() if design.cluster else df[UNIT].to_numpy()
    warnings: list[str] = []
    g = df[COHORT].to_numpy()
    late = np.isfinite(g) & (g > df[TIME].max() + anticipation)
    if late.any():
        warnings.append(
            f"{int(late.sum())} row(s) of cohorts starting after the last period "
            "treated as never treated"
        )
    df[COHORT] = np.where(~np.isfinite(g) | (g <= 0) | late, 0, g).astype(np.int64)
    bad = df[[Y, *raw, W]].isna().any(axis=1) | df[CL].isna()
    if design.weights:
        bad |= df[W] <= 0
    if bad.any():
        warnings.append(
            f"dropped {int(bad.sum())} row(s) with a missing outcome, covariate, weight or cluster"
        )
        df = df.loc[~bad]
    if df.duplicated([UNIT, TIME]).any():
        raise ValueError("the panel has duplicated (unit, time) rows")
    if (df.groupby(UNIT)[COHORT].nunique() > 1).any():
        raise ValueError("cohort varies within unit")
    treated_cohort = df[COHORT] > 0
    df[D] = (treated_cohort & (df[TIME] >= df[COHORT] - anticipation)).astype(float)
    df[REL] = np.where(treated_cohort, df[TIME] - df[COHORT], np.nan)
    df = df.reset_index(drop=True)
    periods = np.sort(df[TIME].unique())
    df[UC] = pd.factorize(df[UNIT], sort=True)[0].astype(np.int64)
    df[TC] = np.searchsorted(periods, df[TIME].to_numpy()).astype(np.int64)
    regs, labels, trend, trend_cols = [], [], [], []
    for name, label in zip(raw, covariates, strict=True):
        if design.covariate_trends and (df.groupby(UNIT)[name].nunique() <= 1).all():
            trend.append(label)
            trend_cols.append(name)
            for t in periods[1:]:
                regs.append(f"{name}_t{int(t)}")
                labels.append(f"{label}:t{int(t)}")
        else:
            regs.append(name)
            labels.append(label)
    return Panel(df, design, regs, labels, bool(design.weights), warnings, trend, trend_cols, periods)


def period_support(panel: Panel, untreated: np.ndarray,
                   min_untreated: int = MIN_UNTREATED_PER_PERIOD) -> tuple[np.ndarray, pd.DataFrame]:
    """Which periods have enough untreated data to identify their period effects.

    A period is supported when it has at least ``max(min_untreated, 1)`` untreated units
    AND the period-specific parameters (the period effect and, with covariate trends, the
    covariate x period slopes) are identified from them: ``[1, x_trend]`` over the
    period's untreated rows has full column rank. Returns (bool mask over rows: row's period
    is supported, per-period table with ``time``, ``n_untreated``, ``supported``).

    Why a minimum above 1 (default :data:`MIN_UNTREATED_PER_PERIOD`): with ``n`` untreated
    units and ``p`` period-specific parameters the period's untreated rows are fitted with
    only ``n - p`` residual degrees of freedom, so (i) every treated observation of the
    period inherits the same imputation error of variance ~sigma^2/n (plus the
    extrapolation of the covariate slopes), which does not average out over treated units,
    and (ii) residual-based variances (BJS Theorem 3, Gardner's GMM correction, cluster-
    robust OLS) see residuals shrunk towards zero, i.e. understate exactly that error
    (zero residuals when ``n = p``). On the stand-in data the last periods with 6 untreated
    (small, similar) municipalities gave log-population x period slopes of -14 and
    imputed effects of ~50 pp for large cities.
    """
    df = panel.df
    tt = df[TIME].to_numpy()
    periods, tcode = np.unique(tt, return_inverse=True)
    n0 = np.bincount(tcode[untreated], minlength=len(periods))
    ok = n0 >= max(int(min_untreated), 1)
    if panel.trend_columns:
        X = df[panel.trend_columns].to_numpy(float)
        p = 1 + X.shape[1]
        for j in np.flatnonzero(ok):
            rows = untreated & (tcode == j)
            Z = np.column_stack([np.ones(int(rows.sum())), X[rows]])
            if np.linalg.matrix_rank(Z) < p:
                ok[j] = False
    table = pd.DataFrame({"time": periods, "n_untreated": n0, "supported": ok})
    return ok[tcode], table


def unsupported_cells(df: pd.DataFrame, rows: np.ndarray, reason: str = "thin_period") -> list[dict]:
    """(cohort, period) cells of ``rows`` with their observation counts, for reporting."""
    if not rows.any():
        return []
    cnt = df.loc[rows].groupby([COHORT, TIME]).size()
    return [
        {"cohort": int(g), "time": int(t), "n_obs": int(n), "reason": reason}
        for (g, t), n in cnt.items()
    ]


def used_frame(panel: Panel, rows: np.ndarray, event_time: np.ndarray | None = None,
               headline: np.ndarray | None = None) -> pd.DataFrame:
    """The treated observations an estimate averaged over (rows of ``panel.df``): unit, time,
    cohort, the event-time row they count towards (``event_time``, default their own), their
    weight, and whether they enter the headline aggregate."""
    d = panel.df
    idx = np.flatnonzero(rows)
    e = d[REL].to_numpy()[idx] if event_time is None else np.asarray(event_time)[idx]
    return pd.DataFrame({
        "unit": d[UNIT].to_numpy()[idx], "time": d[TIME].to_numpy()[idx].astype(np.int64),
        "cohort": d[COHORT].to_numpy()[idx].astype(np.int64), "event_time": e,
        "weight": d[W].to_numpy(dtype=float)[idx],
        "headline": np.ones(len(idx), bool) if headline is None else np.asarray(headline)[idx],
    })
