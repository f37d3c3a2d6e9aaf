"""IM start month by the three rules, never-treated coding and intensity."""

from __future__ import annotations

from pathlib import Path

import admin_fixtures as F
import pandas as pd
import pytest
import wiring

from ifm_eval import paths, treatment
from ifm_eval.frame import load_frame
from ifm_eval.lineage import Lineage


def _posts(rows: list[tuple[str, str, str]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["ags", "stellen_id", "beginn"]).assign(
        beginn=lambda d: pd.to_datetime(d["beginn"])
    )


@pytest.mark.parametrize(
    "starts,half,first,last",
    [
        (["2017-09-15"], "2017-09", "2017-09", "2017-09"),
        (["2017-09-01", "2018-03-01"], "2017-09", "2017-09", "2018-03"),  # 1 of 2 = half
        (["2017-10-01", "2017-12-14", "2018-06-01"], "2017-12", "2017-10", "2018-06"),  # 2 of 3
        (["2018-01-31", "2017-11-02", "2018-05-01", "2018-02-01"], "2018-01", "2017-11", "2018-05"),
        (["2017-10-01", "2017-10-30", "2018-01-01"], "2017-10", "2017-10", "2018-01"),  # same month
    ],
)
def test_start_month_rules(starts: list[str], half: str, first: str, last: str) -> None:
    p = _posts([("08111000", f"S{i:05d}", s) for i, s in enumerate(starts)])
    sm = treatment.start_months(p).iloc[0]
    assert sm["n_posts"] == len(starts)
    assert sm["start_half_posts"] == pd.Timestamp(half + "-01")
    assert sm["start_first_post"] == pd.Timestamp(first + "-01")
    assert sm["start_all_posts"] == pd.Timestamp(last + "-01")


def test_rule_counts_distinct_posts() -> None:
    """A post listed twice for the same municipality counts once."""
    p = _posts(
        [
            ("08111000", "S00001", "2017-09-01"),
            ("08111000", "S00001", "2017-09-01"),
            ("08111000", "S00002", "2018-03-01"),
            ("08111000", "S00003", "2018-04-01"),
        ]
    )
    sm = treatment.start_months(p).iloc[0]
    assert sm["n_posts"] == 3 and sm["start_half_posts"] == pd.Timestamp("2018-03-01")


@pytest.fixture(scope="module")
def fixture_cfg(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("treat")
    F.write_admin_fixture(root)
    cfg = F.config(root)
    for key in ("funding_applications", "im_posts"):
        wiring.ingest(cfg, key)
    return cfg


def test_treatment_table(fixture_cfg: dict) -> None:
    t = wiring.treatment(fixture_cfg)
    assert len(t) == 1101 and t["ags"].is_unique and t["ags"].is_monotonic_increasing
    tt = t.set_index("ags")
    for ags, (half, first, last) in F.EXPECTED_START.items():
        assert tt.at[ags, "cohort_half_posts"] == pd.Timestamp(half + "-01")
        assert tt.at[ags, "cohort_first_post"] == pd.Timestamp(first + "-01")
        assert tt.at[ags, "cohort_all_posts"] == pd.Timestamp(last + "-01")
        assert tt.at[ags, "cohort_month"] == tt.at[ags, "cohort_half_posts"]
    never = t.loc[~t["applied"]]
    assert (
        len(never) == 1097 and never["never_treated"].all() and never["cohort_month"].isna().all()
    )
    assert (never["funded_vza"] == 0).all() and never["vza_per_100_refugees"].isna().all()
    assert tt.at[F.A, "vza_per_100_refugees"] == pytest.approx(100 * 0.75 / 40)
    assert tt.at[F.A, "posts_vza"] == pytest.approx(1.0 * 0.5 + 0.5 * 1.0)
    assert tt.at[F.C, "organisation"] == "landratsamt"  # LRA applicant contracting a Träger
    assert tt.at[F.C, "employer_type"] == "Freier Träger"
    assert tt.at[F.STG, "organisation"] == "gemeinde"
    assert tt.at[F.B, "organisation"] == "landratsamt"
    lin = pd.read_csv(paths.lineage_path(fixture_cfg, "treatment"))
    assert "never applied" in set(lin["step"])


@pytest.mark.parametrize("rule", ["first_post", "all_posts"])
def test_configured_rule(fixture_cfg: dict, rule: str) -> None:
    cfg = {**fixture_cfg, "panel": {**fixture_cfg["panel"], "treatment_rule": rule}}
    t = treatment.build_treatment(
        cfg,
        load_frame(paths.processed_path(cfg, "municipalities")),
        pd.read_parquet(paths.processed_path(cfg, "funding_members")),
        pd.read_parquet(paths.processed_path(cfg, "im_posts")),
        Lineage("t"),
    )
    tt = t.set_index("ags")
    idx = {"first_post": 1, "all_posts": 2}[rule]
    for ags, exp in F.EXPECTED_START.items():
        assert tt.at[ags, "cohort_month"] == pd.Timestamp(exp[idx] + "-01")
    assert (t["treatment_rule"] == rule).all()


def test_member_without_posts_is_never_treated(fixture_cfg: dict, tmp_path: Path) -> None:
    members = pd.read_parquet(paths.processed_path(fixture_cfg, "funding_members"))
    posts = pd.read_parquet(paths.processed_path(fixture_cfg, "im_posts"))
    posts = posts.loc[posts["ags"] != F.C]
    lin = Lineage("t")
    t = treatment.build_treatment(fixture_cfg, load_frame(paths.processed_path(fixture_cfg, "municipalities")), members, posts, lin)
    row = t.set_index("ags").loc[F.C]
    assert row["applied"] and row["applied_no_posts"] and row["never_treated"]
    assert any(r.step == "members without posts" for r in lin.records)
