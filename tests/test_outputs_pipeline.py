"""Output stage on small fake inputs: descriptives, figures, tables, report (HTML + PDF)."""

from __future__ import annotations

import copy
import re

import matplotlib
import pandas as pd
import pytest
from test_outputs_fakes import fake_config, make_fake_project

from ifm_eval.outputs import style
from ifm_eval.outputs.descriptives import PUBLISHED, build_descriptives
from ifm_eval.outputs.disclosure import check_results
from ifm_eval.outputs.figures import build_figures, load_estimates, model_table
from ifm_eval.outputs.report import (
    build_report,
    build_sections,
    load_context,
    render_html,
    render_pages_png,
    render_typst,
)
from ifm_eval.outputs.tables import build_tables
from ifm_eval.outputs.targets import (
    descriptive_figure_paths,
    figure_paths,
    report_paths,
    table_paths,
)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    cfg = make_fake_project(root, n=40)
    build_descriptives(cfg)
    build_figures(cfg)
    build_tables(cfg)
    build_report(cfg, logs_dir=root / "logs")
    return root, cfg


def test_descriptives_outputs_and_comparison(project):
    root, cfg = project
    for p in descriptive_figure_paths(cfg) + descriptive_figure_paths(cfg, "pdf"):
        assert p.is_file() and p.stat().st_size > 1000, p
    comp = pd.read_csv(root / "results" / "tables" / "descriptives_comparison.csv")
    assert len(comp) == len(PUBLISHED)
    assert comp["replicated"].notna().mean() > 0.8
    html = (root / "results" / "tables" / "descriptives_comparison.html").read_text(
        encoding="utf-8"
    )
    assert style.SYNTHETIC_MARK in html


def test_figures_and_tables_exist(project):
    _, cfg = project
    est, meta = load_estimates(cfg["data"]["results_dir"])
    models = model_table(est, meta)
    for p in figure_paths(cfg, None) + figure_paths(cfg, None, "pdf"):
        assert p.is_file(), p
    for fmt in ("csv", "tex", "html"):
        for p in table_paths(cfg, fmt):
            assert p.is_file(), p
    tex = (table_paths(cfg, "tex")[0]).read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"\bottomrule" in tex and "SYNTHETISCHE" in tex
    # one main model per estimator x outcome
    assert models.groupby(["estimator", "outcome_key"])["is_main"].sum().eq(1).all()


def test_synthetic_mark_on_figure(tmp_path):
    import matplotlib.pyplot as plt

    with matplotlib.rc_context({"svg.fonttype": "none"}):
        fig, ax = plt.subplots()
        ax.plot([0, 1], [0, 1])
        style.finish_figure(
            fig, tmp_path / "f", synthetic=True, source="Test", n=12, formats=("svg",)
        )
        svg = (tmp_path / "f.svg").read_text(encoding="utf-8")
        fig, ax = plt.subplots()
        style.finish_figure(fig, tmp_path / "g", synthetic=False, formats=("svg",))
        svg_real = (tmp_path / "g.svg").read_text(encoding="utf-8")
    assert "SYNTHETISCHE DATEN / SYNTHETIC DATA" in svg and "N = 12" in svg
    assert "SYNTHETISCHE" not in svg_real


def test_report_html_and_pdf(project):
    _, cfg = project
    html_path, pdf_path = report_paths(cfg)
    assert pdf_path.read_bytes()[:4] == b"%PDF"
    html = html_path.read_text(encoding="utf-8")
    assert "<img" in html and "data:image/png;base64," in html and 'src="http' not in html
    assert html.count(style.SYNTHETIC_MARK) >= 2
    for title in [
        "Zusammenfassung",
        "Umsetzung",
        "Empirische Strategie",
        "Ergebnisse",
        "Robustheit",
        "Grenzen",
        "Anhang",
        "Herkunft",
    ]:
        assert title in html


def test_every_page_carries_the_mark(project):
    _, cfg = project
    ctx = load_context(cfg)
    src = render_typst(ctx, build_sections(ctx), {})
    page_rule = next(line for line in src.splitlines() if line.startswith("#set page("))
    assert "header:" in page_rule and "SYNTHETIC DATA" in page_rule and "background:" in page_rule
    real = copy.deepcopy(cfg)
    real["data"]["source"] = "raw"
    ctx_real = load_context(real)
    assert "SYNTHETIC" not in render_typst(ctx_real, build_sections(ctx_real), {})


def test_report_numbers_come_from_results(project):
    _, cfg = project
    ctx = load_context(cfg)
    mr = ctx.tables["main_results"]
    row = (mr["estimator"] == "callaway_santanna") & (mr["outcome"] == "employment")
    before = render_html(ctx, build_sections(ctx))
    assert "+9,87" not in before
    ctx.tables["main_results"].loc[row, "estimate"] = 9.87
    after = render_html(ctx, build_sections(ctx))
    assert "+9,87 Prozentpunkte" in after
    comp = ctx.tables["descriptives_comparison"]
    comp.loc[comp["item"] == "landratsamt", "replicated"] = 12.0
    assert "In 12\u00a0% der Kommunen" in render_html(ctx, build_sections(ctx))


def test_language_switch(project):
    _, cfg = project
    en = copy.deepcopy(cfg)
    en["report"]["language"] = "en"
    ctx = load_context(en)
    html = render_html(ctx, build_sections(ctx))
    assert "<html lang='en'>" in html and "Summary" in html and "Zusammenfassung" not in html
    assert re.search(r"[+−]\d+\.\d\d percentage points", html)


def test_pdf_pages_render_to_png(project, tmp_path):
    _, cfg = project
    ctx = load_context(cfg)
    pages = render_pages_png(ctx, build_sections(ctx), tmp_path, ppi=20)
    assert len(pages) >= 3 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pages)


def test_fake_results_pass_disclosure(project):
    root, cfg = project
    assert check_results(root / "results", cfg["disclosure"]["min_cell"]) == []


def test_cli_registers_subcommands():
    from ifm_eval.cli import build_parser

    parser = build_parser()
    for cmd in ["descriptives", "figures", "tables", "report", "check-disclosure"]:
        args = parser.parse_args([cmd, "--config", "x.yaml"])
        assert args.config == "x.yaml" and callable(args.func)


def test_fake_config_is_valid():
    from ifm_eval.config import validate_config

    validate_config(fake_config(__import__("pathlib").Path("/tmp/x")))


# ---------------------------------------------------------------- planted truth
def test_truth_read_from_real_layout(project):
    from ifm_eval.outputs.truth import load_truth

    _, cfg = project
    truth = load_truth(cfg)
    assert truth is not None and truth.outcomes() == ["employment", "language", "training"]
    path = truth.path("rate_employment")
    assert path.loc[24] == pytest.approx(2.0) and path.loc[-3] == 0.0
    assert truth.sizes("half_posts").sum() == 37  # 40 municipalities, 3 never treated


def test_truth_comparison_uses_the_same_aggregate(project):
    from ifm_eval.outputs.truth import load_truth

    root, cfg = project
    tc = pd.read_csv(root / "results" / "tables" / "truth_comparison.csv")
    assert set(tc["outcome"]) == {"employment", "language", "training"}
    cs = tc[(tc["estimator"] == "callaway_santanna") & (tc["outcome"] == "employment")].iloc[0]
    # headline = "dynamic" (not the planted -50 "simple" row), truth = mean of the path over 0..24, not att_overall (99)
    assert cs["aggregation"] == "dynamic" and cs["estimate"] > 0
    path = load_truth(cfg).path("employment")
    assert cs["truth"] == pytest.approx(path.loc[0:24].mean())
    assert cs["z"] == pytest.approx((cs["estimate"] - cs["truth"]) / cs["se"], rel=1e-3)  # CSV: 6 significant digits
    assert (tc["truth"] < 50).all()
    # every main model has its matched truth: the planted path over its own treated observations
    assert len(tc) == 12 and tc["n_obs_truth"].gt(0).all()
    mr = pd.read_csv(root / "results" / "tables" / "main_results.csv")
    assert not mr.duplicated(["estimator", "outcome"]).any()


def test_event_study_draws_truth_in_every_panel(project):
    from ifm_eval.outputs.figures import event_study_figure, matched_truth_paths
    from ifm_eval.validation import load_cell_effects

    _, cfg = project
    est, meta = load_estimates(cfg["data"]["results_dir"])
    models = model_table(est, meta)
    truth = matched_truth_paths(est, models, meta, load_cell_effects(cfg))["employment"]
    assert set(truth) == {"callaway_santanna", "sun_abraham", "imputation", "twfe"}
    fig, n, _ = event_study_figure(est, models, "employment", "de", truth)
    legend = [t.get_text() for lg in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if lg for t in lg.get_texts()]
    assert "Wahrer Effekt, gleiche Beobachtungen und Gewichte" in legend
    panels = [ax for ax in fig.axes if ax.axison]
    assert len(panels) == 4  # one per estimator with event-time rows
    for ax in panels:
        assert any(len(line.get_ydata()) > 10 and max(line.get_ydata()) == pytest.approx(2.0) and line.get_linestyle() != "None"
                   for line in ax.get_lines()), ax.get_title()
    assert len({ax.get_ylim() for ax in panels}) == 1  # shared y-limits
    assert n and "Kommunen" in n


def test_cell_effects_and_matched_truth(project):
    """validation.cell_effects recovers the planted cell effect exactly; matched_truth
    averages it over the estimator's own cells (CS: its ATT(g,t) cells only)."""
    import numpy as np

    from ifm_eval.validation import cell_effects, load_cell_effects, matched_truth

    root, cfg = project
    cells = load_cell_effects(cfg)
    e = np.where(cells["g"] > 0, cells["t"] - cells["g"], -1)
    planted = np.where(e >= 0, 2.0 * np.minimum(1, (e + 1) / 12), 0.0)
    for o in ("rate_employment", "rate_training", "rate_language"):
        assert np.allclose(cells[f"tau_{o}"], planted)
        assert np.allclose(cells[f"cf_{o}"], cells[o] - planted)
    est, meta = load_estimates(cfg["data"]["results_dir"])
    rows = est[est["model"] == "callaway_santanna_employment"]
    m = matched_truth(cells, meta["callaway_santanna_employment"]["spec"], rows, meta["callaway_santanna_employment"])
    used = set(zip(rows["cohort"].dropna().astype(int), rows["time"].dropna().astype(int), strict=True))
    assert m.term == "dynamic" and m.path["n_obs"].sum() == sum(
        ((cells["g"] == g) & (cells["t"] == t)).sum() for g, t in used if t >= g)
    assert m.path["truth"].to_numpy() == pytest.approx(np.minimum(1, (m.path.index + 1) / 12) * 2.0)
    # real data: no cell effects
    assert load_cell_effects({**cfg, "data": {**cfg["data"], "source": "real"}}) is None
    with pytest.raises(KeyError):
        cell_effects(cells[["ags", "t", "month"]], pd.read_parquet(root / "synthetic" / "truth_counts.parquet")).pipe(
            lambda d: matched_truth(d, {"estimator": "twfe", "outcome": "rate_x"}, rows))


def test_robust_limits_ignore_exploding_estimates():
    import numpy as np

    from ifm_eval.outputs.figures import robust_limits

    est = [np.r_[np.linspace(-1, 5, 100), 50, 55]]
    lo, hi = robust_limits(est, [np.r_[est[0] - 1, est[0] + 1]], [np.zeros(1), np.array([6.0])])
    assert hi < 15 and lo < -1 and hi >= 6


def test_report_states_truth_of_same_aggregate(project):
    root, cfg = project
    html = report_paths(cfg)[0].read_text(encoding="utf-8")
    assert "Eingepflanzter wahrer Effekt derselben Größe" in html
    assert "Schätzung und eingepflanzter wahrer Effekt" in html
    assert "im Mittel der Monate 0 bis 24 nach dem Start" in html
    assert "N = 40 Kommunen" in html
    tc = pd.read_csv(root / "results" / "tables" / "truth_comparison.csv")
    t = tc[(tc["estimator"] == "callaway_santanna") & (tc["outcome"] == "employment")]["truth"].iloc[0]
    assert style.format_number(t, 2, "de", signed=True) + " Prozentpunkte" in html
    assert "95-%-Konfidenzintervall" in html and "95%-KI" not in html
