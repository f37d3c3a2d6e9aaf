"""The tidy result schema shared by every estimator, and its writer.

Every model specification produces one Parquet file with the columns of
:data:`TIDY_SCHEMA` (fixed order and dtypes, whatever the estimator) and one JSON file with
the run metadata (spec, SHA-256 of the input panel, package versions, runtime, warnings).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import platform
import tempfile
from dataclasses import dataclass, field
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

#: Column name -> pandas dtype of the tidy estimates file (order is part of the schema).
TIDY_SCHEMA: dict[str, str] = {
    "spec": "string",
    "estimator": "string",
    "outcome": "string",
    "kind": "string",
    "term": "string",
    "cohort": "Int64",
    "time": "Int64",
    "event_time": "Int64",
    "estimate": "float64",
    "se": "float64",
    "ci_low": "float64",
    "ci_high": "float64",
    "cband_low": "float64",
    "cband_high": "float64",
    "p": "float64",
    # few-cluster bootstrap beside the analytic inference (NaN where not requested):
    # ifm_eval.inference (spec key inference.bootstrap)
    "boot_p": "float64",
    "boot_ci_low": "float64",
    "boot_ci_high": "float64",
    "n_units": "Int64",
    "n_obs": "Int64",
    "n_clusters": "Int64",
}
TIDY_COLUMNS: tuple[str, ...] = tuple(TIDY_SCHEMA)

#: Allowed values of the ``kind`` column.
KINDS: tuple[str, ...] = ("att_gt", "event_time", "group", "calendar", "overall", "coefficient")

#: Packages whose versions are recorded in the metadata JSON.
RECORDED_PACKAGES = ("ifm_eval", "numpy", "pandas", "scipy", "pyfixest", "pyarrow", "formulaic")


@dataclass
class BootstrapSource:
    """What the few-cluster bootstrap of a result needs (:mod:`ifm_eval.inference`), set by
    the estimator at no cost. ``kind`` ``"wcr"``: the regression ``fit`` (an
    :class:`~ifm_eval.estimators.fe.FEFit`) and one restriction vector per term
    (``restrictions``, m x k over ``fit.names``); ``"multiplier"``: the ``estimates`` and their
    cluster influence sums ``psi`` (G x m, analytic ``Var = psi' psi``). ``clusters``: the
    cluster label of each of the G clusters (the fit's cluster codes / ``psi`` rows), so that
    every spec draws the same weight for the same cluster."""

    kind: str
    terms: list[str]
    clusters: np.ndarray
    fit: Any = None
    restrictions: np.ndarray | None = None
    estimates: np.ndarray | None = None
    psi: np.ndarray | None = None


@dataclass
class JackknifeDraws:
    """The leave-one-cluster-out estimates behind a result's jackknife SEs: ``estimates``
    (G x m) for the rows ``terms``, row c without cluster ``clusters[c]``. Used to form the
    jackknife of contrasts between results on different samples (subgroup differences,
    :mod:`ifm_eval.heterogeneity`): a cluster absent from a sample leaves its estimate as is."""

    clusters: np.ndarray
    terms: list[str]
    estimates: np.ndarray


def align_psi(parts: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Stack cluster influence sums ``(labels_k, psi_k)`` (G_k x m_k) of different samples
    into one (G x sum m_k) matrix over the union of the labels (zeros where a cluster has no
    observation in a sample). Returns ``(labels, psi)``."""
    labels = pd.Index(pd.unique(np.concatenate([np.asarray(lab) for lab, _ in parts]))).sort_values()
    out = np.zeros((len(labels), sum(np.atleast_2d(p).shape[1] for _, p in parts)))
    col = 0
    for lab, p in parts:
        p = np.atleast_2d(p)
        out[labels.get_indexer(pd.Index(np.asarray(lab))), col:col + p.shape[1]] = p
        col += p.shape[1]
    return labels.to_numpy(), out


@dataclass
class EstimateResult:
    """What every estimator in this package returns.

    ``table`` holds the estimator's rows with (a subset of) the columns kind, term, cohort,
    time, event_time, estimate, se, ci_low, ci_high, cband_low, cband_high, p; missing
    columns are filled by :func:`tidy_frame`. ``vcov`` (optional) is the covariance matrix
    of the ``event_time`` rows (index = event times), where the estimator provides one.
    ``used`` lists the treated observations behind the estimates and ``info["headline"]``
    how the headline aggregate averages them (``aggregation``: ``event_time_mean`` = the
    mean over ``event_times`` of the per-event-time weighted means, ``observations`` = the
    weighted mean over the rows flagged ``headline``): what the matched planted truth
    (:mod:`ifm_eval.validation`) averages.
    """

    estimator: str
    table: pd.DataFrame
    n_units: int | None = None
    n_obs: int | None = None
    n_clusters: int | None = None
    warnings: list[str] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)
    vcov: pd.DataFrame | None = None
    #: the treated observations the estimate averaged over (unit, time, cohort, event_time
    #: row they count towards, weight, headline flag): see :func:`.design.used_frame`
    used: pd.DataFrame | None = None
    #: what a bootstrap needs (see :class:`BootstrapSource`); None where not available
    boot_source: BootstrapSource | None = None
    #: bootstrap t-statistics under the null by term (B each), when a bootstrap ran
    boot_draws: dict[str, np.ndarray] | None = None
    #: leave-one-cluster-out estimates, where the jackknife ran (:class:`JackknifeDraws`)
    jackknife: JackknifeDraws | None = None

    def rows(self, kind: str) -> pd.DataFrame:
        """Rows of one kind, indexed by their natural key where there is one."""
        sub = self.table[self.table["kind"] == kind]
        key = {"event_time": "event_time", "group": "cohort", "calendar": "time"}.get(kind)
        if key is not None and key in sub:
            sub = sub.set_index(key, drop=False)
        return sub


def normal_inference(estimate: Any, se: Any, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Two-sided normal p-values and (1 - alpha) pointwise confidence bounds."""
    est = np.asarray(estimate, dtype=float)
    s = np.asarray(se, dtype=float)
    z = stats.norm.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.norm.sf(np.abs(est / s))
    p = np.where(np.isfinite(s) & (s > 0), p, np.nan)
    return {"ci_low": est - z * s, "ci_high": est + z * s, "p": p}


def t_inference(estimate: Any, se: Any, df: Any, alpha: float = 0.05) -> dict[str, np.ndarray]:
    """Two-sided p-values and (1 - alpha) confidence bounds from a t distribution with
    ``df`` degrees of freedom (the cluster jackknife's G - 1)."""
    est = np.asarray(estimate, dtype=float)
    s = np.asarray(se, dtype=float)
    dfa = np.broadcast_to(np.asarray(df, dtype=float), est.shape)
    crit = stats.t.ppf(1 - alpha / 2, dfa)
    with np.errstate(divide="ignore", invalid="ignore"):
        p = 2 * stats.t.sf(np.abs(est / s), dfa)
    p = np.where(np.isfinite(s) & (s > 0), p, np.nan)
    return {"ci_low": est - crit * s, "ci_high": est + crit * s, "p": p}


def tidy_frame(
    table: pd.DataFrame,
    *,
    spec: str,
    estimator: str,
    outcome: str,
    n_units: int | None = None,
    n_obs: int | None = None,
    n_clusters: int | None = None,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Bring an estimator's rows into :data:`TIDY_SCHEMA` (columns, order, dtypes).

    Missing ``ci_low``/``ci_high``/``p`` are computed from estimate and se (normal
    approximation); missing band bounds stay missing. Unknown columns are dropped.
    """
    df = table.copy().reset_index(drop=True)
    if "kind" not in df:
        raise ValueError("estimator table has no 'kind' column")
    bad = sorted(set(df["kind"].dropna()) - set(KINDS))
    if bad:
        raise ValueError(f"unknown kind(s) {bad}; allowed: {', '.join(KINDS)}")
    for col in ("estimate", "se"):
        if col not in df:
            df[col] = np.nan
    inf = normal_inference(df["estimate"].to_numpy(float), df["se"].to_numpy(float), alpha)
    for col in ("ci_low", "ci_high", "p"):
        if col not in df:
            df[col] = inf[col]
        else:  # fill gaps only
            df[col] = df[col].astype(float).where(df[col].notna(), inf[col])
    df["spec"] = spec
    df["estimator"] = estimator
    df["outcome"] = outcome
    df["n_units"] = n_units
    df["n_obs"] = n_obs
    df["n_clusters"] = n_clusters
    for col in TIDY_COLUMNS:
        if col not in df:
            df[col] = pd.NA
    out = df[list(TIDY_COLUMNS)].copy()
    for col, dtype in TIDY_SCHEMA.items():
        if dtype == "string":
            out[col] = out[col].astype("string")
            continue
        raw = out[col].astype(object)
        values = pd.to_numeric(raw.where(raw.notna(), np.nan), errors="raise").astype(float)
        out[col] = values.round().astype("Int64") if dtype == "Int64" else values
    return out


def empty_tidy() -> pd.DataFrame:
    """A zero-row frame with the exact tidy schema."""
    return pd.DataFrame({c: pd.Series(dtype=t) for c, t in TIDY_SCHEMA.items()})


def check_tidy(df: pd.DataFrame) -> None:
    """Raise ``ValueError`` unless ``df`` has exactly the tidy columns and dtypes."""
    if tuple(df.columns) != TIDY_COLUMNS:
        raise ValueError(f"tidy columns {list(df.columns)} != {list(TIDY_COLUMNS)}")
    wrong = {c: str(df[c].dtype) for c, t in TIDY_SCHEMA.items() if str(df[c].dtype) != t}
    if wrong:
        raise ValueError(f"tidy dtypes differ from the schema: {wrong}")


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def package_versions(extra: tuple[str, ...] = ()) -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in RECORDED_PACKAGES + tuple(extra):
        try:
            out[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            out[name] = None
    return out


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (Path,)):
        return str(obj)
    if obj is pd.NA:
        return None
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _atomic_write(path: Path, write) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_estimates(
    tidy: pd.DataFrame, meta: dict[str, Any], parquet_path: str | Path, json_path: str | Path
) -> None:
    """Write the tidy table (Parquet) and the metadata (JSON), each atomically."""
    check_tidy(tidy)
    _atomic_write(Path(parquet_path), lambda p: tidy.to_parquet(p, index=False))

    def _write_json(p: str) -> None:
        with open(p, "w", encoding="utf-8") as fh:
            json.dump(meta, fh, indent=2, sort_keys=True, default=_json_default)
            fh.write("\n")

    _atomic_write(Path(json_path), _write_json)
