"""The municipality x month panel: structure, dtypes, derived columns, side tables — on the
contract fixture, and the end-to-end checks on a small generated stand-in set:

- derived start month == planted one (truth.json, all three rules) for every municipality;
- aggregated counts == the generator's (truth_counts.parquet);
- the person-level export, aggregated, == the municipality-month stocks.
"""

from __future__ import annotations

import json
from pathlib import Path

import admin_fixtures as F
import numpy as np
import pandas as pd
import pytest
import wiring

from ifm_eval import panel, paths
from ifm_eval.config import validate_config
from ifm_eval.frame import load_frame
from ifm_eval.masking import expected_masked, poisson_masked_mean
from ifm_eval.sources import OUTCOME_SOURCES

REQUIRED = {
    "ags": "string",
    "month": "datetime64[ns]",
    "t": "int64",
    "kreis": "string",
    "verband_id": "string",
    "cohort_month": "datetime64[ns]",
    "g": "int64",
    "g_first_post": "int64",
    "g_all_posts": "int64",
    "event_time": "Int64",
    "treated_post": "int64",
    "refugees": "float64",
    "employed": "float64",
    "employed_lo": "float64",
    "employed_hi": "float64",
    "employed_masked": "bool",
    "in_training": "float64",
    "training_lo": "float64",
    "training_hi": "float64",
    "training_masked": "bool",
    "b1_holders": "float64",
    "b1_holders_filled": "float64",
    "b1_imputed": "bool",
    "rate_employment": "float64",
    "rate_training": "float64",
    "rate_language": "float64",
    "log_population": "float64",
    "urbanisation": "int64",
    "refugees_per_1000_2017": "float64",
    "density": "float64",
    "kreis_type": "string",
    "funded_vza": "float64",
    "vza_per_100_refugees": "float64",
    "organisation": "string",
    "capacity_before_vza": "float64",
    "capacity_after_vza": "float64",
    "capacity_change_vza": "float64",
    "plan_use_band": "string",
    "doc_mode": "string",
    "decision_maker": "string",
}


def _pipeline(cfg: dict, with_surveys: bool = False) -> pd.DataFrame:
    return wiring.upto_panel(cfg, surveys=with_surveys)


@pytest.fixture(scope="module")
def fx(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, pd.DataFrame]:
    root = tmp_path_factory.mktemp("panel")
    F.write_admin_fixture(root)
    cfg = F.config(root)
    return cfg, _pipeline(cfg)


def test_one_row_per_municipality_month(fx: tuple) -> None:
    cfg, p = fx
    n_months = 30  # 2017-01 .. 2019-06
    assert len(p) == 1101 * n_months
    assert not p.duplicated(["ags", "month"]).any()
    assert p["ags"].nunique() == 1101
    assert p["month"].min() == pd.Timestamp("2017-01-01") and p["month"].max() == pd.Timestamp(
        "2019-06-01"
    )
    assert p["t"].min() == 1 and p["t"].max() == n_months
    assert (
        p[["ags", "month"]].to_numpy()
        == p.sort_values(["ags", "month"])[["ags", "month"]].to_numpy()
    ).all()


def test_columns_and_dtypes(fx: tuple) -> None:
    _, p = fx
    for col, dtype in REQUIRED.items():
        assert col in p.columns, col
        assert str(p[col].dtype) == dtype or (
            dtype == "string" and isinstance(p[col].dtype, pd.StringDtype)
        ), (col, p[col].dtype)
    back = pd.read_parquet(paths.processed_path(fx[0], "panel"))
    assert list(back.columns) == list(p.columns)
    assert {c: str(back[c].dtype) for c in REQUIRED} == {c: str(p[c].dtype) for c in REQUIRED}


def test_treatment_columns(fx: tuple) -> None:
    _, p = fx
    row = p.loc[p["ags"] == F.STG].set_index("month")
    # half_posts start 2017-12 -> t = 12 in a panel starting 2017-01
    assert (
        (row["g"] == 12).all()
        and (row["g_first_post"] == 10).all()
        and (row["g_all_posts"] == 18).all()
    )
    assert row.at[pd.Timestamp("2017-11-01"), "event_time"] == -1
    assert row.at[pd.Timestamp("2017-12-01"), "treated_post"] == 1
    assert row.at[pd.Timestamp("2017-11-01"), "treated_post"] == 0
    never = p.loc[~p["applied"]]
    assert (
        (never["g"] == 0).all()
        and never["event_time"].isna().all()
        and never["cohort_month"].isna().all()
    )
    assert (never["treated_post"] == 0).all()
    assert never["verband_id"].str.startswith("none_").all()
    assert (p.loc[p["ags"] == F.A, "verband_id"] == "PIK-IM-0001").all()


def test_rates_and_masking(fx: tuple) -> None:
    _, p = fx
    ok = p["refugees"] > 0
    assert np.allclose(
        p.loc[ok, "rate_employment"], 100 * p.loc[ok, "employed"] / p.loc[ok, "refugees"]
    )
    assert p.loc[~ok, "rate_employment"].isna().all()
    m = p["employed_masked"]
    assert m.sum() > 20 and (p.loc[m, "employed_lo"] == 1).all() and (p.loc[m, "employed_hi"] == 2).all()
    # the default rule (expected): each masked cell is the Poisson conditional expectation
    # given the month's state-wide employment rate (from the midpoint values)
    assert p.loc[m, "employed"].between(1, 2).all() and p.loc[m, "employed"].nunique() > 10
    mid = np.where(m, 1.5, p["employed"])
    again = expected_masked(mid, m.to_numpy(), p["refugees"].to_numpy(), p["month"].to_numpy())
    assert np.allclose(again[m.to_numpy()], p.loc[m, "employed"], rtol=0, atol=1e-12)
    rep = p["in_training"].notna()
    assert rep.any()
    assert ((p["training_lo"] <= p["in_training"]) & (p["in_training"] <= p["training_hi"]))[
        rep
    ].all()


def test_poisson_masked_mean_is_the_conditional_expectation() -> None:
    """(1 + lam) / (1 + lam / 2) = E[Y | Y in {1, 2}] for Y ~ Poisson(lam), from the pmf."""
    from scipy.stats import poisson

    lam = np.array([1e-6, 0.05, 0.5, 1.0, 3.0, 20.0])
    p1, p2 = poisson.pmf(1, lam), poisson.pmf(2, lam)
    assert np.allclose(poisson_masked_mean(lam), (p1 + 2 * p2) / (p1 + p2), rtol=1e-12)


def test_b1_gap_fill() -> None:
    """Short gaps of the B1 stock: linear inside, nearest at the edges; longer gaps and
    rows without any report stay missing."""
    nan = np.nan
    wide = np.array(
        [
            [nan, 2.0, nan, 4.0, nan, nan, nan, 8.0, 9.0, nan],
            [nan, nan, nan, nan, nan, nan, nan, nan, nan, nan],
            [1.0, 1.0, nan, nan, 3.0, 3.0, 3.0, 3.0, 3.0, 3.0],
        ]
    )
    out = panel.fill_stock_gaps(wide, max_gap=2)
    np.testing.assert_allclose(out[0], [2, 2, 3, 4, nan, nan, nan, 8, 9, 9])
    assert np.isnan(out[1]).all()
    np.testing.assert_allclose(out[2], [1, 1, 5 / 3, 7 / 3, 3, 3, 3, 3, 3, 3])


def test_rate_language_uses_filled_b1(fx: tuple) -> None:
    _, p = fx
    ok = p["refugees"] > 0
    assert np.allclose(
        p.loc[ok, "rate_language"],
        100 * p.loc[ok, "b1_holders_filled"] / p.loc[ok, "refugees"],
        equal_nan=True,
    )
    rep = p["b1_holders"].notna()
    assert (p.loc[rep, "b1_holders_filled"] == p.loc[rep, "b1_holders"]).all()
    assert not p.loc[rep, "b1_imputed"].any()
    assert (p["b1_imputed"] == (~rep & p["b1_holders_filled"].notna())).all()


def test_covariates_and_moderators(fx: tuple) -> None:
    _, p = fx
    one = p.drop_duplicates("ags").set_index("ags")
    assert one.at[F.STG, "kreis_type"] == "Stadtkreis"
    assert one.at[F.A, "refugees_per_1000_2017"] == pytest.approx(
        1000 * 40 / one.at[F.A, "population"]
    )
    assert one.at[F.A, "funded_vza"] == 0.75
    assert one["log_population"].notna().all() and one["urbanisation"].notna().all()


def test_side_tables(fx: tuple) -> None:
    cfg, p = fx
    dd = pd.read_csv(paths.processed_path(cfg, "data_dictionary"))
    assert list(dd.columns) == ["name", "dtype", "unit", "source", "definition"]
    assert list(dd["name"]) == list(p.columns)
    assert dd["definition"].notna().all()
    lin = pd.read_csv(paths.processed_path(cfg, "lineage"))
    assert {"ingest_im_posts", "ingest_case_management", "treatment", "panel"} <= set(lin["stage"])
    assert (lin["rows_in"] >= 0).all()
    dq = pd.read_csv(paths.processed_path(cfg, "data_quality"))
    assert {"refugees_au", "employment_ba", "training", "language_b1"} <= set(dq["source"])
    agree = dq.loc[dq["table"] == "agreement"]
    assert (agree["share"] == 1).all() and len(agree) == 4  # export == outcome files (unmasked)


def test_deterministic(fx: tuple) -> None:
    cfg, p = fx
    again = panel.build_panel(
        cfg, load_frame(paths.processed_path(cfg, "municipalities")),
        pd.read_parquet(paths.processed_path(cfg, "treatment")),
        pd.read_parquet(paths.processed_path(cfg, "survey_harmonised")),
        {k: pd.read_parquet(paths.processed_path(cfg, k)) for k in OUTCOME_SOURCES})
    pd.testing.assert_frame_equal(p, again)


# --------------------------------------------------------------------------- stand-in data
@pytest.fixture(scope="module")
def synth(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("synth")
    cfg = validate_config(
        {
            "seed": 20170427,
            "data": {
                "source": "synthetic",
                "synthetic_dir": str(root / "synthetic"),
                "reference_dir": str(F.REFERENCE_DIR),
                "processed_dir": str(root / "processed"),
                "results_dir": str(root / "results"),
            },
            "panel": {},
            "synth": {"scale": 0.03},
        }
    )
    wiring.synth(cfg)
    p = _pipeline(cfg, with_surveys=True)
    truth = json.loads(paths.truth_path(cfg).read_text(encoding="utf-8"))
    counts = pd.read_parquet(Path(cfg["data"]["synthetic_dir"]) / "truth_counts.parquet")
    counts["month"] = pd.to_datetime(counts["month"] + "-01")
    return {"cfg": cfg, "panel": p, "truth": truth, "counts": counts}


def test_synth_start_month_equals_planted(synth: dict) -> None:
    t = pd.read_parquet(paths.processed_path(synth["cfg"], "treatment")).set_index("ags")
    munis = synth["truth"]["municipalities"]
    assert len(munis) == 1101 == len(t)
    wrong = []
    for m in munis:
        for rule, planted in m["start_month"].items():
            got = t.at[m["ags"], f"cohort_{rule}"]
            got = None if pd.isna(got) else got.strftime("%Y-%m")
            if got != planted:
                wrong.append((m["ags"], rule, planted, got))
    assert not wrong, wrong[:10]
    assert int((~t["applied"]).sum()) == sum(not m["applied"] for m in munis)
    planted = pd.Series({m["ags"]: m["organisation"] for m in munis})
    got = t["organisation"].reindex(planted.index)
    assert (got.fillna("NA") == planted.fillna("NA")).all()


def test_synth_counts_equal_generator(synth: dict) -> None:
    p, c = synth["panel"], synth["counts"]
    j = p.merge(c, on=["ags", "month"], how="outer", suffixes=("", "_true"), indicator=True)
    assert (j["_merge"] == "both").all()
    assert (j["refugees"] == j["refugees_true"]).all()
    um = ~j["employed_masked"]
    assert (j.loc[um, "employed"] == j.loc[um, "svb"]).all()
    assert ((j["employed_lo"] <= j["svb"]) & (j["svb"] <= j["employed_hi"])).all()
    assert (j["employed_masked"] == j["svb"].between(1, 2)).all()
    tr = j["ausbildung"] + j["weiterbildung"]
    ut = ~j["training_masked"]
    assert (j.loc[ut, "in_training"] == tr[ut]).all()
    assert ((j["training_lo"] <= tr) & (tr <= j["training_hi"])).all()
    rep = j["b1_holders"].notna()
    assert (j.loc[rep, "b1_holders"] == j.loc[rep, "b1"]).all()
    assert rep.mean() > 0.95  # ~1 % unreported in the stand-in data


def test_synth_person_export_reproduces_stocks(synth: dict) -> None:
    cm = pd.read_parquet(paths.processed_path(synth["cfg"], "case_management"))
    j = cm.merge(synth["counts"], on=["ags", "month"], suffixes=("", "_true"))
    assert len(j) == len(cm) == len(synth["counts"])
    for mine, theirs in (
        ("refugees", "refugees_true"),
        ("b1_holders", "b1"),
        ("in_ausbildung", "ausbildung"),
        ("in_weiterbildung", "weiterbildung"),
        ("employed", "svb"),
    ):
        assert (j[mine] == j[theirs]).all(), mine


def test_synth_panel_side_tables(synth: dict) -> None:
    cfg, p = synth["cfg"], synth["panel"]
    assert len(p) == 1101 * 72
    dq = pd.read_csv(paths.processed_path(cfg, "data_quality"))
    agree = dq.loc[dq["table"] == "agreement"]
    assert (agree["share"] == 1).all()
    lin = pd.read_csv(paths.processed_path(cfg, "lineage"))
    assert {"ingest_case_management", "treatment", "panel"} <= set(lin["stage"])


def test_synth_survey_moderators_merged(synth: dict) -> None:
    one = synth["panel"].drop_duplicates("ags")
    for col in (
        "capacity_before_vza",
        "capacity_change_vza",
        "plan_use_band",
        "doc_mode",
        "decision_maker",
    ):
        assert one[col].notna().mean() > 0.4, col
    dq = pd.read_csv(paths.processed_path(synth["cfg"], "data_quality"))
    assert (dq["table"] == "item_nonresponse").any()
