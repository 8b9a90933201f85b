"""Estimators on simulated panels: validation, recovery of known effects, cross-checks.

Cross-checks against independent implementations use test-only packages:
``pyfixest`` and ``linearmodels`` (TWFE and its cluster-robust SE), ``csdid``
(a port of R ``did``: group-time ATTs, SEs and aggregations).
"""
from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.methods.estimation import (
    FWLDesign,
    callaway_santanna,
    cr1_factor,
    event_study,
    prepare_panel,
    simulate_panel,
    twfe_did,
)

COLS = dict(outcome="y", unit="unit", time="year", first_treated="first_treated")


def _panel(**kw):
    return prepare_panel(simulate_panel(**kw), **COLS)


# ---------------------------------------------------------------- validation

def _tiny() -> pd.DataFrame:
    return simulate_panel(n_units=6, n_periods=4, cohorts={2015: 2}, seed=1)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.drop(columns="y"), "outcome column not found"),
    (lambda d: d.assign(first_treated=0), "no treated units"),
    (lambda d: d.assign(first_treated=2014), "no never-treated units"),
    (lambda d: d.assign(first_treated=np.where(d.unit == "U000", 2013, d.first_treated)),
     "at or before the panel's first period"),
    (lambda d: d.assign(first_treated=np.where(d.unit == "U000", 2011, d.first_treated)),
     "no pre-period"),
    (lambda d: pd.concat([d, d.iloc[[3]]]), "appears twice"),
    (lambda d: d.assign(first_treated=np.where(d.index == 0, 2016, d.first_treated)),
     "varies within unit"),
])
def test_bad_panels_raise_data_error(mutate, message):
    with pytest.raises(DataError, match=message):
        prepare_panel(mutate(_tiny()), **COLS)


def test_non_numeric_outcome_names_the_row():
    d = _tiny().astype({"y": object})
    d.loc[5, "y"] = "n/a?"
    with pytest.raises(DataError, match=r"demo.csv, column 'y', row 7: outcome must be numeric"):
        prepare_panel(d, file="demo.csv", **COLS)


def test_treated_unit_without_observed_pre_period_is_refused():
    d = _tiny()
    g = d.loc[d.first_treated > 0, "unit"].iloc[0]
    d.loc[(d.unit == g) & (d.year < 2015), "y"] = np.nan
    with pytest.raises(DataError, match="no observed outcome before its first treated period"):
        prepare_panel(d, **COLS)


def test_missing_outcomes_are_dropped_and_late_cohorts_are_never_treated():
    d = simulate_panel(n_units=20, n_periods=6, cohorts={2016: 3, 2030: 2}, seed=2, missing=0.1)
    p = prepare_panel(d, **COLS)
    assert p.n_dropped == int(d.y.isna().sum()) > 0
    assert p.n_obs == int(d.y.notna().sum())
    assert not p.balanced
    assert p.n_treated == 3  # first treated after the last period = never treated (R did)


# ---------------------------------------------------------------- TWFE

def _pyfixest_data(d: pd.DataFrame) -> pd.DataFrame:
    d = d.dropna(subset=["y"]).copy()
    d["uid"] = d.unit.str[1:].astype(int)
    d["D"] = ((d.first_treated > 0) & (d.year >= d.first_treated)).astype(float)
    return d


@pytest.mark.parametrize("weighted, missing", [(False, 0.0), (True, 0.0), (False, 0.08)])
def test_twfe_matches_pyfixest_to_1e6(weighted, missing):
    import pyfixest as pf
    d = simulate_panel(n_units=40, n_periods=9, cohorts={2016: 4, 2018: 5}, effect=0.7,
                       seed=11, missing=missing)
    d["w"] = np.repeat(np.random.default_rng(3).uniform(0.5, 3, 40), 9)
    res = twfe_did(d, weights="w" if weighted else None, **COLS)
    fit = pf.feols("y ~ D | uid + year", data=_pyfixest_data(d), vcov={"CRV1": "uid"},
                   weights="w" if weighted else None)
    assert res.estimate == pytest.approx(fit.coef()["D"], abs=1e-6, rel=1e-6)
    # pyfixest's default ssc is fixest's: G/(G-1) (N-1)/(N-K), unit FE nested in clusters
    assert res.std_error == pytest.approx(fit.se()["D"], abs=1e-6, rel=1e-6)
    assert res.p_value == pytest.approx(fit.pvalue()["D"], abs=1e-6)


def test_twfe_matches_linearmodels_with_the_same_small_sample_correction():
    import linearmodels as lm
    d = simulate_panel(n_units=50, n_periods=10, cohorts={2016: 6, 2019: 4}, effect=0.4, seed=5)
    res = twfe_did(d, **COLS)
    dd = _pyfixest_data(d).set_index(["uid", "year"])
    mod = lm.PanelOLS(dd["y"], dd[["D"]], entity_effects=True, time_effects=True)
    # uncorrected sandwich from linearmodels, then the CR1 factor we document
    fit = mod.fit(cov_type="clustered", cluster_entity=True, debiased=False,
                  group_debias=False, auto_df=False, count_effects=False)
    factor = cr1_factor(len(dd), 50, 1 + 10)
    assert res.estimate == pytest.approx(fit.params["D"], abs=1e-6, rel=1e-6)
    assert res.std_error == pytest.approx(fit.std_errors["D"] * math.sqrt(factor), rel=1e-6)


def test_statsmodels_fit_equals_projection_design():
    p = _panel(n_units=30, n_periods=8, cohorts={2016: 3, 2017: 3}, effect=1.0, seed=4,
               missing=0.05)
    res = twfe_did(p)
    d = FWLDesign.build(p, p.treatment[:, None], ["D"])
    assert res.estimate == pytest.approx(d.beta[0], abs=1e-10)
    assert res.std_error == pytest.approx(math.sqrt(d.vcov[0, 0]), rel=1e-9)


def test_twfe_recovers_a_known_effect():
    # One large panel: the estimate lies within 4 SEs of the truth (a correct
    # estimator fails this with probability ~1e-4; the seed makes it fixed).
    p = _panel(n_units=150, n_periods=13, cohorts={2019: 40}, effect=0.8, seed=21)
    res = twfe_did(p)
    assert abs(res.estimate - 0.8) < 4 * res.std_error
    assert res.ci_low < 0.8 < res.ci_high
    # Monte Carlo: mean of 200 replications within 0.05 of the truth. The
    # estimate's sd here is ~0.3, so the mean's sd is ~0.02 and 0.05 is > 2.5 sd;
    # a bias of 0.05 (6% of the effect) would be caught.
    rng = np.random.default_rng(0)
    ests = []
    for _ in range(200):
        q = prepare_panel(simulate_panel(n_units=150, n_periods=13, effect=0.8,
                                         seed=int(rng.integers(1 << 31))), **COLS)
        ests.append(FWLDesign.build(q, q.treatment[:, None], ["D"]).beta[0])
    assert abs(np.mean(ests) - 0.8) < 0.05


def test_zero_effect_cluster_test_rejects_about_5_percent():
    # Many treated clusters (40 of 100): the CR1 t test should have size ~5%.
    # 400 replications share one design, so all outcomes are projected at once.
    p0 = _panel(n_units=100, n_periods=10, cohorts={2018: 40}, seed=1)
    rng = np.random.default_rng(7)
    rej = 0
    for _ in range(400):
        # same assignment, new unit effects and AR(1) errors (rho 0.5, stationary)
        u = rng.normal(size=(100, 10))
        for t in range(1, 10):
            u[:, t] = 0.5 * u[:, t - 1] + u[:, t] * math.sqrt(1 - 0.25)
        y = rng.normal(size=100)[p0.unit_index] + u[p0.unit_index, p0.time_index]
        q = p0.with_outcome(y)
        d = FWLDesign.build(q, q.treatment[:, None], ["D"])
        t = d.beta[0] / math.sqrt(d.vcov[0, 0])
        rej += abs(t) > 1.984  # t(99) 97.5% quantile
    rate = rej / 400
    # binomial sd at 5% is 0.011: [0.02, 0.09] is about +-3.5 sd around 0.05
    assert 0.02 <= rate <= 0.09, rate


# ---------------------------------------------------------------- event study

def test_event_study_matches_pyfixest_and_finds_dynamic_effects():
    import pyfixest as pf
    def eff(g, t):
        return 0.5 + 0.25 * (t - g)
    d = simulate_panel(n_units=80, n_periods=10, cohorts={2017: 10, 2019: 10}, effect=eff,
                       seed=8, sigma=0.3)
    es = event_study(d, **COLS)
    c = es.coefficients.set_index("event_time")
    assert c.loc[-1, "estimate"] == 0 and math.isnan(c.loc[-1, "std_error"])
    # lags recover 0.5 + 0.25 e within 4 SEs; leads are near zero
    for e in range(0, 5):
        assert abs(c.loc[e, "estimate"] - (0.5 + 0.25 * e)) < 4 * c.loc[e, "std_error"]
    # independent fit with the same dummies
    dd = _pyfixest_data(d)
    rel = np.where(dd.first_treated > 0, dd.year - dd.first_treated, np.nan)
    names = []
    for e in sorted(set(rel[~np.isnan(rel)].astype(int)) - {-1}):
        nm = f"e_m{-e}" if e < 0 else f"e_{e}"
        dd[nm] = (rel == e).astype(float)
        names.append((e, nm))
    fit = pf.feols(f"y ~ {' + '.join(n for _, n in names)} | uid + year", data=dd,
                   vcov={"CRV1": "uid"})
    for e, nm in names:
        assert c.loc[e, "estimate"] == pytest.approx(fit.coef()[nm], abs=1e-6)
        assert c.loc[e, "std_error"] == pytest.approx(fit.se()[nm], rel=1e-6)
    leads = [nm for e, nm in names if e < -1]
    b = fit.coef()[leads].to_numpy()
    V = fit._vcov[np.ix_([fit._coefnames.index(n) for n in leads],
                         [fit._coefnames.index(n) for n in leads])]
    F = b @ np.linalg.solve(V, b) / len(leads)
    assert es.pretrend_stat == pytest.approx(F, rel=1e-6)
    assert es.pretrend_df1 == len(leads) and es.pretrend_df2 == 79


def test_event_study_binning():
    d = simulate_panel(n_units=60, n_periods=10, cohorts={2017: 10}, effect=1.0, seed=3)
    es = event_study(d, min_event=-3, max_event=3, **COLS)
    c = es.coefficients
    assert list(c.event_time) == [-3, -2, -1, 0, 1, 2, 3]
    assert c.set_index("event_time").loc[-3, "binned"]
    # cohort 2017 in 2013-2022: e = 3, 4, 5 binned into 3; e = -4, -3 into -3
    assert c.set_index("event_time").loc[3, "n_obs"] == 10 * 3
    assert c.set_index("event_time").loc[-3, "n_obs"] == 10 * 2


# ---------------------------------------------------------------- Callaway-Sant'Anna

def _csdid(d: pd.DataFrame, weights: str | None = None):
    import csdid.att_gt as csdid
    d = d.copy()
    d["id"] = d.unit.str[1:].astype(int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = csdid.ATTgt(yname="y", tname="year", idname="id", gname="first_treated", data=d,
                        control_group="nevertreated", weights_name=weights)
        a.fit(est_method="dr", base_period="varying", bstrap=False)
    return a


@pytest.mark.parametrize("weighted", [False, True])
def test_callaway_santanna_matches_csdid(weighted):
    """Three cohorts, balanced: ATT(g,t), SEs and both aggregations agree with csdid.

    csdid ports R did; with bstrap=False both use the analytic influence
    function, se = sqrt(sum IF^2)/n, so the SEs agree to rounding, not just
    up to a convention.
    """
    d = simulate_panel(n_units=60, n_periods=8, cohorts={2016: 5, 2018: 6, 2019: 7},
                       effect=lambda g, t: 1 + 0.3 * (t - g) + 0.2 * (g - 2016), seed=31)
    d["w"] = np.repeat(np.random.default_rng(2).uniform(0.5, 2.0, 60), 8)
    w = "w" if weighted else None
    ours = callaway_santanna(d, weights=w, **COLS)
    a = _csdid(d, w)
    r = a.results
    gt = ours.group_time
    assert np.array_equal(gt.group.to_numpy(), np.asarray(r["group"], float))
    assert np.array_equal(gt.time.to_numpy(), np.asarray(r["year"], float))
    np.testing.assert_allclose(gt.att, r["att"], atol=1e-6, rtol=0)
    np.testing.assert_allclose(gt.se, r["se"], rtol=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.aggte(typec="simple", bstrap=False)
    assert ours.overall.estimate == pytest.approx(a.atte["overall_att"], abs=1e-6)
    assert ours.overall.std_error == pytest.approx(a.atte["overall_se"], rel=1e-6)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a.aggte(typec="dynamic", bstrap=False)
    np.testing.assert_array_equal(ours.event_time.event_time, a.atte["egt"])
    np.testing.assert_allclose(ours.event_time.att, a.atte["att_egt"], atol=1e-6)
    np.testing.assert_allclose(ours.event_time.se, np.ravel(a.atte["se_egt"]), rtol=1e-6)
    assert ours.event_overall.estimate == pytest.approx(a.atte["overall_att"], abs=1e-6)
    assert ours.event_overall.std_error == pytest.approx(a.atte["overall_se"], rel=1e-6)


def test_callaway_santanna_unbalanced_uses_units_observed_in_both_periods():
    d = simulate_panel(n_units=30, n_periods=6, cohorts={2016: 4, 2017: 4}, effect=1.0,
                       seed=9, missing=0.1)
    res = callaway_santanna(d, **COLS)
    row = res.group_time.query("group == 2016 and time == 2017").iloc[0]
    assert row.base_period == 2015
    w = d.pivot(index="unit", columns="year", values="y")
    g = d.groupby("unit").first_treated.first()
    dy = (w[2017] - w[2015]).dropna()
    tr, co = dy[g[dy.index] == 2016], dy[g[dy.index] == 0]
    assert row.att == pytest.approx(tr.mean() - co.mean(), abs=1e-12)
    assert (row.n_treated, row.n_control) == (len(tr), len(co))
    # analytic SE of a 2x2: sqrt(var1/n1 + var0/n0) with variances over n (did's IF)
    assert row.se == pytest.approx(math.sqrt(tr.var(ddof=0) / len(tr) + co.var(ddof=0) / len(co)),
                                   rel=1e-10)


def test_staggered_heterogeneous_effects_bias_twfe_but_not_callaway_santanna():
    """Effects growing with time since treatment, three cohorts.

    True simple ATT (average of post-treatment ATT(g,t), cohorts of equal size)
    is 2.4375. Over 60 replications CS is unbiased (mean within 0.06, its
    Monte Carlo sd being ~0.02) while TWFE averages about 1.0: the 'forbidden
    comparisons' of already-treated units bias it by more than half the effect.
    """
    def eff(g, t):
        return 0.5 * (t - g + 1)
    cohorts = {2015: 30, 2018: 30, 2021: 30}
    truth = None
    tw, cs = [], []
    for s in range(60):
        d = simulate_panel(n_units=120, n_periods=13, cohorts=cohorts, effect=eff, seed=100 + s)
        if truth is None:
            post = d[d.first_treated.gt(0) & d.year.ge(d.first_treated)]
            truth = post.groupby(["first_treated", "year"]).effect.mean().mean()
        p = prepare_panel(d, **COLS)
        tw.append(FWLDesign.build(p, p.treatment[:, None], ["D"]).beta[0])
        cs.append(callaway_santanna(p).overall.estimate)
    assert truth == pytest.approx(2.4375)
    assert abs(np.mean(cs) - truth) < 0.06
    assert np.mean(tw) < truth - 1.0          # TWFE biased by more than 1 (~1.45)
    # single panel: the CS interval covers the truth, TWFE's excludes it
    p = prepare_panel(simulate_panel(n_units=120, n_periods=13, cohorts=cohorts, effect=eff,
                                     seed=5), **COLS)
    c = callaway_santanna(p).overall
    t = twfe_did(p)
    assert c.ci_low < truth < c.ci_high
    assert t.ci_high < truth


def test_callaway_santanna_recovers_constant_effect():
    p = _panel(n_units=150, n_periods=13, cohorts={2016: 15, 2019: 15, 2022: 15}, effect=0.6,
               seed=12)
    res = callaway_santanna(p)
    assert abs(res.overall.estimate - 0.6) < 4 * res.overall.std_error
    pre = res.event_time[res.event_time.event_time < 0]
    assert (pre.att.abs() < 4 * pre.se).all()
