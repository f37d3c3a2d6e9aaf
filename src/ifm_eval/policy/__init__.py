"""The computations behind the report chapter that answers the Landtag's requests
(Rechnungshof, Denkschrift 2022, Beitrag 15) from the data.

* :mod:`.demand` — request 1 (*Bedarfsprognose*): refugees in follow-up housing (AU)
  projected beyond the panel end, with prediction intervals and a rolling-origin backtest,
  and the implied caseload per funded and per filled full-time equivalent (VZÄ).
* :mod:`.funding` — requests 2 and 4 (*Ausgabereste*, *Fördersätze*): funded VZÄ against
  the VZÄ of posts actually filled, per municipality and month; unfilled share (a proxy
  for unspent funds), time to fill after approval, € per funded VZÄ-year.
* :mod:`.indicators` — request 5 (*aussagekräftige Kennzahlen*): coverage and gaps of
  the quarterly KPI reports and whether each KPI tracks the administrative outcome it
  claims to measure.
* :mod:`.cost` — cost per additional person in employment / training / with B1 from the
  estimated effects, with the estimate's sampling uncertainty propagated.
* :mod:`.figures`, :mod:`.stage` — figures and the pipeline job ``run_policy``.

Parameters come from the optional config section ``policy`` (keys as in
:data:`DEFAULTS`); absent keys take the defaults below.
"""

from __future__ import annotations

import copy
from typing import Any

#: Defaults of the ``policy`` config section (every key optional).
DEFAULTS: dict[str, Any] = {
    # demand forecast
    "model": "auto",            # local_trend (growth rate a random walk) | drift (constant growth) | auto (smaller backtest error)
    "horizon_months": 24,       # projection beyond the panel end
    "fit_months": 24,           # months of log growth the drift model is fitted on
    "share_months": 12,         # months over which municipality shares are averaged
    "backtest_months": 12,      # hold-out length of the backtest
    "backtest_origins": 12,     # rolling forecast origins of the state-level backtest
    "levels": [0.8, 0.95],      # prediction-interval levels
    # funding
    "funding_period_months": 24,  # months the Fördersumme of an approval pays for (PIK: two years)
    "fill_thresholds": [0.5, 0.9],  # "filled" = filled VZÄ reach this share of funded VZÄ
    # indicators
    "kpi_tracks_r": 0.3,        # within-municipality correlation from which a KPI "tracks"
    "kpi_weak_r": 0.1,          # ... below: "does not track"; in between: "weak"
    "kpi_bootstrap": 199,       # municipality (cluster) bootstrap draws for the correlation CIs
    # cost
    "cost_draws": 20000,        # draws from the estimate's sampling distribution
    "cost_level": 0.95,
}


def params(cfg: dict[str, Any] | None) -> dict[str, Any]:
    """``DEFAULTS`` updated with the config's ``policy`` section; unknown keys are an error
    naming them (a misspelt key must not silently fall back to a default)."""
    given = dict((cfg or {}).get("policy") or {})
    unknown = sorted(set(given) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"config policy: unknown key(s) {unknown} (allowed: {sorted(DEFAULTS)})")
    out = copy.deepcopy(DEFAULTS)
    out.update(given)
    return out
