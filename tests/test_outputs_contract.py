"""The DAG is the contract: what config.yaml configures is exactly what the outputs show.

Regression test for "a spec removed from config.yaml stays in the report": on a copy of the
session's tiny workflow run (tests/conftest.py ``small_workflow``; copying keeps Snakemake's
metadata, so nothing reruns by itself) a robustness spec is added and the main Callaway &
Sant'Anna spec clustered by Verband; after ``snakemake`` the spec is in the tables, the
robustness figure's inputs and data and the report, and the report's methods text says
"Verbänden". Then the spec is removed again (its estimate files stay on disk, as Snakemake
leaves them) and the clustering reset: after ``snakemake`` the spec is gone from
all_specifications.csv, main_results.csv, the robustness figure's inputs and data and the
report HTML, and the methods text says "Kreisen" again. Two incremental runs (~1 min).
"""

from __future__ import annotations

import copy
import re
import shutil

import pandas as pd
import pytest
import yaml
from conftest import run_snakemake

PROBE = "rob_contract_probe"
MAIN_CS = "callaway_santanna_rate_employment"
#: the main specs of the tiny workflow (tests/conftest.py)
MAIN = ("callaway_santanna_rate_employment", "imputation_rate_employment", "twfe_static_rate_employment")


def _job_stats(proc) -> dict[str, int]:
    text = proc.stdout + proc.stderr
    block = text[text.index("Job stats:"):]
    return {k: int(v) for k, v in re.findall(r"^(\w+)\s+(\d+)$", block.split("\n\n")[0], re.M)}


def _section(html: str, key: str) -> str:
    return re.search(rf"<section id='{key}'>(.*?)</section>", html, re.S).group(1)


def _figure_inputs(work, output: str) -> list[str]:
    """The input files of ``output`` in the current DAG (``snakemake --detailed-summary``)."""
    proc = run_snakemake(work, "--detailed-summary")
    head, *rows = [line.split("\t") for line in proc.stdout.splitlines() if "\t" in line]
    col = head.index("input-file(s)")
    row = next(r for r in rows if r[0] == output)
    return row[col].split(",")


@pytest.fixture(scope="module")
def contract_run(small_workflow, tmp_path_factory):
    src, cfg, _ = small_workflow
    work = tmp_path_factory.mktemp("contract") / "work"
    shutil.copytree(src, work, symlinks=True, ignore=shutil.ignore_patterns("report.zip"))
    return work, cfg


def _write_config(work, cfg, probe: bool, cluster: str) -> dict:
    c = copy.deepcopy(cfg)
    for name in MAIN:  # every main spec clustered alike: the methods text states one level
        c["models"][name] = {**c["models"][name], "role": "main", "cluster": cluster}
    if probe:
        c["models"][PROBE] = {**c["models"]["imputation_rate_employment"], "anticipation": 1, "role": "robustness"}
    (work / "config.yaml").write_text(yaml.safe_dump(c), encoding="utf-8")
    return c


def _outputs(work):
    tables = work / "results" / "tables"
    return (pd.read_csv(tables / "all_specifications.csv"), pd.read_csv(tables / "main_results.csv"),
            pd.read_csv(work / "results" / "figures" / "robustness.csv"),
            (work / "results" / "report" / "report_de.html").read_text(encoding="utf-8"))


def test_added_spec_appears_and_removed_spec_disappears(contract_run):
    work, cfg = contract_run
    probe_tidy = f"results/estimates/{PROBE}.parquet"

    # 1. add a robustness spec, cluster the main CS spec by Verband
    _write_config(work, cfg, probe=True, cluster="verband_id")
    stats = _job_stats(run_snakemake(work))
    assert stats.get("estimate") == 1 + len(MAIN), stats  # the new spec and the edited main specs, nothing else
    assert not {"synth", "panel", "treatment", "descriptives"} & set(stats), stats
    al, mr, rob, html = _outputs(work)
    assert PROBE in set(al["model"]) and not al.loc[al["model"] == PROBE, "main"].any()
    assert PROBE not in set(mr["model"]) and set(mr["model"]) == set(MAIN)  # main by role only
    assert PROBE in set(rob["model"])
    assert probe_tidy in _figure_inputs(work, "results/figures/robustness.png")
    assert PROBE in html
    strategy = _section(html, "strategy")
    assert "geclustert nach Verbänden" in strategy and "Kreisen" not in strategy
    assert "Kommunen in" in _section(html, "summary") and "Verbänden" in _section(html, "summary")

    # 2. remove it again (its estimate files stay on disk) and reset the clustering
    _write_config(work, cfg, probe=False, cluster="kreis")
    stats = _job_stats(run_snakemake(work))
    assert stats.get("estimate") == len(MAIN), stats  # only the edited main specs: removing a spec estimates nothing
    assert (work / probe_tidy).is_file() and (work / f"results/estimates/{PROBE}.json").is_file()
    al, mr, rob, html = _outputs(work)
    assert PROBE not in set(al["model"]) and set(al["model"]) == set(cfg["models"])
    assert PROBE not in set(mr["model"])
    assert PROBE not in set(rob["model"]) and set(rob["model"]) == set(cfg["models"])
    inputs = _figure_inputs(work, "results/figures/robustness.png")
    assert probe_tidy not in inputs and not any(PROBE in p for p in inputs)
    assert f"results/estimates/{MAIN_CS}.parquet" in inputs
    assert PROBE not in html
    strategy = _section(html, "strategy")
    assert "geclustert nach Kreisen" in strategy and "Verbänden" not in strategy
    assert "Nothing to be done" in (lambda p: p.stdout + p.stderr)(run_snakemake(work, "-n"))
