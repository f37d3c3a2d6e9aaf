"""``variance=False`` (point estimates only, for repeated estimation) gives exactly the
estimates of the full fit and no standard errors."""

from __future__ import annotations

import numpy as np
import pytest

from ifm_eval.estimators.gardner import gardner
from ifm_eval.estimators.imputation import imputation
from ifm_eval.estimators.sun_abraham import sun_abraham
from ifm_eval.estimators.twfe import twfe_dynamic, twfe_static


@pytest.mark.parametrize("fn", [twfe_static, twfe_dynamic, sun_abraham, imputation, gardner])
def test_variance_false_keeps_the_estimates(mpdta, fn):
    args = (mpdta, "lemp", "countyreal", "year", "first.treat")
    kw = {"event_window": (-3, 3)} if fn is not twfe_static else {}
    full = fn(*args, **kw).table
    fast = fn(*args, variance=False, **kw).table
    key = ["kind", "term"]
    f = full.set_index(key)["estimate"]
    q = fast.set_index(key)["estimate"]
    common = f.index.intersection(q.index)
    assert len(common) >= 2
    np.testing.assert_allclose(q[common].to_numpy(float), f[common].to_numpy(float), rtol=1e-10, atol=1e-12)
    rows = fast.set_index(key).loc[common]
    terms = rows.index.get_level_values("term").astype(str)
    # (imputation's pre-period rows are BJS's separate pre-trend regression, not estimates)
    est_rows = rows[(terms != "reference") & ~terms.str.startswith("pre")]
    assert len(est_rows) and est_rows["se"].isna().all()
