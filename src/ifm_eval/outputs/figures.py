"""Result figures: event study per outcome (all estimators overlaid, pointwise CIs and
uniform bands, planted truth on stand-in data), robustness panel across specifications,
cohort map, raw trends by cohort, group-time heat map. PNG + PDF, grayscale-readable.

Inputs (all declared by the ``figures`` rule): the tidy estimates and metadata of the
configured models, the panel (raw trends, cohort map), the map layers and, for stand-in
data, the true cell effects (:func:`ifm_eval.validation.cell_effects`).

Main specifications are those with ``role: main`` in their metadata (``spec.role``, see
:func:`model_table`); nothing is inferred from model names. The robustness panel's data
(every specification plotted) is written next to it as ``robustness.csv``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.outputs import style
from ifm_eval.outputs.disclosure import min_cell, suppress_rates
from ifm_eval.outputs.style import label
from ifm_eval.outputs.tablefmt import write_csv
from ifm_eval.outputs.targets import outcome_key

log = logging.getLogger(__name__)

#: plotting order of estimators (others follow alphabetically)
ESTIMATOR_ORDER = ["callaway_santanna", "sun_abraham", "imputation", "gardner", "twfe_dynamic", "twfe", "twfe_static"]
#: count column of the panel behind each outcome's rate
OUTCOME_COUNTS = {"employment": "employed", "training": "in_training", "language": "b1_holders"}
PANEL_START = pd.Period("2015-01", "M")


# ------------------------------------------------------------------ loading results


def load_estimates(tidy: list[str | Path], meta_files: list[str | Path]) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """The given tidy estimate files (one frame, column ``model`` = file stem) and their
    metadata files (one per tidy file, same stem): exactly the configured models."""
    tidy = [Path(p) for p in tidy]
    by_stem = {Path(p).stem: Path(p) for p in meta_files}
    if sorted(by_stem) != sorted(p.stem for p in tidy):
        raise ValueError(f"estimate files and metadata files differ: {sorted(p.stem for p in tidy)} "
                         f"vs {sorted(by_stem)}")
    frames, meta = [], {}
    for p in sorted(tidy, key=lambda q: q.stem):
        df = pd.read_parquet(p)
        df["model"] = p.stem
        frames.append(df)
        meta[p.stem] = json.loads(by_stem[p.stem].read_text(encoding="utf-8"))
    est = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "spec", "estimator", "outcome", "kind", "event_time", "estimate", "se", "ci_low", "ci_high",
                 "cband_low", "cband_high", "p", "cohort", "time", "n_units", "n_obs", "n_clusters"])
    if len(est):
        est["outcome_key"] = est["outcome"].astype(str).map(outcome_key)
    else:
        est["outcome_key"] = pd.Series(dtype=str)
    return est, meta


def spec_of(meta: dict[str, dict[str, Any]], model: str) -> dict[str, Any]:
    """The normalised spec of ``model`` from its metadata (``spec``, with ``role``)."""
    spec = (meta.get(model) or {}).get("spec")
    if not isinstance(spec, dict) or "role" not in spec:
        raise ValueError(f"metadata of model {model!r} has no spec with a role (estimated before specs had "
                         "roles? rerun its estimate job)")
    return spec


ROLES = ("main", "robustness")


def model_table(est: pd.DataFrame, meta: dict[str, dict[str, Any]]) -> pd.DataFrame:
    """One row per model with estimates: estimator, outcome, role and whether it is a main
    specification (``spec.role == "main"`` in its metadata; at most one main spec per
    estimator and outcome)."""
    if est.empty:
        return pd.DataFrame(columns=["model", "estimator", "outcome_key", "role", "is_main", "spec_dict"])
    rows = est.groupby("model", sort=True).agg(estimator=("estimator", "first"), outcome=("outcome", "first"),
                                                outcome_key=("outcome_key", "first")).reset_index()
    rows["spec_dict"] = rows["model"].map(lambda m: spec_of(meta, m))
    rows["role"] = rows["spec_dict"].map(lambda s: s["role"])
    if bad := sorted(set(rows["role"]) - set(ROLES)):
        raise ValueError(f"unknown spec role(s) {bad} (allowed: {list(ROLES)})")
    rows["is_main"] = rows["role"] == "main"
    dup = rows[rows["is_main"]].groupby(["estimator", "outcome_key"])["model"].apply(list)
    dup = dup[dup.map(len) > 1]
    if len(dup):
        raise ValueError(f"several main specifications for one estimator and outcome: {dup.to_dict()}")
    return rows


#: The headline estimator where several main specs exist per outcome (one per estimator).
HEADLINE_ESTIMATOR = "callaway_santanna"


def headline_models(models: pd.DataFrame, passing: set[tuple[str, str]] | None = None) -> dict[str, str]:
    """Per outcome key, the headline main model: Callaway & Sant'Anna if it has a main
    spec for the outcome, else the first main spec in :data:`ESTIMATOR_ORDER`. With
    ``passing`` ((estimator, outcome key) pairs that meet the Monte Carlo targets,
    :mod:`ifm_eval.montecarlo.summary`) only those are eligible: an outcome without a
    passing main spec has no headline."""
    main = models[models["is_main"]]
    if passing is not None:
        main = main[[(str(e), str(o)) in passing for e, o in zip(main["estimator"], main["outcome_key"], strict=True)]]
    out = {}
    for o, g in main.groupby("outcome_key", sort=True):
        g = g.assign(rank=g["estimator"].map(lambda e: (e != HEADLINE_ESTIMATOR, _estimator_rank(e))))
        out[str(o)] = str(g.sort_values(["rank", "model"]).iloc[0]["model"])
    return out


def _estimator_rank(name: str) -> tuple[int, str]:
    return (ESTIMATOR_ORDER.index(name) if name in ESTIMATOR_ORDER else len(ESTIMATOR_ORDER), name)


def overall_rows(est: pd.DataFrame) -> pd.DataFrame:
    """One overall row per model: its headline aggregate (:func:`truth.headline_term`:
    ``dynamic`` where reported, else ``att``), with column ``aggregation`` = that term."""
    from ifm_eval.outputs.truth import headline_term

    ov = est[est["kind"] == "overall"]
    keep = []
    for _, rows in ov.groupby("model", sort=True):
        term = headline_term(rows)
        keep.append(rows[rows["term"].astype(str) == str(term)].head(1))
    if not keep:
        return ov.assign(aggregation=pd.Series(dtype=str))
    out = pd.concat(keep)
    return out.assign(aggregation=out["term"].astype(str))


def matched_truth_paths(est: pd.DataFrame, models: pd.DataFrame, meta: dict[str, dict[str, Any]],
                        cells: pd.DataFrame | None, used: dict[str, pd.DataFrame] | None = None
                        ) -> dict[str, dict[str, pd.Series]]:
    """Per outcome key and estimator (main specifications): the planted truth matched to the
    model -- its own used treated observations and weights, by event time
    (:func:`ifm_eval.validation.matched_truth`). Empty without ``cells`` (real data)."""
    from ifm_eval.validation import matched_truth, tau_column

    out: dict[str, dict[str, pd.Series]] = {}
    if cells is None or models.empty:
        return out
    for row in models[models["is_main"]].itertuples():
        spec = spec_of(meta, row.model)
        if tau_column(str(spec.get("outcome"))) not in cells:
            continue
        if used is None or row.model not in used:
            raise KeyError(f"no used observations of model {row.model!r} (stand-in runs declare them)")
        m = matched_truth(cells, spec["outcome"], used[row.model], (meta[row.model].get("info") or {}).get("headline"))
        if len(m.path):
            out.setdefault(row.outcome_key, {})[row.estimator] = m.path["truth"]
    return out


def t_to_period(t: Any) -> pd.Period:
    return PANEL_START + (int(t) - 1)


# ------------------------------------------------------------------ figures


def robust_limits(estimates: list[np.ndarray], intervals: list[np.ndarray], keep: list[np.ndarray],
                  q: tuple[float, float] = (0.03, 0.97), room: float = 0.3, pad: float = 0.06) -> tuple[float, float]:
    """Shared y-limits robust to outliers: the ``q`` quantile range of the point estimates,
    widened by ``room`` x its span for the intervals (never beyond the interval ends), and
    always including everything in ``keep`` (zero, the truth)."""
    def flat(xs):
        v = np.concatenate([np.asarray(x, float).ravel() for x in xs] or [np.zeros(0)])
        return v[np.isfinite(v)]

    est, iv, k = flat(estimates), flat(intervals), flat(keep)
    lo = float(np.quantile(est, q[0], method="inverted_cdf")) if len(est) else 0.0
    hi = float(np.quantile(est, q[1], method="inverted_cdf")) if len(est) else 0.0
    span = max(hi - lo, 1e-9)
    if len(iv):
        lo = max(min(lo, float(iv.min())), lo - room * span)
        hi = min(max(hi, float(iv.max())), hi + room * span)
    if len(k):
        lo, hi = min(lo, float(k.min())), max(hi, float(k.max()))
    if hi - lo < 1e-9:
        lo, hi = lo - 1, hi + 1
    span = hi - lo
    return lo - pad * span, hi + pad * span


def event_study_figure(est: pd.DataFrame, models: pd.DataFrame, outcome: str, lang: str,
                       truth: pd.Series | dict[str, pd.Series] | None = None):
    """Small multiples: one panel per estimator (main specification), the planted truth
    (dashed) in each -- ``truth``: one path for every panel, or per estimator its matched
    path (:func:`matched_truth_paths`, legend "same observations and weights"); shared
    y-limits clipped to the 3–97 % quantile range of all estimates and interval ends (values beyond are drawn as arrows at the edge and counted in a note).

    Returns ``(fig, n_text, note_extra)``."""
    import matplotlib.patheffects as pe
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    style.apply_style()
    main = models[models["is_main"] & (models["outcome_key"] == outcome)]
    main = main.sort_values("estimator", key=lambda s: s.map(_estimator_rank))
    panels = []
    for row in main.itertuples():
        d = est[(est["model"] == row.model) & (est["kind"] == "event_time")].dropna(subset=["event_time", "estimate"])
        if not d.empty:
            panels.append((row, d.sort_values("event_time")))
    ncol = 2 if len(panels) > 1 else 1
    nrow = max(1, int(np.ceil(len(panels) / ncol)))
    fig, axes = plt.subplots(nrow, ncol, figsize=(7.5, 1.1 + 2.05 * nrow), sharex=True, sharey=True, squeeze=False)
    title = "Ereignisstudie" if lang == "de" else "Event study"
    fig.suptitle(f"{title}: {label(outcome, lang)}", x=0.01, ha="left", fontweight="bold", fontsize=11)
    if not panels:
        axes[0][0].text(0.5, 0.5, "keine Ereigniszeit-Schätzungen" if lang == "de" else "no event-time estimates",
                        ha="center", transform=axes[0][0].transAxes)
        return fig, None, None
    xs = [p[1]["event_time"].astype(float).to_numpy() for p in panels]
    xmin, xmax = min(x.min() for x in xs), max(x.max() for x in xs)
    matched = isinstance(truth, dict)
    by_est: dict[str, pd.Series] = {}
    for row, _ in panels:
        t_ = truth.get(row.estimator) if matched else truth
        if t_ is not None and len(t_):
            by_est[row.estimator] = t_[(t_.index >= xmin) & (t_.index <= xmax)].dropna()
    tr = next(iter(by_est.values()), None)
    keep = [np.zeros(1)] + [v.to_numpy(float) for v in by_est.values() if len(v)]
    lo, hi = robust_limits([d["estimate"].to_numpy(float) for _, d in panels],
                           [np.r_[d["ci_low"].to_numpy(float), d["ci_high"].to_numpy(float)] for _, d in panels], keep)
    clipped = 0
    halo = [pe.Stroke(linewidth=3.2, foreground="white"), pe.Normal()]
    has_band = False
    ns = []
    for i, (row, d) in enumerate(panels):
        ax = axes[i // ncol][i % ncol]
        x = d["event_time"].astype(float).to_numpy()
        y = d["estimate"].astype(float).to_numpy()
        cl = d["ci_low"].astype(float).to_numpy()
        ch = d["ci_high"].astype(float).to_numpy()
        if "cband_low" in d and d["cband_low"].notna().any():
            has_band = True
            bl = d["cband_low"].astype(float).clip(lo, hi)
            bh = d["cband_high"].astype(float).clip(lo, hi)
            ax.fill_between(x, bl, bh, color="#d0d0d0", linewidth=0, step="mid", zorder=1)
        ax.vlines(x, np.clip(cl, lo, hi), np.clip(ch, lo, hi), color="#000000", linewidth=0.9, zorder=3)
        inside = (y >= lo) & (y <= hi)
        ax.plot(x[inside], y[inside], linestyle="none", marker="o", markersize=2.8, color="black", zorder=4)
        above, below = y > hi, y < lo
        clipped += int(above.sum() + below.sum() + ((ch > hi) & ~above).sum() + ((cl < lo) & ~below).sum())
        if above.any():
            ax.plot(x[above], np.full(above.sum(), hi), linestyle="none", marker="^", markersize=4.5, color="black", zorder=5, clip_on=False)
        if below.any():
            ax.plot(x[below], np.full(below.sum(), lo), linestyle="none", marker="v", markersize=4.5, color="black", zorder=5, clip_on=False)
        tr_i = by_est.get(row.estimator)
        if tr_i is not None and len(tr_i):
            ax.plot(tr_i.index.to_numpy(float), tr_i.to_numpy(float), color="black", linewidth=1.4, linestyle=(0, (4, 1.8)),
                    zorder=6, path_effects=halo)
        ax.axhline(0, color="#555555", linewidth=0.7, zorder=2)
        ax.axvline(-0.5, color="#555555", linewidth=0.7, linestyle=":", zorder=2)
        n = int(d["n_units"].dropna().max()) if d["n_units"].notna().any() else None
        if n is not None:
            ns.append(n)
        ax.set_title(label(row.estimator, lang) + (f" (N = {style.format_int(n, lang)})" if n is not None else ""), loc="left", fontsize=9)
        ax.set_ylim(lo, hi)
        ax.grid(axis="x", visible=False)
    spare = [axes[j // ncol][j % ncol] for j in range(len(panels), nrow * ncol)]
    for ax in spare:
        ax.set_axis_off()
    for r in range(nrow):
        axes[r][0].set_ylabel(label("effect_pp", lang) if r == nrow // 2 else "")
    for c in range(ncol):
        last = max(r for r in range(nrow) if r * ncol + c < len(panels)) if any(r * ncol + c < len(panels) for r in range(nrow)) else 0
        axes[last][c].set_xlabel(label("event_time", lang))
        axes[last][c].xaxis.set_tick_params(labelbottom=True)
    handles = [Line2D([], [], linestyle="none", marker="o", markersize=3.5, color="black", label="Schätzung" if lang == "de" else "Estimate"),
               Line2D([], [], color="black", linewidth=0.9, label=label("ci95", lang))]
    if has_band:
        handles.append(Patch(facecolor="#d0d0d0", edgecolor="none", label=label("cband", lang)))
    if tr is not None and len(tr):
        handles.append(Line2D([], [], color="black", linewidth=1.4, linestyle=(0, (4, 1.8)),
                              label=label("truth_matched" if matched else "truth", lang)))
    if spare:  # legend in the empty panel
        spare[0].legend(handles=handles, loc="center", fontsize=7.5, frameon=False)
        fig.tight_layout(rect=(0, 0, 1, 0.97))
    else:
        fig.legend(handles=handles, loc="upper center", ncol=len(handles), bbox_to_anchor=(0.5, 0.95), fontsize=7)
        fig.tight_layout(rect=(0, 0, 1, 0.9))
    note = None
    if clipped:
        note = (f"y-Achse robust begrenzt (3.–97. Perzentil der Punktschätzer, erweitert für die Intervalle); {clipped} Werte liegen "
                "außerhalb (Punkte als ▲/▼ am Rand, Intervalle abgeschnitten)." if lang == "de" else
                f"y-axis limited robustly (3rd–97th percentile of the point estimates, widened for the intervals); {clipped} values "
                "lie outside (points drawn as ▲/▼ at the edge, intervals cut).")
    if ns:
        unit = "Kommunen" if lang == "de" else "municipalities"
        n_text = (f"{style.format_int(min(ns), lang)}–{style.format_int(max(ns), lang)} {unit} je Schätzer" if min(ns) != max(ns) and lang == "de"
                  else f"{style.format_int(min(ns), lang)}–{style.format_int(max(ns), lang)} {unit} per estimator" if min(ns) != max(ns)
                  else f"{style.format_int(ns[0], lang)} {unit}")
    else:
        n_text = None
    return fig, n_text, note


def spec_label(model: str, outcome: str) -> str:
    """Model name without its outcome part (rows of the robustness panel line up)."""
    for token in (f"_rate_{outcome}", f"_{outcome}", f"rate_{outcome}_", f"{outcome}_"):
        model = model.replace(token, "")
    return model


ROBUSTNESS_COLUMNS = ["model", "label", "estimator", "outcome_key", "role", "is_main", "aggregation", "estimate", "ci_low",
                      "ci_high"]


def robustness_data(est: pd.DataFrame, models: pd.DataFrame) -> pd.DataFrame:
    """What the robustness panel plots: the headline overall effect of every specification
    with estimates (one row per model; ``label`` is its row in the panel)."""
    ov = overall_rows(est).merge(models[["model", "role", "is_main"]], on="model", validate="one_to_one")
    ov["label"] = [spec_label(m, o) for m, o in zip(ov["model"], ov["outcome_key"], strict=True)]
    return ov[ROBUSTNESS_COLUMNS].reset_index(drop=True)


def robustness_figure(data: pd.DataFrame, outcome_keys: list[str], lang: str):
    """The robustness panel of :func:`robustness_data` (one column per outcome)."""
    import matplotlib.pyplot as plt

    style.apply_style()
    ov = data.assign(rank=data["estimator"].map(_estimator_rank))
    # rows: per estimator (plotting order), main specification first, then by label
    order = ov.sort_values(["rank", "is_main", "label"], ascending=[True, False, True])["label"].drop_duplicates().tolist()
    ypos = {lab: len(order) - 1 - i for i, lab in enumerate(order)}
    fig, axes = plt.subplots(1, len(outcome_keys), figsize=(2.3 * len(outcome_keys) + 2.4, 0.26 * len(order) + 1.9),
                             squeeze=False, sharey=True)
    for ax, o in zip(axes[0], outcome_keys, strict=False):
        d = ov[ov["outcome_key"] == o]
        y = d["label"].map(ypos).to_numpy()
        ax.hlines(y, d["ci_low"], d["ci_high"], color="#444444", linewidth=1.2)
        for yy, r in zip(y, d.itertuples(), strict=True):
            ax.plot(r.estimate, yy, marker="o", markersize=5 if r.is_main else 3.8,
                    markerfacecolor="black" if r.is_main else "white", markeredgecolor="black")
        ax.axvline(0, color="black", linewidth=0.8)
        ax.set_title(label(o, lang), fontsize=9, loc="left")
        ax.set_xlabel(label("att", lang), fontsize=8)
        ax.grid(axis="y", visible=False)
    axes[0][0].set_yticks(list(ypos.values()), list(ypos.keys()), fontsize=7)
    fig.suptitle(("Robustheit über Spezifikationen (gefüllt: Hauptspezifikation)" if lang == "de"
                  else "Robustness across specifications (filled: main specification)"), x=0.01, ha="left", fontweight="bold")
    fig.tight_layout()
    return fig


def cohort_frame(panel: pd.DataFrame) -> pd.DataFrame:
    cols = ["ags", "cohort_month"]
    m = panel[cols].drop_duplicates("ags").copy()
    m["start_month"] = pd.to_datetime(m["cohort_month"]).dt.to_period("M")
    m["applied"] = m["start_month"].notna()
    return m


def cohort_group(start: pd.Series, lang: str) -> pd.Series:
    """Coarse cohort groups for raw trends (half-years, never treated)."""
    labels_de = {0: "bis 06/2017", 1: "07–12/2017", 2: "01–06/2018", 3: "ab 07/2018", -1: "nie behandelt"}
    labels_en = {0: "until 06/2017", 1: "07–12/2017", 2: "01–06/2018", 3: "from 07/2018", -1: "never treated"}
    g = pd.Series(-1, index=start.index)
    for i, upper in reversed(list(enumerate(["2017-06", "2017-12", "2018-06", "2099-12"]))):
        g[start.notna() & (start <= pd.Period(upper, "M"))] = i
    return g.map(labels_de if lang == "de" else labels_en), g


def raw_trends_table(panel: pd.DataFrame, outcome: str, threshold: int, lang: str) -> pd.DataFrame:
    """Person-weighted outcome rate per cohort group and month, with disclosure control."""
    num = OUTCOME_COUNTS[outcome]
    d = panel[["ags", "month", "cohort_month", "refugees", num]].copy()
    d["start"] = pd.to_datetime(d["cohort_month"]).dt.to_period("M")
    d["cohort_group"], d["group_rank"] = cohort_group(d["start"], lang)
    agg = d.groupby(["group_rank", "cohort_group", "month"], as_index=False).agg(
        n_persons=("refugees", "sum"), numerator=(num, "sum"), n_municipalities=("ags", "nunique"))
    agg["rate"] = 100 * agg["numerator"] / agg["n_persons"].where(agg["n_persons"] > 0)
    out = suppress_rates(agg, "numerator", "n_persons", ["rate"], threshold)
    out["outcome"] = outcome
    return out[["outcome", "group_rank", "cohort_group", "month", "n_municipalities", "n_persons", "rate"]]


def raw_trends_figure(tab: pd.DataFrame, panel: pd.DataFrame, outcome: str, lang: str):
    import matplotlib.pyplot as plt

    style.apply_style()
    fig, ax = plt.subplots(figsize=(7.5, 4.2))
    starts = cohort_frame(panel)
    for i, (rank, g) in enumerate(tab.groupby("group_rank", sort=True)):
        st = style.series_style(i)
        ax.plot(pd.to_datetime(g["month"]), g["rate"], color=st["color"], linestyle=st["linestyle"], linewidth=1.4,
                label=f"{g['cohort_group'].iloc[0]} (N = {style.format_int(g['n_municipalities'].max(), lang)})")
        if rank >= 0:
            sm = starts.loc[starts["start_month"].notna(), "start_month"]
            grp, _ = cohort_group(sm, lang)
            first = sm[grp == g["cohort_group"].iloc[0]]
            if len(first):
                ax.axvline(first.min().to_timestamp(), color=st["color"], linestyle=":", linewidth=0.8)
    ax.set_ylabel(label("rate_pct", lang))
    ax.set_xlabel(label("month", lang))
    ax.legend(title=label("cohort", lang), loc="upper left")
    ttl = "Rohverläufe nach Startkohorte" if lang == "de" else "Raw trends by start cohort"
    ax.set_title(f"{ttl}: {label(outcome, lang)}", loc="left")
    fig.tight_layout()
    return fig


def heatmap_figure(est: pd.DataFrame, models: pd.DataFrame, outcome: str, lang: str):
    import matplotlib.pyplot as plt

    style.apply_style()
    cand = models[(models["outcome_key"] == outcome)].copy()
    cand["has_gt"] = cand["model"].map(lambda m: bool(((est["model"] == m) & (est["kind"] == "att_gt")).any()))
    cand = cand[cand["has_gt"]].sort_values(["is_main", "estimator"], ascending=[False, True],
                                            key=lambda s: s.map(_estimator_rank) if s.name == "estimator" else s)
    fig, ax = plt.subplots(figsize=(7.8, 4.4))
    if cand.empty:
        ax.text(0.5, 0.5, "keine Gruppen-Zeit-Effekte" if lang == "de" else "no group-time effects", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig, None
    model = cand.iloc[0]["model"]
    d = est[(est["model"] == model) & (est["kind"] == "att_gt")].dropna(subset=["cohort", "time"])
    grid = d.pivot_table(index="cohort", columns="time", values="estimate", aggfunc="first").sort_index()
    vmax = float(np.nanpercentile(np.abs(grid.to_numpy()), 98)) if grid.notna().any().any() else 1.0
    im = ax.imshow(grid.to_numpy(float), aspect="auto", cmap=style.DIVERGING_CMAP, vmin=-vmax, vmax=vmax, interpolation="nearest")
    cols = [t_to_period(t) for t in grid.columns]
    rows = [t_to_period(g) for g in grid.index]
    step = max(1, len(cols) // 12)
    ax.set_xticks(np.arange(len(cols))[::step], [c.strftime("%m/%Y") for c in cols][::step], rotation=45, ha="right")
    rstep = max(1, len(rows) // 16)
    ax.set_yticks(np.arange(len(rows))[::rstep], [r.strftime("%m/%Y") for r in rows][::rstep])
    # mark the treatment start (time == cohort)
    for i, g in enumerate(grid.index):
        if g in list(grid.columns):
            j = list(grid.columns).index(g)
            ax.plot(j - 0.5, i, marker="|", color="white", markersize=6)
    ax.grid(False)
    ax.set_xlabel(label("calendar_month", lang))
    ax.set_ylabel(label("cohort", lang))
    cb = fig.colorbar(im, ax=ax)
    cb.set_label(label("att", lang))
    ttl = "Gruppen-Zeit-Effekte" if lang == "de" else "Group-time effects"
    ax.set_title(f"{ttl}: {label(outcome, lang)} ({label(cand.iloc[0]['estimator'], lang)})", loc="left")
    fig.tight_layout()
    n = int(d["n_units"].dropna().max()) if d["n_units"].notna().any() else None
    return fig, n


# ------------------------------------------------------------------ stage


def band_estimators(est: pd.DataFrame, models: pd.DataFrame, outcome: str) -> list[str]:
    """Main-spec estimators of ``outcome`` whose event study has a uniform band."""
    main = models[models["is_main"] & (models["outcome_key"] == outcome)]
    ev = est[est["model"].isin(main["model"]) & (est["kind"] == "event_time")]
    has = ev.groupby("estimator")["cband_low"].apply(lambda s: bool(s.notna().any()))
    return sorted(has[has].index, key=_estimator_rank)


def build_figures(cfg: dict[str, Any], est: pd.DataFrame, meta: dict[str, dict[str, Any]], panel: pd.DataFrame,
                  cells: pd.DataFrame | None, geo: tuple[Path, Path], out_dir: Path,
                  outcome_keys: list[str], used: dict[str, pd.DataFrame] | None = None) -> list[Path]:
    """Every result figure into ``out_dir``: per outcome of ``outcome_keys`` (those of the
    configured models) and across them. ``cells``: true cell effects (stand-in data) or None
    (real data); ``used``: each model's used treated observations (stand-in data); ``geo``:
    the municipality and Kreis map layers."""
    from ifm_eval.outputs.descriptives import draw_start_map

    lang = style.language(cfg)
    synthetic = style.is_synthetic(cfg)
    threshold = min_cell(cfg)
    out_dir = Path(out_dir)
    models = model_table(est, meta)
    # planted truth matched to each main model (stand-in data only)
    truth = matched_truth_paths(est, models, meta, cells, used)
    keys = list(outcome_keys)
    src_est = ("Eigene Schätzungen auf Basis des Panels Kommune × Monat" if lang == "de"
               else "Own estimates on the municipality × month panel")
    written: list[Path] = []
    for o in keys:
        fig, n, clip_note = event_study_figure(est, models, o, lang, truth.get(o))
        bands = ", ".join(label(e, lang) for e in band_estimators(est, models, o))
        note = ("Hauptspezifikation je Schätzer; Effekt auf die Quote in Prozentpunkten; senkrechte Linien: punktweise "
                "95-%-Konfidenzintervalle"
                + (f"; graue Fläche: simultanes 95-%-Band (nur {bands})" if bands else "")
                + ("; gestrichelt: eingepflanzter wahrer Effekt über dieselben behandelten Kommune-Monate und mit denselben "
                   "Gewichten wie die jeweilige Schätzung" if o in truth else "") + "."
                if lang == "de" else
                "Main specification per estimator; effect on the rate in percentage points; vertical lines: pointwise 95% "
                "confidence intervals"
                + (f"; grey area: uniform 95% band ({bands} only)" if bands else "")
                + ("; dashed: planted true effect over the same treated municipality-months and with the same weights as "
                   "the respective estimate" if o in truth else "") + ".")
        if clip_note:
            note += " " + clip_note
        written += style.finish_figure(fig, out_dir / f"event_study_{o}", synthetic=synthetic, source=src_est, n=n, note=note, lang=lang)
        tab = raw_trends_table(panel, o, threshold, lang)
        written.append(write_csv(tab, out_dir / f"raw_trends_{o}.csv", synthetic=synthetic))
        fig = raw_trends_figure(tab, panel, o, lang)
        note = (f"Personengewichtete Quote; Zellen mit weniger als {threshold} Personen unterdrückt; gepunktet: erster Start der Gruppe."
                if lang == "de" else f"Person-weighted rate; cells with fewer than {threshold} persons suppressed; dotted: first start in group.")
        written += style.finish_figure(fig, out_dir / f"raw_trends_{o}", synthetic=synthetic, source=src_est.split(" auf")[0] if lang == "de" else "Panel",
                                       n=int(panel["ags"].nunique()), note=note, lang=lang)
        fig, n = heatmap_figure(est, models, o, lang)
        written += style.finish_figure(fig, out_dir / f"group_time_heatmap_{o}", synthetic=synthetic, source=src_est, n=n, lang=lang)
    rob = robustness_data(est, models)
    written.append(write_csv(rob, out_dir / "robustness.csv", synthetic=synthetic))
    fig = robustness_figure(rob, keys, lang)
    written += style.finish_figure(fig, out_dir / "robustness", synthetic=synthetic, source=src_est, n=f"{rob['model'].nunique()} Modelle" if lang == "de" else f"{rob['model'].nunique()} models",
                                   note=("Gesamteffekt (Prozentpunkte) mit punktweisem 95-%-Konfidenzintervall; Definition je Schätzer im Bericht." if lang == "de" else "Overall effect (percentage points) with pointwise 95% CI; definition per estimator in the report."), lang=lang)
    cf = cohort_frame(panel)
    fig = draw_start_map(cf, geo[0], geo[1], lang,
                         "Startkohorten im Panel" if lang == "de" else "Start cohorts in the panel")
    written += style.finish_figure(fig, out_dir / "cohort_map", synthetic=synthetic, n=int(cf["ags"].nunique()),
                                   source="Panel; ©GeoBasis-DE/BKG 2021", lang=lang)
    log.info("figures: %d file(s) for outcome(s) %s", len(written), ", ".join(keys))
    return written
