"""``snakemake --report`` works on the tiny workflow run: the zip holds the report HTML with
the categories and captions of the final tables and figures."""

from __future__ import annotations

import zipfile

from conftest import run_snakemake


def test_snakemake_report_zip(small_workflow):
    work, _, _ = small_workflow
    out = work / "report.zip"
    run_snakemake(work, "--report", str(out))
    assert out.is_file()
    with zipfile.ZipFile(out) as zf:
        names = zf.namelist()
        html_names = [n for n in names if n.endswith("report.html")]
        assert html_names, names[:20]
        text = zf.read(html_names[0]).decode("utf-8", errors="replace")
        blob = text + "\n".join(
            zf.read(n).decode("utf-8", errors="replace")
            for n in names
            if n.endswith((".js", ".json"))
        )
        # final outputs are in the zip
        for stem in (
            "event_study_employment.png",
            "robustness.png",
            "main_results.html",
            "report_de.html",
        ):
            assert any(n.endswith(stem) for n in names), stem
    # categories and captions (from workflow/report/*.rst)
    for category in (
        "0 Bericht",
        "1 Umsetzung (Kurzbericht)",
        "2 Ergebnisse",
        "3 Daten",
        "4 Tabellen",
    ):
        assert category in blob, category
    for caption in (
        "Ereignisstudie",
        "Abschlussbericht",
        "Hauptergebnisse",
        "eingepflanzten wahren Effekt",
    ):
        assert caption in blob, caption
