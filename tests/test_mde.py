"""The simulated minimum detectable effect (analysis.methods.mde, issue 13).

Checked three ways: its shortcuts (reused bootstrap, many null values at once, the
planted effect as a shifted null) give exactly what the direct computation gives; its
noise model recovers a known noise; and on a design where the normal approximation
holds (many treated units, independent noise) it gives the textbook
``(z_0.975 + z_0.8) x SE``.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.methods.estimation import FWLDesign, prepare_panel
from analysis.methods.inference import WildClusterBootstrap
from analysis.methods.mde import noise_model, simulate_noise, simulated_mde, simulated_power


def _panel(n_units=30, n_years=10, n_treated=4, rho=0.0, sd=1.0, seed=0, weights=False, missing=0.0):
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_units):
        ft = (2015 + i % 3) if i < n_treated else 0
        e = rng.normal(0, sd)
        for t in range(n_years):
            e = e if t == 0 else rho * e + rng.normal(0, sd * math.sqrt(1 - rho ** 2))
            rows.append(dict(la=f"U{i:02d}", year=2010 + t, first_treated=ft, w=1.0 + (i % 4) / 2,
                             y=3.0 * i / n_units + 0.2 * t + e))
    df = pd.DataFrame(rows)
    if missing:
        df.loc[rng.random(len(df)) < missing, "y"] = np.nan
    return prepare_panel(df, outcome="y", unit="la", time="year", first_treated="first_treated",
                         weights="w" if weights else None)


def _wb(panel, seed=3):
    design = FWLDesign.build(panel, panel.treatment[:, None], ["treated"])
    return WildClusterBootstrap(design, np.ones((1, 1)), draws=499, weight_type="webb", seed=seed)


def test_many_null_values_at_once_equal_one_at_a_time():
    wb = _wb(_panel(weights=True, missing=0.05))
    rs = np.linspace(-2, 2, 9)
    assert np.array_equal(wb.pvalues(rs), np.array([wb.pvalue(r) for r in rs]))


def test_reused_bootstrap_equals_a_fresh_one_on_the_new_outcome():
    p = _panel(weights=True, missing=0.05)
    y = np.random.default_rng(9).normal(size=p.n_obs)
    reused = _wb(p).with_outcome(y)
    fresh = _wb(p.with_outcome(y))
    rs = np.linspace(-1.5, 1.5, 7)
    np.testing.assert_allclose(reused.pvalues(rs), fresh.pvalues(rs), atol=0)
    assert reused.confint() == pytest.approx(fresh.confint(), abs=1e-12)
    assert reused.t_stat(0.3) == pytest.approx(fresh.t_stat(0.3), rel=1e-12)


@pytest.mark.parametrize("delta", [0.25, 0.6, -0.4])
def test_planted_effect_is_the_shifted_null(delta):
    """'No effect' on noise + delta x treated is 'beta = -delta' on the noise."""
    p = _panel(weights=True)
    e = np.random.default_rng(4).normal(size=p.n_obs)
    planted = _wb(p.with_outcome(e + delta * p.treatment)).pvalue(0.0)
    shifted = _wb(p).with_outcome(e).pvalue(-delta)
    assert 0.0 < planted < 1.0
    assert planted == pytest.approx(shifted, abs=1e-12)


def test_noise_model_recovers_a_known_noise():
    p = _panel(n_units=80, n_years=30, n_treated=10, rho=0.5, sd=2.0, seed=1)
    m = noise_model(p)
    assert m.sd == pytest.approx(2.0, rel=0.06)
    assert m.rms_sd == pytest.approx(2.0, rel=0.06)
    # corrected for the bias of residuals around unit means (-(1 + rho) / (T - 1) = -0.05)
    assert m.rho == pytest.approx(0.5, abs=0.04)
    assert noise_model(_panel(n_units=80, n_years=8, rho=0.0, seed=2)).rho == pytest.approx(0.0, abs=0.1)
    # the draws have the model's SD and correlation
    sim = simulate_noise(m, p, 400, np.random.default_rng(2))
    assert sim.shape == (400, p.n_obs)
    assert sim.std() == pytest.approx(m.rms_sd, rel=0.03)
    wide = sim.reshape(400, p.n_units, 30)
    lag1 = np.corrcoef(wide[:, :, 1:].ravel(), wide[:, :, :-1].ravel())[0, 1]
    assert lag1 == pytest.approx(m.rho, abs=0.02)


def test_power_is_the_size_at_zero_and_rises_with_the_effect():
    p = _panel(n_treated=6)
    pw = simulated_power(p, [0.0, 0.5, 1.0, 3.0], panels=600, draws=199, seed=5)
    assert 0.02 <= pw[0] <= 0.09  # size 5%, Monte Carlo SE 0.9 points
    assert pw[0] < pw[1] < pw[2] < pw[3]
    assert pw[3] > 0.99


def test_mde_is_the_textbook_one_where_the_normal_approximation_holds():
    """60 units, 30 treated, independent noise: MDE = (z_.975 + z_.8) x the true SE."""
    p = _panel(n_units=60, n_years=8, n_treated=30, sd=1.0, seed=6)
    d = FWLDesign.build(p, p.treatment[:, None], ["treated"])
    true_se = 1.0 / math.sqrt(float(d.X[:, 0] @ d.X[:, 0]))  # OLS, known noise SD 1
    textbook = (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) * true_se
    res = simulated_mde(p, panels=600, draws=199, seed=7)
    assert res.mde == pytest.approx(textbook, rel=0.1)
    assert res.power_at(res.mde) == pytest.approx(0.8, abs=1e-9)
    assert res.power_at(-res.mde) == pytest.approx(0.8, abs=1e-9)


def test_mde_is_found_at_the_stated_rate_on_fresh_panels():
    """Plant the reported MDE on new panels (new noise, new draws): found about 80% of the time."""
    p = _panel(n_units=24, n_years=10, n_treated=4, rho=0.4, sd=1.5, seed=8, weights=True, missing=0.03)
    res = simulated_mde(p, panels=800, draws=199, seed=11)
    m = res.noise
    rng = np.random.default_rng(12345)
    found = 0
    fresh = simulate_noise(m, p, 800, rng)
    for s, e in enumerate(fresh):
        found += _wb(p.with_outcome(e + res.mde * p.treatment), seed=1000 + s).pvalue(0.0) <= 0.05
    # two independent estimates of 80%, each with Monte Carlo SE about 1.4 points
    assert found / len(fresh) == pytest.approx(0.8, abs=0.06)


def test_many_outcomes_at_once_equal_one_bootstrap_each():
    """The batched pieces (the simulation's path) give each outcome's own p-values."""
    p = _panel(weights=True, missing=0.05)
    wb = _wb(p)
    Y = np.random.default_rng(3).normal(size=(7, p.n_obs)) + 0.3 * p.treatment
    batch = wb.many_outcomes(Y)
    rs = np.linspace(-1.5, 1.5, 9)
    for i in range(len(Y)):
        one = wb.with_outcome(Y[i])
        assert batch.estimate[i] == pytest.approx(one.t_stat(0.0) * math.sqrt(one._RVR[0, 0]), abs=1e-12)
        assert batch.std_error[i] == pytest.approx(math.sqrt(one._RVR[0, 0]), rel=1e-12)
        np.testing.assert_array_equal(batch.pvalues(rs)[i], one.pvalues(rs))
    with pytest.raises(ValueError, match="one regressor"):
        d2 = FWLDesign.build(p, np.column_stack([p.treatment, p.treatment * p.time]), ["a", "b"])
        WildClusterBootstrap(d2, np.array([[1.0, 0.0]]), draws=99).many_outcomes(Y)
