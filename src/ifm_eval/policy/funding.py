"""Funding against posts actually filled (Landtag requests 2 and 4: unspent funds,
funding rates).

Definitions
-----------
*Funded VZÄ* of a municipality in month ``m``: the full-time equivalents the approval
attributes to it (``funding_members.vza_share``) from the month of the approval
(``funding_verbaende.bewilligt_am``) on, and 0 before. The deliveries carry no end of the
approval; the programme ran (with extensions) beyond the panel end, so funded VZÄ stay at
the approved level to the panel end.

*Filled VZÄ* in month ``m``: the sum over posts of ``vza_post x share x`` the fraction of
the days of ``m`` on which the post ran (``beginn`` to ``ende`` inclusive; no ``ende`` =
still running). A post of 0.8 VZÄ serving the municipality with share 0.5 from 1 March
2018 fills 0.4 VZÄ in every month from March 2018; started on 16 March it fills
0.4 x 16/31 in March.

*Unfilled share* (net) = 1 - filled / funded. Because one municipality's posts may exceed
its funded VZÄ while another's fall short, the *shortfall* ``max(funded - filled, 0)`` is
also summed per municipality and — as a Verband pools its funds — per Verband. The
shortfall in VZÄ-months times the funding per VZÄ-month is the proxy for funds not used
for IM posts (*Ausgabereste*); the true outturn (payments, refunds) is not in the data.

*Funding per VZÄ-year*: ``foerdersumme_eur / (vza_bewilligt x funding_period_months / 12)``;
``funding_period_months`` (config ``policy``, default 24: the two years of the Pakt) is the
period the approved sum pays for — an assumption the delivery does not state. € amounts
per month are funded VZÄ times the Verband's funding per VZÄ-month, i.e. the approved rate
is assumed to continue to the panel end.

*Time to fill*: months from the approval month to the first month in which filled VZÄ
reach ``p`` times the approved VZÄ (``p`` in ``fill_thresholds``), and to the start of the
first post; negative values mean posts that started before the approval (retroactive
funding). Municipalities that never reach ``p`` by the panel end are censored (NaN, flag).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

MEMBER_COLUMNS = ("ags", "verband_id", "vza_share")
VERBAND_COLUMNS = ("verband_id", "vza_bewilligt", "foerdersumme_eur", "bewilligt_am")
POST_COLUMNS = ("stellen_id", "ags", "vza_post", "share", "beginn", "ende")


def require_columns(df: pd.DataFrame, columns: tuple[str, ...] | list[str], source: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing} (has {list(df.columns)})")


def _check_positive(df: pd.DataFrame, col: str, source: str, allow_zero: bool = False) -> pd.Series:
    v = pd.to_numeric(df[col], errors="coerce")
    bad = v.isna() | ((v < 0) if allow_zero else (v <= 0))
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{source}: row {i}, column {col!r}: {df[col].iloc[i]!r} is not a "
                         f"{'non-negative' if allow_zero else 'positive'} number")
    return v.astype(float)


def _days(ts: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    return np.asarray(pd.DatetimeIndex(ts).values.astype("datetime64[D]").astype(np.int64))


def filled_vza(posts: pd.DataFrame, months: pd.DatetimeIndex, source: str = "posts") -> pd.DataFrame:
    """Day-weighted filled VZÄ per municipality and month (``ags, month, filled_vza,
    n_posts``: posts running on at least one day of the month)."""
    require_columns(posts, POST_COLUMNS, source)
    vza = _check_positive(posts, "vza_post", source).to_numpy()
    share = _check_positive(posts, "share", source).to_numpy()
    beg = pd.to_datetime(posts["beginn"])
    end = pd.to_datetime(posts["ende"])
    if beg.isna().any():
        i = int(np.flatnonzero(beg.isna().to_numpy())[0])
        raise ValueError(f"{source}: row {i}, column 'beginn': no start date")
    bad = end.notna() & (end < beg)
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"{source}: row {i} (stellen_id {posts['stellen_id'].iloc[i]}): "
                         f"'ende' {end.iloc[i]:%Y-%m-%d} before 'beginn' {beg.iloc[i]:%Y-%m-%d}")
    months = pd.DatetimeIndex(months)
    ms = _days(months)
    me = _days(months + pd.offsets.MonthBegin(1))
    b = _days(beg.dt.normalize())
    e = np.where(end.isna(), np.iinfo(np.int64).max // 2, _days(end.fillna(beg).dt.normalize()) + 1)
    lo = np.maximum(b[:, None], ms[None, :])
    hi = np.minimum(e[:, None], me[None, :])
    frac = np.clip(hi - lo, 0, None) / (me - ms)[None, :]
    contrib = frac * (vza * share)[:, None]
    ags = posts["ags"].astype(str).to_numpy()
    codes, uniq = pd.factorize(ags, sort=True)
    n_a, n_m = len(uniq), len(months)
    tot = np.zeros((n_a, n_m))
    cnt = np.zeros((n_a, n_m))
    np.add.at(tot, codes, contrib)
    np.add.at(cnt, codes, (frac > 0).astype(float))
    return pd.DataFrame({"ags": np.repeat(uniq, n_m), "month": np.tile(months, n_a),
                         "filled_vza": tot.ravel(), "n_posts": cnt.ravel().astype(int)})


def verband_rates(verbaende: pd.DataFrame, period_months: int, source: str = "funding_verbaende") -> pd.DataFrame:
    """Per Verband: approval month and € per funded VZÄ-month / VZÄ-year."""
    require_columns(verbaende, VERBAND_COLUMNS, source)
    v = verbaende.copy()
    v["vza_bewilligt"] = _check_positive(v, "vza_bewilligt", source)
    v["foerdersumme_eur"] = _check_positive(v, "foerdersumme_eur", source, allow_zero=True)
    appr = pd.to_datetime(v["bewilligt_am"])
    if appr.isna().any():
        i = int(np.flatnonzero(appr.isna().to_numpy())[0])
        raise ValueError(f"{source}: row {i}, column 'bewilligt_am': no approval date")
    if v["verband_id"].duplicated().any():
        i = int(np.flatnonzero(v["verband_id"].duplicated().to_numpy())[0])
        raise ValueError(f"{source}: row {i}: verband_id {v['verband_id'].iloc[i]} occurs twice")
    v["approval_month"] = appr.dt.to_period("M").dt.to_timestamp()
    v["eur_per_vza_month"] = v["foerdersumme_eur"] / (v["vza_bewilligt"] * float(period_months))
    v["eur_per_vza_year"] = 12.0 * v["eur_per_vza_month"]
    keep = ["verband_id", "vza_bewilligt", "foerdersumme_eur", "approval_month", "eur_per_vza_month",
            "eur_per_vza_year"]
    return v[keep + [c for c in ("art_antragsteller",) if c in v.columns]]


def funded_vza(members: pd.DataFrame, rates: pd.DataFrame, months: pd.DatetimeIndex,
               source: str = "funding_members") -> pd.DataFrame:
    """Funded VZÄ and € per municipality and month (``ags, verband_id, month, funded_vza,
    eur_funded``)."""
    require_columns(members, MEMBER_COLUMNS, source)
    m = members[list(MEMBER_COLUMNS)].copy()
    m["vza_share"] = _check_positive(m, "vza_share", source, allow_zero=True)
    unknown = ~m["verband_id"].isin(rates["verband_id"])
    if unknown.any():
        i = int(np.flatnonzero(unknown.to_numpy())[0])
        raise ValueError(f"{source}: row {i}: verband_id {m['verband_id'].iloc[i]!r} has no application")
    m = m.merge(rates[["verband_id", "approval_month", "eur_per_vza_month"]], on="verband_id", how="left")
    months = pd.DatetimeIndex(months)
    on = months.values[None, :] >= m["approval_month"].to_numpy()[:, None]
    f = np.where(on, m["vza_share"].to_numpy()[:, None], 0.0)
    n_m = len(months)
    return pd.DataFrame({"ags": np.repeat(m["ags"].astype(str).to_numpy(), n_m),
                         "verband_id": np.repeat(m["verband_id"].to_numpy(), n_m),
                         "month": np.tile(months, len(m)), "funded_vza": f.ravel(),
                         "eur_funded": (f * m["eur_per_vza_month"].to_numpy()[:, None]).ravel()})


def funding_panel(members: pd.DataFrame, verbaende: pd.DataFrame, posts: pd.DataFrame,
                  months: pd.DatetimeIndex, period_months: int, sources: dict[str, str] | None = None) -> pd.DataFrame:
    """Municipality x month: funded and filled VZÄ, shortfall and excess, € funded and the
    € of the shortfall. Municipalities with posts but no approval keep ``funded_vza = 0``
    (``verband_id`` missing). ``sources``: file names for error messages (keys
    ``funding_verbaende``, ``funding_members``, ``posts``)."""
    src = {"funding_verbaende": "funding_verbaende", "funding_members": "funding_members", "posts": "posts",
           **(sources or {})}
    rates = verband_rates(verbaende, period_months, src["funding_verbaende"])
    f = funded_vza(members, rates, months, src["funding_members"])
    p = filled_vza(posts, months, src["posts"])
    out = f.merge(p, on=["ags", "month"], how="outer")
    out["funded_vza"] = out["funded_vza"].fillna(0.0)
    out["eur_funded"] = out["eur_funded"].fillna(0.0)
    out["filled_vza"] = out["filled_vza"].fillna(0.0)
    out["n_posts"] = out["n_posts"].fillna(0).astype(int)
    out["shortfall_vza"] = np.maximum(out["funded_vza"] - out["filled_vza"], 0.0)
    out["excess_vza"] = np.maximum(out["filled_vza"] - out["funded_vza"], 0.0)
    rate = out["verband_id"].map(rates.set_index("verband_id")["eur_per_vza_month"]).fillna(0.0)
    out["eur_shortfall"] = out["shortfall_vza"] * rate
    return out.sort_values(["ags", "month"]).reset_index(drop=True)


def state_monthly(fp: pd.DataFrame) -> pd.DataFrame:
    """State-wide per month: funded and filled VZÄ, net unfilled share, municipal and
    Verband (pooled) shortfall and their shares of funded VZÄ, € funded and € of the
    Verband shortfall, municipalities with funding / with a filled post."""
    g = fp.groupby("month")
    out = pd.DataFrame({
        "funded_vza": g["funded_vza"].sum(), "filled_vza": g["filled_vza"].sum(),
        "shortfall_vza": g["shortfall_vza"].sum(), "excess_vza": g["excess_vza"].sum(),
        "eur_funded": g["eur_funded"].sum(),
        "n_municipalities_funded": g["funded_vza"].apply(lambda s: int((s > 0).sum())),
        "n_municipalities_filled": g["filled_vza"].apply(lambda s: int((s > 0).sum())),
    })
    v = fp.dropna(subset=["verband_id"]).groupby(["month", "verband_id"])[["funded_vza", "filled_vza", "eur_funded"]].sum()
    rate = (v["eur_funded"] / v["funded_vza"]).where(v["funded_vza"] > 0, 0.0)
    v_short = np.maximum(v["funded_vza"] - v["filled_vza"], 0.0)
    out["shortfall_verband_vza"] = v_short.groupby(level="month").sum()
    out["eur_shortfall_verband"] = (v_short * rate).groupby(level="month").sum()
    out = out.fillna({"shortfall_verband_vza": 0.0, "eur_shortfall_verband": 0.0})
    with np.errstate(divide="ignore", invalid="ignore"):
        fund = out["funded_vza"].where(out["funded_vza"] > 0)
        out["unfilled_share"] = 1.0 - out["filled_vza"] / fund
        out["shortfall_share"] = out["shortfall_vza"] / fund
        out["shortfall_verband_share"] = out["shortfall_verband_vza"] / fund
    return out.reset_index()


def fill_times(fp: pd.DataFrame, members: pd.DataFrame, rates: pd.DataFrame, posts: pd.DataFrame,
               thresholds: tuple[float, ...] | list[float] = (0.5, 0.9)) -> pd.DataFrame:
    """Per funded municipality: approval month, months from approval to the first post's
    start, and to the first month with ``filled_vza >= p x vza_share`` (NaN and
    ``reached_<p> = False`` when not reached by the panel end)."""
    m = members[["ags", "verband_id", "vza_share"]].copy()
    m["ags"] = m["ags"].astype(str)
    m = m.merge(rates[["verband_id", "approval_month"] + [c for c in ("art_antragsteller",) if c in rates.columns]],
                on="verband_id", how="left")
    m = m[m["vza_share"] > 0].copy()
    first = pd.to_datetime(posts["beginn"]).groupby(posts["ags"].astype(str)).min().dt.to_period("M").dt.to_timestamp()
    m["first_post_month"] = m["ags"].map(first)

    def months_between(a: pd.Series, b: pd.Series) -> pd.Series:
        return (a.dt.year - b.dt.year) * 12 + (a.dt.month - b.dt.month)

    m["months_to_first_post"] = months_between(m["first_post_month"], m["approval_month"])
    f = fp[["ags", "month", "filled_vza"]].merge(m[["ags", "vza_share"]], on="ags")
    for p in thresholds:
        k = f"{round(float(p) * 100):d}"
        hit = f[f["filled_vza"] >= float(p) * f["vza_share"] - 1e-9].groupby("ags")["month"].min()
        m[f"month_fill{k}"] = m["ags"].map(hit)
        m[f"months_to_fill{k}"] = months_between(m[f"month_fill{k}"], m["approval_month"])
        m[f"reached{k}"] = m[f"month_fill{k}"].notna()
    return m.reset_index(drop=True)


def fill_time_summary(ft: pd.DataFrame, thresholds: tuple[float, ...] | list[float], min_cell: int,
                      by: str | None = "art_antragsteller") -> pd.DataFrame:
    """Distribution of the times to fill, state-wide (``group = "all"``) and per ``by``;
    groups of fewer than ``min_cell`` municipalities are suppressed (values blank,
    ``suppressed = True``)."""
    cols = ["months_to_first_post"] + [f"months_to_fill{round(float(p) * 100):d}" for p in thresholds]
    parts = [("all", ft)]
    if by and by in ft.columns:
        parts += [(str(k), d) for k, d in ft.groupby(by, sort=True)]
    rows = []
    for name, d in parts:
        row: dict = {"group": name, "n_municipalities": int(len(d))}
        for c in cols:
            x = d[c].dropna()
            row[f"{c}_q25"] = float(x.quantile(0.25)) if len(x) else np.nan
            row[f"{c}_median"] = float(x.median()) if len(x) else np.nan
            row[f"{c}_q75"] = float(x.quantile(0.75)) if len(x) else np.nan
        for p in thresholds:
            k = f"{round(float(p) * 100):d}"
            row[f"share_reached{k}"] = float(d[f"reached{k}"].mean()) if len(d) else np.nan
        row["share_started_before_approval"] = float((d["months_to_first_post"] < 0).mean()) if len(d) else np.nan
        rows.append(row)
    out = pd.DataFrame(rows)
    out["suppressed"] = out["n_municipalities"] < int(min_cell)
    vals = [c for c in out.columns if c not in ("group", "n_municipalities", "suppressed")]
    out.loc[out["suppressed"], vals] = np.nan
    return out
