"""What the report reads: :class:`Context`, built by :func:`load_context` from exactly the
files the ``report`` rule declares, and lookups on those results.

The main specifications are the models whose metadata say ``spec.role: main``
(:func:`ifm_eval.outputs.figures.model_table`); per outcome the *headline* model is the
Callaway & Sant'Anna main spec if there is one, among the main specs that pass the Monte
Carlo check (``mc_targets``; :func:`ifm_eval.outputs.figures.headline_models`).
Nothing is inferred from model names, and every declared input must be there: a missing
table or figure, or a table that names a model which is not (or not a main) specification of
this run, is an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from ifm_eval.outputs import style
from ifm_eval.outputs.figures import headline_models, model_table, spec_of
from ifm_eval.outputs.report import strings
from ifm_eval.outputs.style import format_int, format_number, format_pct
from ifm_eval.outputs.targets import (
    DESCRIPTIVE_FIGURES,
    DESCRIPTIVE_TABLES,
    FIGURES_OVERALL,
    FIGURES_PER_OUTCOME,
    RESULT_TABLES,
    TRUTH_TABLE,
    figures_dir,
    outcomes,
)


class ReportInputError(ValueError):
    """The files handed to the report do not match what it reads (a bug in the DAG)."""


@dataclass
class Context:
    cfg: dict[str, Any]
    lang: str
    synthetic: bool
    est: pd.DataFrame
    meta: dict[str, dict]
    models: pd.DataFrame  # model_table: models with estimates, role from spec.role
    outcomes: list[str]  # outcome keys of the configured models
    tables: dict[str, pd.DataFrame]
    figures: dict[str, Path]  # figure_key ("event_study_employment", "descriptives/map_start") -> PNG
    inputs: list[Path]
    headline: dict[str, str] = field(default_factory=dict)  # outcome key -> headline main model

    def s(self, key: str, **values: Any) -> str:
        """The report text ``key`` (strings.yaml) in the report language."""
        return strings.text(key, self.lang, **values)

    def num(self, x: Any, digits: int = 2, signed: bool = False) -> str:
        return format_number(x, digits, self.lang, signed)

    def pct(self, x: Any, digits: int = 0) -> str:
        return format_pct(x, digits, self.lang)

    def int(self, x: Any) -> str:
        return format_int(x, self.lang)

    def label(self, key: str) -> str:
        return style.label(key, self.lang)

    def figure(self, key: str) -> Path:
        """The declared figure ``key`` (e.g. ``event_study_employment``, ``descriptives/map_start``)."""
        if key not in self.figures:
            raise ReportInputError(f"report: figure {key!r} is not among the declared inputs")
        return self.figures[key]

    def spec(self, model: str) -> dict[str, Any]:
        return spec_of(self.meta, model)

    def main_specs(self) -> dict[str, dict[str, Any]]:
        """Every configured main specification (``spec.role: main``), estimated or not."""
        return {m: self.spec(m) for m in sorted(self.meta) if self.spec(m)["role"] == "main"}


@dataclass(frozen=True)
class SectionInputs:
    """Tables (CSV stems) and figures (keys, see :func:`figure_key`) that a registered
    section reads; they must then be inputs of the report rule (``synthetic_only``: on
    stand-in data only)."""

    tables: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    synthetic_only: bool = False


#: Inputs of sections added by later stages (:func:`ifm_eval.outputs.report.register_section`),
#: by builder name.
EXTRA_INPUTS: dict[str, SectionInputs] = {}


def _extra(synthetic: bool, what: str) -> tuple[str, ...]:
    return tuple(k for e in EXTRA_INPUTS.values() if synthetic or not e.synthetic_only for k in getattr(e, what))


def report_tables(synthetic: bool) -> tuple[str, ...]:
    """The tables (CSV stems) the report reads."""
    return (*RESULT_TABLES, *DESCRIPTIVE_TABLES, *((TRUTH_TABLE,) if synthetic else ()), *_extra(synthetic, "tables"))


def report_figures(outcome_keys: list[str], synthetic: bool = True) -> tuple[str, ...]:
    """The figures (keys, :func:`figure_key`) the report shows."""
    per = tuple(f"{k}_{o}" for o in outcome_keys for k in FIGURES_PER_OUTCOME)
    return (*per, *FIGURES_OVERALL, *(f"descriptives/{k}" for k in DESCRIPTIVE_FIGURES), *_extra(synthetic, "figures"))


def figure_key(path: Path, figures_dir: Path) -> str:
    """``event_study_employment`` for a figure in the figures directory,
    ``descriptives/map_start`` in a sub-directory; ``<directory name>/<stem>`` elsewhere."""
    path = Path(path)
    try:
        return path.relative_to(figures_dir).with_suffix("").as_posix()
    except ValueError:
        return f"{path.parent.name}/{path.stem}"


def _read_table(path: Path) -> pd.DataFrame:
    """A published CSV without its stand-in mark column (the report marks every page)."""
    return pd.read_csv(path).drop(columns="data_source", errors="ignore")


def _by_key(files: list[Path], keys: tuple[str, ...], what: str, key_of) -> dict[str, Path]:
    got: dict[str, Path] = {}
    for f in files:
        k = key_of(Path(f))
        if k in got:
            raise ReportInputError(f"report: {what} {k!r} declared twice ({got[k]}, {f})")
        got[k] = Path(f)
    problems = []
    if missing := sorted(set(keys) - set(got)):
        problems.append(f"missing {what}(s) {missing}")
    if extra := sorted(set(got) - set(keys)):
        problems.append(f"unexpected {what}(s) {extra} (the report does not read them)")
    if problems:
        raise ReportInputError("report: " + "; ".join(problems) + " - the rule and the report disagree")
    return got


def check_tables(tables: dict[str, pd.DataFrame], meta: dict[str, dict], models: pd.DataFrame) -> None:
    """Every model a results table names is a configured specification (main-results and
    truth rows: a main one). A stale table -- e.g. of a spec since removed from the
    config -- is an error, never shown."""
    main = set(models.loc[models["is_main"], "model"])
    for name, allowed, what in (("main_results", main, "main specifications"),
                                (TRUTH_TABLE, main, "main specifications"),
                                ("all_specifications", set(meta), "specifications")):
        if name not in tables:
            continue
        if stale := sorted(set(tables[name]["model"].astype(str)) - allowed):
            raise ReportInputError(f"report: table {name} lists model(s) {stale} that are not {what} of this run "
                                   "(stale table?)")


def load_context(cfg: dict[str, Any], est: pd.DataFrame, meta: dict[str, dict], tables: list[Path],
                 figures: list[Path], truth: Path | None, inputs: list[Path]) -> Context:
    """The report's view of the results: exactly the declared estimates (``est``/``meta`` of
    the configured models), tables (CSV, :func:`report_tables`), figures (PNG,
    :func:`report_figures`). ``truth`` (``truth.json``) is given on stand-in data and only
    there; the report's planted-truth numbers come from the ``truth_comparison`` table.
    ``inputs``: the files listed (with hashes) in the provenance section."""
    synthetic = style.is_synthetic(cfg)
    if synthetic != (truth is not None):
        raise ReportInputError("report: truth.json is an input on stand-in data and only there")
    keys = outcomes(cfg, {m: spec_of(meta, m) for m in meta})
    csv = _by_key([t for t in tables if Path(t).suffix == ".csv"], report_tables(synthetic), "table", lambda p: p.stem)
    if other := [str(t) for t in tables if Path(t).suffix != ".csv"]:
        raise ReportInputError(f"report: tables are read as CSV, got {other}")
    figs = _by_key(list(figures), report_figures(keys, synthetic), "figure", lambda p: figure_key(p, figures_dir(cfg)))
    loaded = {k: _read_table(p) for k, p in csv.items()}
    models = model_table(est, meta)
    check_tables(loaded, meta, models)
    passing = None
    if "mc_targets" in loaded:  # the Monte Carlo check decides which estimators may be the headline
        from ifm_eval.outputs.report.reliability import passing as mc_passing

        passing = mc_passing(loaded["mc_targets"])
    return Context(cfg=cfg, lang=style.language(cfg), synthetic=synthetic, est=est, meta=meta, models=models,
                   outcomes=keys, tables=loaded, figures=figs, inputs=[Path(p) for p in inputs],
                   headline=headline_models(models, passing))


# ---------------------------------------------------------------------- helpers on results
def main_model(ctx: Context, outcome: str, estimator: str | None = None) -> str | None:
    """The main model of ``outcome``: the headline one, or that of ``estimator``."""
    if estimator is None:
        return ctx.headline.get(outcome)
    m = ctx.models[ctx.models["is_main"] & (ctx.models["outcome_key"] == outcome) & (ctx.models["estimator"] == estimator)]
    return str(m["model"].iloc[0]) if len(m) else None


def main_row(ctx: Context, outcome: str, estimator: str | None = None) -> pd.Series | None:
    """The main-results row of the main model of ``outcome`` (:func:`main_model`), or None
    if that model has no overall estimate."""
    model = main_model(ctx, outcome, estimator)
    mr = ctx.tables["main_results"]
    hit = mr[mr["model"] == model] if model is not None else mr.iloc[0:0]
    return hit.iloc[0] if len(hit) else None


def event_rows(ctx: Context, model: str) -> pd.DataFrame:
    d = ctx.est[(ctx.est["model"] == model) & (ctx.est["kind"] == "event_time")]
    return d.sort_values("event_time")


@dataclass
class TruthMatch:
    value: float
    event_min: float
    event_max: float
    z: float


def matched_truth(ctx: Context, r: pd.Series) -> TruthMatch | None:
    """Planted truth of the same aggregate as main-results row ``r``, read from the
    ``truth_comparison`` table (stand-in data only; None if the model has no matched truth)."""
    if not ctx.synthetic:
        return None
    tc = ctx.tables[TRUTH_TABLE]
    hit = tc[tc["model"] == r["model"]]
    if hit.empty:
        return None
    h = hit.iloc[0]
    return TruthMatch(float(h["truth"]), h["event_min"], h["event_max"], float(h["z"]))


def aggregate_phrase(ctx: Context, r: pd.Series) -> str:
    """What the overall number is, in words (no ambiguous "overall ATT")."""
    agg = str(r["aggregation"])
    lo, hi = r["event_min"], r["event_max"]
    if agg == "dynamic" and pd.notna(lo) and pd.notna(hi):
        return ctx.s("phrase.aggregate_dynamic", event_min=ctx.int(lo), event_max=ctx.int(hi))
    if r["estimator"] == "twfe_static":
        return ctx.s("phrase.aggregate_twfe_static")
    return ctx.s("phrase.aggregate_att")


def cluster_unit(ctx: Context, cluster: str) -> str:
    """The cluster level in words ("Kreisen" / "districts" ...)."""
    key = f"cluster_unit.{cluster}"
    return ctx.s(key if key in strings.strings() else "cluster_unit.other")


def cluster_phrase(ctx: Context, r: pd.Series) -> str:
    """"N = 100 Kommunen in 44 Kreisen": units and clusters of main-results row ``r``, the
    cluster level from the model's spec."""
    return ctx.s("phrase.n_clusters", n_units=ctx.int(r["n_units"]), n_clusters=ctx.int(r["n_clusters"]),
                 unit=cluster_unit(ctx, ctx.spec(r["model"])["cluster"]))


def baseline_rate(ctx: Context, outcome: str) -> tuple[str, float] | None:
    """(year, rate) of the pre-period outcome rate in the balance table's total row (None if
    suppressed)."""
    bal = ctx.tables["balance"]
    col = next(c for c in bal.columns if c.startswith(f"rate_{outcome}_"))
    v = pd.to_numeric(bal[col], errors="coerce").iloc[-1]
    return (col.removeprefix(f"rate_{outcome}_"), float(v)) if v == v else None


def never_treated(ctx: Context) -> int:
    bal = ctx.tables["balance"]
    never = bal[bal["cohort_group"].astype(str).str.contains("nie|never")]
    return int(never["n_municipalities"].sum()) if len(never) else 0


def without_estimates(ctx: Context) -> list[str]:
    """Configured models without any estimate (e.g. ``status: not_estimable``)."""
    have = set(ctx.est["model"])
    return [m for m in sorted(ctx.meta) if m not in have]


def fmt_df(df: pd.DataFrame, ctx: Context, max_rows: int = 40) -> pd.DataFrame:
    """Format a results table for display (numbers per language)."""
    from ifm_eval.outputs.tablefmt import format_frame

    kinds = {}
    for c in df.columns:
        if c in {"p"}:
            kinds[c] = "p"
        elif c.startswith("n_") or c in {"n"}:
            kinds[c] = "int"
    return format_frame(df.head(max_rows), kinds, ctx.lang)


def join_words(ctx: Context, words: list[str]) -> str:
    """"a, b und c" / "a, b and c"."""
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " " + ctx.s("and") + " " + words[-1]

