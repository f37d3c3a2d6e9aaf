"""Output stage on small fake inputs: descriptives, figures, tables, report (HTML + PDF),
each job run with exactly the files its rule declares (tests/test_outputs_fakes.py)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from test_outputs_fakes import (
    check_results,
    fake_config,
    make_fake_project,
    run_output_stages,
    stage_io,
)

from ifm_eval import paths as P
from ifm_eval.outputs import stages, style
from ifm_eval.outputs.descriptives import PUBLISHED
from ifm_eval.outputs.figures import load_estimates, model_table
from ifm_eval.outputs.report import (
    build_sections,
    load_context,
    render_html,
    render_pages_png,
    render_typst,
)
from ifm_eval.outputs.targets import (
    descriptive_figure_paths,
    figure_paths,
    report_paths,
    robustness_data_path,
    table_paths,
)
from ifm_eval.stage_io import StageIO, StageIOError
from ifm_eval.workflow_support import estimate_meta, estimate_tidy, model_names


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    root = tmp_path_factory.mktemp("outputs")
    cfg = make_fake_project(root, n=40)
    run_output_stages(cfg)
    return root, cfg


def estimates(cfg):
    return load_estimates(estimate_tidy(cfg), estimate_meta(cfg))


def context(cfg):
    """The report's Context from the report job's declared inputs (as stages.report)."""
    io = stage_io(cfg, "report")
    est, meta = load_estimates(io.input_list("tidy"), io.input_list("meta"))
    return load_context(cfg, est, meta, io.input_list("tables"), io.input_list("figures"),
                        io.optional_input("truth"), [io.input("panel")])


def html_of(ctx) -> str:
    return render_html(ctx, build_sections(ctx))


def section_text(ctx, key: str) -> str:
    sec = next(s for s in build_sections(ctx) if s.key == key)
    return "\n".join(b.content if isinstance(b.content, str) else "\n".join(b.content)
                     for b in sec.blocks if b.kind in ("p", "list"))


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
    est, meta = estimates(cfg)
    models = model_table(est, meta)
    for p in figure_paths(cfg, model_names(cfg)) + figure_paths(cfg, model_names(cfg), "pdf"):
        assert p.is_file(), p
    for fmt in ("csv", "tex", "html"):
        for p in table_paths(cfg, fmt):
            assert p.is_file(), p
    tex = (table_paths(cfg, "tex")[0]).read_text(encoding="utf-8")
    assert r"\toprule" in tex and r"\bottomrule" in tex and "SYNTHETISCHE" in tex
    # one main model per estimator x outcome
    assert models.groupby(["estimator", "outcome_key"])["is_main"].sum().eq(1).all()
    # the robustness panel's data: every specification with estimates, main ones by role
    rob = pd.read_csv(robustness_data_path(cfg))
    assert set(rob["model"]) == set(models["model"]) == set(model_names(cfg))
    assert set(rob.loc[rob["is_main"], "model"]) == set(models.loc[models["is_main"], "model"])


def test_stages_write_exactly_the_declared_outputs(project):
    """A job fails if its rule declares a file it does not write, or names an input it does
    not read (the DAG is the contract)."""
    _, cfg = project
    io = stage_io(cfg, "tables")
    csv = [p for p in io.output_list("csv") if p.stem != "balance"] + [io.output_list("csv")[0].with_name("not_a_table.csv")]
    with pytest.raises(StageIOError, match=r"written but not declared: \[.*balance\.csv.*declared but not written: \[.*not_a_table"):
        stages.tables(cfg, StageIO.of("tables", io.inputs, {**io.outputs, "csv": csv}))
    bad = StageIO.of("tables", {**io.inputs, "panel_extra": P.processed_path(cfg, "panel")}, io.outputs)
    with pytest.raises(StageIOError, match="unexpected input"):
        stages.tables(cfg, bad)


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
    ctx = context(cfg)
    src = render_typst(ctx, build_sections(ctx), {})
    page_rule = next(line for line in src.splitlines() if line.startswith("#set page("))
    assert "header:" in page_rule and "SYNTHETIC DATA" in page_rule and "background:" in page_rule
    real = copy.deepcopy(cfg)
    real["data"]["source"] = "raw"
    ctx_real = context(real)
    assert not ctx_real.synthetic and "truth_comparison" not in ctx_real.tables
    assert "SYNTHETIC" not in render_typst(ctx_real, build_sections(ctx_real), {})


def test_report_numbers_come_from_results(project):
    _, cfg = project
    ctx = context(cfg)
    mr = ctx.tables["main_results"]
    row = (mr["estimator"] == "callaway_santanna") & (mr["outcome"] == "employment")
    before = html_of(ctx)
    assert "+9,87" not in before
    ctx.tables["main_results"].loc[row, "estimate"] = 9.87
    after = html_of(ctx)
    assert "+9,87 Prozentpunkte" in after
    comp = ctx.tables["descriptives_comparison"]
    comp.loc[comp["item"] == "landratsamt", "replicated"] = 12.0
    assert "In 12\u00a0% der Kommunen" in html_of(ctx)


def test_language_switch(project):
    _, cfg = project
    en = copy.deepcopy(cfg)
    en["report"]["language"] = "en"
    html = html_of(context(en))
    assert "<html lang='en'>" in html and "Summary" in html and "Zusammenfassung" not in html
    assert re.search(r"[+−]\d+\.\d\d percentage points", html)


def test_pdf_pages_render_to_png(project, tmp_path):
    _, cfg = project
    ctx = context(cfg)
    pages = render_pages_png(ctx, build_sections(ctx), tmp_path, ppi=20)
    assert len(pages) >= 3 and all(p.read_bytes()[:4] == b"\x89PNG" for p in pages)


def test_fake_results_pass_disclosure(project, tmp_path):
    root, cfg = project
    assert check_results(root / "results", cfg["disclosure"]["min_cell"]) == []
    # the check_disclosure job over the declared files of the other output jobs
    files = [p for st in ("descriptives", "figures", "tables", "report") for ps in stage_io(cfg, st).outputs.values() for p in ps]
    files += [Path(p) for p in estimate_tidy(cfg)]
    stages.check_disclosure(cfg, StageIO.of("check_disclosure", {"files": files}, {"check": tmp_path / "disclosure.json"}))
    rep = json.loads((tmp_path / "disclosure.json").read_text(encoding="utf-8"))
    assert rep["passed"] and rep["files_scanned"] == len([p for p in files if p.suffix in {".csv", ".parquet"}])


def test_cli_registers_subcommands():
    from ifm_eval.cli import build_parser

    parser = build_parser()
    for cmd in ["descriptives", "figures", "tables", "report", "check-disclosure"]:
        args = parser.parse_args([cmd, "--config", "x.yaml", "--in", "tidy=a.parquet", "--in", "tidy=b.parquet",
                                  "--out", "html=r.html"])
        assert args.config == "x.yaml" and callable(args.command.handler)
        io = StageIO.parse(cmd, args.inputs, args.outputs)
        assert io.input_list("tidy") == [Path("a.parquet"), Path("b.parquet")] and io.output("html") == Path("r.html")


def test_fake_config_is_valid():
    from ifm_eval.config import validate_config

    validate_config(fake_config(Path("/tmp/x")))


# ---------------------------------------------------------------- main specification by role
def _with_roles(meta: dict, roles: dict[str, str]) -> dict:
    out = copy.deepcopy(meta)
    for m, r in roles.items():
        out[m]["spec"]["role"] = r
    return out


def test_main_specification_is_selected_by_role_not_name(project):
    """Swap the roles of callaway_santanna_employment (named like a main spec) and its
    _ant3 variant: tables, figures and report follow the metadata, not the names."""
    from ifm_eval.outputs.figures import headline_models, robustness_data
    from ifm_eval.outputs.report.context import main_row
    from ifm_eval.outputs.tables import all_specifications, main_results

    _, cfg = project
    est, meta = estimates(cfg)
    swapped = _with_roles(meta, {"callaway_santanna_employment": "robustness",
                                 "callaway_santanna_employment_ant3": "main"})
    models = model_table(est, swapped)
    mr = main_results(est, models)
    cs = mr[(mr["estimator"] == "callaway_santanna") & (mr["outcome"] == "employment")]
    assert cs["model"].tolist() == ["callaway_santanna_employment_ant3"]
    al = all_specifications(est, models, swapped).set_index("model")
    assert al.loc["callaway_santanna_employment_ant3", "main"] and not al.loc["callaway_santanna_employment", "main"]
    rob = robustness_data(est, models).set_index("model")
    assert rob.loc["callaway_santanna_employment_ant3", "is_main"] and not rob.loc["callaway_santanna_employment", "is_main"]
    assert headline_models(models)["employment"] == "callaway_santanna_employment_ant3"
    # the report reads the role from the metadata too (tables rebuilt consistently)
    ctx = context(cfg)
    ctx.meta = swapped
    ctx.models = models
    ctx.headline = headline_models(models)
    ctx.tables["main_results"] = mr
    assert main_row(ctx, "employment")["model"] == "callaway_santanna_employment_ant3"
    # a model without a role is an error, not silently "robustness"
    del swapped["imputation_language"]["spec"]["role"]
    with pytest.raises(ValueError, match="imputation_language"):
        model_table(est, swapped)


def test_headline_is_callaway_santanna_if_present(project):
    from ifm_eval.outputs.figures import headline_models

    _, cfg = project
    est, meta = estimates(cfg)
    assert headline_models(model_table(est, meta)) == {o: f"callaway_santanna_{o}" for o in ("employment", "language", "training")}
    no_cs = _with_roles(meta, {"callaway_santanna_language": "robustness"})
    heads = headline_models(model_table(est, no_cs))
    assert heads["language"] == "sun_abraham_language" and heads["employment"] == "callaway_santanna_employment"


# ---------------------------------------------------------------- methods text from the specs
def _main_spec_edit(ctx, **changes):
    for md in ctx.meta.values():
        if md["spec"]["role"] == "main":
            md["spec"].update(changes)
    return ctx


@pytest.mark.parametrize("lang", ["de", "en"])
def test_methods_text_follows_the_main_specs_cluster(project, lang):
    """The methods text states the clustering of the main specs' metadata: kreis ->
    verband_id changes it (and the N phrases), in both languages."""
    _, cfg = project
    c = copy.deepcopy(cfg)
    c["report"]["language"] = lang
    kreis, verband = {"de": ("nach Kreisen", "nach Verbänden"), "en": ("by districts", "by associations")}[lang]
    before = section_text(context(c), "strategy")
    assert kreis in before and verband not in before
    ctx = _main_spec_edit(context(c), cluster="verband_id")
    after = section_text(ctx, "strategy")
    assert verband in after and kreis not in after
    n_phrase = {"de": "Kommunen in 8 Verbänden", "en": "municipalities in 8 associations"}[lang]
    assert n_phrase in section_text(ctx, "summary") and n_phrase in section_text(ctx, "results")


@pytest.mark.parametrize(("changes", "de", "en"), [
    ({"control_group": "never_treated"}, "**Kontrollgruppe:** nie behandelte Kommunen",
     "**Control group:** never-treated municipalities"),
    ({"weights": "refugees_2017"}, "**Gewichtung:** Zahl der Geflüchteten der Kommune am 15.09.2017",
     "**Weights:** the municipality's number of refugees on 15 September 2017"),
    ({"covariates": ["log_population"]}, "**Kovariaten:** logarithmierte Einwohnerzahl.", "**Covariates:** log population."),
    ({"sample": "t >= 13"}, "**Stichprobe:** Monate 01/2016–12/2020.", "**Sample:** months 01/2016–12/2020."),
    ({"event_window": [-6, 12]}, "**Ereignisfenster:** −6 bis 12 Monate", "**Event window:** −6 to 12 months"),
    ({"anticipation": 2}, "**Antizipation:** 2 Monate", "**Anticipation:** 2 months"),
    ({"inference": {"type": "bootstrap", "draws": 499, "seed": 1}}, "**Inferenz:** Multiplikator-Bootstrap mit 499 Ziehungen",
     "**Inference:** multiplier bootstrap with 499 draws"),
])
def test_methods_text_states_every_aspect_of_the_main_spec(project, changes, de, en):
    _, cfg = project
    for lang, expected in (("de", de), ("en", en)):
        c = copy.deepcopy(cfg)
        c["report"]["language"] = lang
        assert expected not in section_text(context(c), "strategy")
        ctx = context(c)
        for md in ctx.meta.values():  # only Callaway & Sant'Anna may be not_yet/never_treated and bootstrapped
            if md["spec"]["role"] == "main" and (md["spec"]["estimator"] == "callaway_santanna" or
                                                 not {"control_group", "inference"} & set(changes)):
                md["spec"].update(copy.deepcopy(changes))
        assert expected in section_text(ctx, "strategy"), lang


def test_methods_text_names_which_estimators_differ(project):
    _, cfg = project
    ctx = context(cfg)
    for md in ctx.meta.values():
        if md["spec"]["role"] == "main" and md["spec"]["estimator"] == "imputation":
            md["spec"]["cluster"] = "verband_id"
    text = section_text(ctx, "strategy")
    assert "**Standardfehler:** geclustert nach Kreisen (8 Cluster) (Callaway & Sant'Anna, Sun & Abraham und TWFE dynamisch (naiv)); " \
           "Verbänden (8 Cluster) (Imputation (BJS))." in text
    # the start rule of the programme section comes from the main specs too
    assert "mindestens die Hälfte der für sie geförderten Stellen" in section_text(ctx, "programme")
    _main_spec_edit(ctx, treatment_rule="first_post")
    assert "der Monat, in dem die erste der für sie geförderten Stellen besetzt war" in section_text(ctx, "programme")


# ---------------------------------------------------------------- declared inputs, no fallbacks
def test_report_fails_on_missing_or_stale_inputs(project, tmp_path):
    from ifm_eval.outputs.report.context import ReportInputError

    _, cfg = project
    io = stage_io(cfg, "report")
    est, meta = load_estimates(io.input_list("tidy"), io.input_list("meta"))
    tables, figures = io.input_list("tables"), io.input_list("figures")
    args = (io.optional_input("truth"), [io.input("panel")])
    with pytest.raises(ReportInputError, match="missing table.*balance"):
        load_context(cfg, est, meta, [t for t in tables if t.stem != "balance"], figures, *args)
    with pytest.raises(ReportInputError, match="missing figure.*robustness"):
        load_context(cfg, est, meta, tables, [f for f in figures if f.stem != "robustness"], *args)
    with pytest.raises(ReportInputError, match="truth"):
        load_context(cfg, est, meta, tables, figures, None, args[1])
    # a declared table that is missing on disk
    gone = tmp_path / "balance.csv"
    with pytest.raises(FileNotFoundError):
        load_context(cfg, est, meta, [gone if t.stem == "balance" else t for t in tables], figures, *args)
    # a stale table naming a spec that is not configured (any more)
    mr = pd.read_csv(next(t for t in tables if t.stem == "main_results"))
    stale = tmp_path / "main_results.csv"
    pd.concat([mr, mr.head(1).assign(model="removed_spec")]).to_csv(stale, index=False)
    with pytest.raises(ReportInputError, match="removed_spec"):
        load_context(cfg, est, meta, [stale if t.stem == "main_results" else t for t in tables], figures, *args)
    # the estimates are exactly the declared files: a model not declared is not read
    est2, meta2 = load_estimates(io.input_list("tidy")[1:], io.input_list("meta")[1:])
    assert io.input_list("tidy")[0].stem not in set(est2["model"]) | set(meta2)
    with pytest.raises(ValueError, match="differ"):
        load_estimates(io.input_list("tidy"), io.input_list("meta")[1:])


def test_registered_section_reads_declared_inputs(project, tmp_path, monkeypatch):
    """A later stage's section declares what it reads; the report then requires exactly that."""
    import matplotlib.pyplot as plt

    from ifm_eval.outputs.report import Section, content, register_section
    from ifm_eval.outputs.report import context as C

    _, cfg = project
    monkeypatch.setattr(content, "SECTION_BUILDERS", list(content.SECTION_BUILDERS))
    table = tmp_path / "extra_table.csv"
    pd.DataFrame({"x": [1, 2, 3]}).to_csv(table, index=False)
    plot = tmp_path / "extra" / "plot.png"
    plot.parent.mkdir()
    fig, _ = plt.subplots()
    fig.savefig(plot)
    plt.close(fig)

    def sec_extra(ctx):
        return Section("extra", "extra").p(f"rows {len(ctx.tables['extra_table'])}").figure(ctx.figure("extra/plot"), "plot")

    io = stage_io(cfg, "report")
    est, meta = load_estimates(io.input_list("tidy"), io.input_list("meta"))
    args = (io.optional_input("truth"), [io.input("panel")])
    try:
        register_section(sec_extra, before="sec_limitations", tables=("extra_table",), figures=("extra/plot",))
        with pytest.raises(C.ReportInputError, match="missing table.*extra_table"):
            load_context(cfg, est, meta, io.input_list("tables"), io.input_list("figures") + [plot], *args)
        ctx = load_context(cfg, est, meta, io.input_list("tables") + [table], io.input_list("figures") + [plot], *args)
        keys = [sec.key for sec in build_sections(ctx)]
        assert keys.index("extra") == keys.index("limitations") - 1
        assert "rows 3" in html_of(ctx)
    finally:
        C.EXTRA_INPUTS.pop("sec_extra", None)
    with pytest.raises(C.ReportInputError, match="unexpected table.*extra_table"):
        load_context(cfg, est, meta, io.input_list("tables") + [table], io.input_list("figures"), *args)


def test_truth_only_on_stand_in_data(project):
    from ifm_eval.outputs.stages import _cells

    _, cfg = project
    panel = pd.read_parquet(P.processed_path(cfg, "panel"))
    real = copy.deepcopy(cfg)
    real["data"]["source"] = "raw"
    io = stage_io(cfg, "tables")
    no_truth = StageIO.of("tables", {k: v for k, v in io.inputs.items() if k != "truth_counts"}, io.outputs)
    assert _cells(real, no_truth, panel) is None
    with pytest.raises(StageIOError, match="real data"):
        _cells(real, io, panel)
    with pytest.raises(StageIOError, match="no truth_counts"):
        _cells(cfg, no_truth, panel)
    with pytest.raises(StageIOError, match="truth"):
        stages.report(real, stage_io(cfg, "report"))


def test_report_strings_file():
    """Every report text has a German and an English version with the same placeholders;
    every id the report code names exists, and every id is used."""
    from ifm_eval.outputs.report import strings

    texts = strings.strings()
    for key, entry in texts.items():
        assert set(entry) == {"de", "en"}, key
        assert strings.placeholders(entry["de"]) == strings.placeholders(entry["en"]), key
    src = "\n".join(p.read_text(encoding="utf-8") for p in Path(strings.__file__).parent.glob("*.py"))
    heads = {k.split(".")[0] for k in texts}
    named = set(re.findall(r'"([a-z][a-z0-9_]*(?:\.[a-z0-9_]+)+)"', src)) | set(re.findall(r'\.s\(\s*"(\w+)"', src))
    named = {k for k in named if k.split(".")[0] in heads}
    assert len(named) > 100
    assert not (missing := sorted(named - set(texts))), missing
    prefixes = set(re.findall(r'f"([\w.]+)\{', src))
    unused = sorted(k for k in texts if f'"{k}"' not in src and not any(k.startswith(p) for p in prefixes))
    assert not unused, unused
    with pytest.raises(KeyError):
        strings.text("summary.effect", "de", outcome="x")  # placeholders not all filled


def test_report_code_holds_no_report_text():
    """The report's words are in strings.yaml only: no German text in the report code."""
    import ast

    import ifm_eval.outputs.report as R

    for path in Path(R.__file__).parent.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert not re.search(r"[äöüÄÖÜß]", node.value) or "Württemberg" in node.value, (path.name, node.value[:60])


# ---------------------------------------------------------------- planted truth
def test_truth_read_from_real_layout(project):
    from ifm_eval.outputs.truth import load_truth

    _, cfg = project
    truth = load_truth(P.truth_path(cfg))
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
    path = load_truth(P.truth_path(cfg)).path("employment")
    assert cs["truth"] == pytest.approx(path.loc[0:24].mean())
    assert cs["z"] == pytest.approx((cs["estimate"] - cs["truth"]) / cs["se"], rel=1e-3)  # CSV: 6 significant digits
    assert (tc["truth"] < 50).all()
    # every main model has its matched truth: the planted path over its own treated observations
    assert len(tc) == 12 and tc["n_obs_truth"].gt(0).all()
    mr = pd.read_csv(root / "results" / "tables" / "main_results.csv")
    assert not mr.duplicated(["estimator", "outcome"]).any()
    assert set(tc["model"]) == set(mr["model"])


def _used(cfg, meta):
    return {m: pd.read_parquet(P.used_path(cfg, m)) for m in meta}


def _cells(cfg):
    from ifm_eval.validation import load_cell_effects

    return load_cell_effects(pd.read_parquet(P.processed_path(cfg, "panel")), P.truth_counts_path(cfg))


def test_event_study_draws_truth_in_every_panel(project):
    from ifm_eval.outputs.figures import event_study_figure, matched_truth_paths

    _, cfg = project
    est, meta = estimates(cfg)
    models = model_table(est, meta)
    truth = matched_truth_paths(est, models, meta, _cells(cfg), _used(cfg, meta))["employment"]
    assert set(truth) == {"callaway_santanna", "sun_abraham", "imputation", "twfe_dynamic"}
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

    from ifm_eval.validation import cell_effects, matched_truth

    _, cfg = project
    cells = _cells(cfg)
    e = np.where(cells["g"] > 0, cells["t"] - cells["g"], -1)
    planted = np.where(e >= 0, 2.0 * np.minimum(1, (e + 1) / 12), 0.0)
    for o in ("rate_employment", "rate_training", "rate_language"):
        assert np.allclose(cells[f"tau_{o}"], planted)
        assert np.allclose(cells[f"cf_{o}"], cells[o] - planted)
    est, meta = estimates(cfg)
    rows = est[est["model"] == "callaway_santanna_employment"]
    used_rows = pd.read_parquet(P.used_path(cfg, "callaway_santanna_employment"))
    m = matched_truth(cells, "rate_employment", used_rows, meta["callaway_santanna_employment"]["info"]["headline"])
    cells_gt = set(zip(rows["cohort"].dropna().astype(int), rows["time"].dropna().astype(int), strict=True))
    assert m.term == "dynamic" and m.path["n_obs"].sum() == sum(
        ((cells["g"] == g) & (cells["t"] == t) & (t - g <= 24)).sum() for g, t in cells_gt if t >= g)
    assert m.path["truth"].to_numpy() == pytest.approx(np.minimum(1, (m.path.index + 1) / 12) * 2.0)
    # the headline: the mean of the matched path over the reported event times
    assert m.overall == pytest.approx(float(m.path.loc[m.path.index <= 24, "truth"].mean()))
    with pytest.raises(KeyError):
        cell_effects(cells[["ags", "t", "month"]], pd.read_parquet(P.truth_counts_path(cfg))).pipe(
            lambda d: matched_truth(d, "rate_x", used_rows, None))


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


def test_landtag_chapter_reports_the_policy_numbers(project):
    """The chapter on the Landtag's five requests prints the numbers of the policy,
    heterogeneity and dose tables: the projection with its interval, the caseload, the
    funding not used, the subgroup estimates and their difference, the KPI verdicts, the
    cost per person (unbounded above when the effect's interval includes zero), and says
    that no dose spec is configured."""
    import html as H

    from test_outputs_fakes import FAKE_POLICY as F

    from ifm_eval.outputs.style import format_int, format_number

    root, cfg = project
    text = H.unescape(re.sub(r"<[^>]+>", " ", report_paths(cfg)[0].read_text(encoding="utf-8")))
    text = re.sub(r"\s+", " ", text).replace("\u00a0", " ")
    start = text.index("Fragen des Landtags Nach der Denkschrift")
    ch = text[start:start + 30000]
    def i(x):
        return format_int(x, "de").replace("\u00a0", " ")

    assert f"Im 12/2020 lebten {i(F['n_last'])} Geflüchtete" in ch
    assert f"im 12/2022 {i(F['n_end'])} (95-%-Prognoseintervall {i(F['lo'])} bis {i(F['hi'])})" in ch
    assert f"Heute kommen {format_number(F['case_now'], 0, 'de')} Geflüchtete auf eine geförderte Vollzeitstelle" in ch
    assert f"{format_number(F['eur_shortfall'] / 1e6, 1, 'de')} Mio. € von {format_number(F['eur_funded'] / 1e6, 1, 'de')} Mio. €" in ch
    assert "unter 20 %" in ch and "80–100 %" in ch and "zu wenige Kommunen" in ch
    assert "80–100 % gegenüber unter 20 %: −1,19 pp [−3,03; +0,66], p = 0,20 (Bootstrap 0,08). Geplant: −0,13 pp." in ch
    assert "Für den Moderator target_group ist in diesem Lauf keine Untergruppen-Spezifikation konfiguriert" in ch
    assert "In diesem Lauf ist keine Dosis-Spezifikation konfiguriert" in ch
    assert "Erstgespräche" in ch and "bildet nicht ab" in ch and "Vermittlung in Arbeit" in ch
    assert "Die Übergangskennzahlen (Vermittlung in Arbeit) folgen den Verwaltungsdaten" in ch
    assert i(round(F["cost_employment"])) in ch and "unbeschränkt" in ch
    assert "Beschäftigung (SvB): Das Konfidenzintervall des Effekts schließt null ein" in ch


def test_reliability_chapter_reports_the_monte_carlo_numbers(project):
    """The chapter's Monte Carlo table prints each coverage and rejection rate of
    mc_summary.csv as a percentage with its Monte Carlo SE, and marks the spec whose
    coverage misses the band as failing (K = 4 fake replicates per design)."""
    import html as H

    from ifm_eval.outputs.style import format_pct
    from ifm_eval.outputs.targets import montecarlo_outputs

    root, cfg = project
    summ = pd.read_csv(montecarlo_outputs(cfg)["summary"])
    text = H.unescape(re.sub(r"<[^>]+>", " ", report_paths(cfg)[0].read_text(encoding="utf-8")))
    text = re.sub(r"\s+", " ", text)
    start = text.index("Verlässlichkeit und Nachweisgrenzen Ob die")
    chapter = text[start:start + 20000]
    eff = summ[summ["design"] == "effects"]
    assert len(eff) == 12
    def pct(x):
        return format_pct(100 * x, 0, "de").replace("\u00a0", " ")

    for r in eff.itertuples():
        assert f"{pct(r.coverage)} (±{pct(r.coverage_mcse)})" in chapter
    for r in summ[summ["design"] == "zero"].itertuples():
        assert pct(r.rejection) in chapter
    assert "K = 4 je Szenario" in chapter
