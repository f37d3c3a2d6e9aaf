"""The fast replicate path: a stand-in world straight to the panel, without writing and
re-parsing the native raw files.

:func:`ingested_tables` returns, for one :class:`~ifm_eval.synth.World`, the frames the
ingest stage would read from the stand-in files (funding members, posts, the four monthly
outcome sources) — with the same rounding the writers apply (VZÄ to 2 and shares to 4
decimals, as written), the same masking (BA ``*`` for 1-2 persons, read by
``panel.masked_count_rule``, ``-`` for 0) and the same unreported B1 months (the one draw of
:func:`ifm_eval.synth.writers.outcome_values`). :func:`panel_in_memory` then runs the real
treatment and panel code (:func:`ifm_eval.treatment.build_treatment`,
:func:`ifm_eval.panel.build_panel`) on them. A test requires the result to equal the
file-based panel of the same seed cell by cell, except for the survey moderators (the
in-memory panel has no surveys; those columns are missing) — see
:data:`SURVEY_COLUMNS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ifm_eval.lineage import Lineage
from ifm_eval.reference import municipalities
from ifm_eval.synth import World, rng_for
from ifm_eval.synth.writers import outcome_values

#: Panel columns that come from the surveys (missing in the in-memory panel).
SURVEY_COLUMNS = ("capacity_before_vza", "capacity_after_vza", "capacity_change_vza", "plan_use_band",
                  "doc_mode", "decision_maker", "organisation_survey", "ts_ausreisepflichtig", "target_group",
                  "capacity_per_100_refugees")
#: Read value of a masked BA cell ('*' = 1 or 2 persons) by ``panel.masked_count_rule``.
MASKED_VALUE = {"midpoint": 1.5, "lower": 1.0, "upper": 2.0, "expected": 1.5}
#: Tolerance of the posts reader for shares of one post summing to 1.
SHARE_TOL = 0.01


def _as_written(x: np.ndarray, decimals: int) -> np.ndarray:
    """Values as the writers print them (``f"{x:.{d}f}"``) and the readers parse them."""
    return np.array([float(f"{v:.{decimals}f}") for v in np.asarray(x, dtype=float)])


def _masked(values: np.ndarray, rule: str) -> dict[str, np.ndarray]:
    v = np.asarray(values, dtype=float)
    star = (v >= 1) & (v <= 2)
    return {"": np.where(star, MASKED_VALUE[rule], v), "_lo": np.where(star, 1.0, v),
            "_hi": np.where(star, 2.0, v), "_masked": star}


def ingested_tables(world: World, cfg: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """Funding members, posts and the monthly outcome sources of ``world`` as ingested."""
    st, pr = world.structure, world.persons
    m = st.muni
    v = st.verbaende.set_index("verband_id")
    mem = m.loc[m["applied"]].sort_values("ags")
    members = pd.DataFrame({
        "antrag_nr": mem["verband_id"].to_numpy(), "ags": mem["ags"].to_numpy(),
        "refugees_2017_09_15": mem["refugees_20170915"].astype("int64").to_numpy(),
        "vza_share": [round(float(x), 2) for x in mem["funded_vza"]],
        "verband": v.loc[mem["verband_id"], "verband_name"].to_numpy(),
        "art_antragsteller": v.loc[mem["verband_id"], "applicant_type"].to_numpy(),
    })
    p = st.posts.sort_values(["post_id", "ags"])
    posts = pd.DataFrame({
        "stellen_id": p["post_id"].to_numpy(), "antrag_nr": p["verband_id"].to_numpy(),
        "ags": p["ags"].to_numpy(), "employer_type": p["employer"].to_numpy(),
        "employer_name": p["traeger_name"].to_numpy(),
        "beginn": pd.to_datetime(p["start"].dt.strftime("%Y-%m-%d")).to_numpy(),
        "vza_post": _as_written(p["vza_post"].to_numpy(), 2),
        "share": _as_written(p["share"].to_numpy(), 4),
    })
    ssum = posts.groupby("stellen_id")["share"].transform("sum")
    off = (ssum - 1).abs() > SHARE_TOL
    posts.loc[off, "share"] = posts.loc[off, "share"] / ssum[off]
    df, unrep = outcome_values(st, pr, rng_for(world.seed, "outcomes"))
    month = pd.to_datetime(df["month"] + "-01").to_numpy()
    base = {"ags": df["ags"].to_numpy(), "month": month}
    rule = cfg["panel"]["masked_count_rule"]
    emp = {f"employed{k}": a for k, a in _masked(df["svb"], rule).items()}
    au, we = _masked(df["ausb"], rule), _masked(df["weiter"], rule)
    tr = {**{f"in_ausbildung{k}": a for k, a in au.items()}, **{f"in_weiterbildung{k}": a for k, a in we.items()},
          "in_training": au[""] + we[""], "in_training_lo": au["_lo"] + we["_lo"],
          "in_training_hi": au["_hi"] + we["_hi"], "in_training_masked": au["_masked"] | we["_masked"]}
    return {
        "funding_members": members,
        "im_posts": posts,
        "refugees_au": pd.DataFrame({**base, "refugees": df["ref"].to_numpy(dtype=float)}),
        "employment_ba": pd.DataFrame({**base, **emp}),
        "training": pd.DataFrame({**base, **tr}),
        "language_b1": pd.DataFrame({**base, "b1_holders": np.where(unrep, np.nan, df["b1"].to_numpy(dtype=float))}),
    }


def no_survey_table(frame: pd.DataFrame) -> pd.DataFrame:
    """A harmonised survey table without any answer (every moderator missing)."""
    from ifm_eval.panel import SURVEY_MODERATORS

    tab = pd.DataFrame({"ags": frame["ags"].astype("str").to_numpy()})
    for name in SURVEY_MODERATORS:
        tab[name] = (np.full(len(tab), np.nan) if name.endswith("_vza")
                     else pd.array([pd.NA] * len(tab), dtype="str"))
    return tab


def panel_in_memory(world: World, cfg: dict[str, Any], frame: pd.DataFrame,
                    tables: dict[str, pd.DataFrame] | None = None) -> pd.DataFrame:
    """The municipality x month panel of ``world`` (see the module docstring); ``frame`` is
    the parsed Destatis extract the world was drawn on."""
    from ifm_eval.panel import build_panel
    from ifm_eval.sources import OUTCOME_SOURCES
    from ifm_eval.treatment import build_treatment

    tables = tables or ingested_tables(world, cfg)
    munis = municipalities(frame)
    lineage = Lineage("in_memory")
    treat = build_treatment(cfg, munis, tables["funding_members"], tables["im_posts"], lineage)
    panel = build_panel(cfg, munis, treat, no_survey_table(munis), {k: tables[k] for k in OUTCOME_SOURCES},
                        lineage)
    return panel.drop(columns=[c for c in SURVEY_COLUMNS if c in panel.columns])
