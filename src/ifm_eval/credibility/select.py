"""Which specifications the credibility stages diagnose, and where their files are."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

#: estimators with an event study (event-time rows and covariance)
EVENT_STUDY = ("twfe_dynamic", "sun_abraham", "imputation", "gardner", "callaway_santanna")


def diagnosed_specs(cfg: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``credibility.models`` or every ``role: main`` spec, in configuration order."""
    from ifm_eval.estimators.specs import expand_models

    specs = expand_models(cfg)
    names = cfg.get("credibility", {}).get("models") or [n for n, s in specs.items() if s["role"] == "main"]
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"credibility.models: unknown model(s) {unknown}")
    return {n: specs[n] for n in names}


def diagnosed_estimators(cfg: dict[str, Any]) -> list[str]:
    """The estimators of the diagnosed specs (one randomization job each)."""
    return list(dict.fromkeys(s["estimator"] for s in diagnosed_specs(cfg).values()))


def specs_of(cfg: dict[str, Any], estimator: str) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in diagnosed_specs(cfg).items() if s["estimator"] == estimator}


def model_of(path: str | Path, suffix: str = "") -> str:
    """Spec name from an estimate file name (``{model}{suffix}.ext``)."""
    stem = Path(path).stem
    return stem[: -len(suffix)] if suffix and stem.endswith(suffix) else stem


def read_meta(paths: list[Path]) -> dict[str, dict[str, Any]]:
    return {model_of(p): json.loads(Path(p).read_text(encoding="utf-8")) for p in paths}


def read_tidy(paths: list[Path]) -> pd.DataFrame:
    frames = [pd.read_parquet(p) for p in paths]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def headline_row(tidy: pd.DataFrame, meta: dict[str, Any]) -> pd.Series | None:
    """The headline row (``info.headline.term``, kind ``overall``) of one spec's tidy table."""
    term = ((meta.get("info") or {}).get("headline") or {}).get("term")
    sel = tidy[(tidy["spec"] == meta["model"]) & (tidy["kind"] == "overall") & (tidy["term"] == term)]
    return sel.iloc[0] if len(sel) else None
