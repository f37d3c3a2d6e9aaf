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
    html = (root / "results" / "tables" / "descriptives_comparison.html").read_text(encoding="utf-8")
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
        style.finish_figure(fig, tmp_path / "f", synthetic=True, source="Test", n=12, formats=("svg",))
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
    for title in ["Zusammenfassung", "Umsetzung", "Empirische Strategie", "Ergebnisse", "Robustheit", "Grenzen", "Anhang", "Herkunft"]:
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
