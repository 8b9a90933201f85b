"""Tests of analysis.methods.power (MDE, power, TOST, multiple testing, reading intervals).

References: closed-form normal/t quantiles (scipy), hand computation, and statsmodels
(``multipletests`` for Holm and Benjamini-Hochberg, ``ttost_ind`` for TOST). Simulation
checks state their Monte Carlo tolerance.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.weightstats import ttost_ind

from analysis.methods.power import (
    benjamini_hochberg,
    holm,
    interval_rules_out,
    minimum_detectable_effect,
    minimum_detectable_effect_se,
    power_curve,
    romano_wolf,
    tost_equivalence,
)

Z975, Z80 = special.ndtri(0.975), special.ndtri(0.8)

# ----------------------------------------------------------------------------------------
# Minimum detectable effect and power
# ----------------------------------------------------------------------------------------


def test_mde_normal_null_is_2_8_sd():
    # Reference: (z_0.975 + z_0.8) sd = 2.8016 sd for a normal null. 200,000 draws: the
    # quantiles' Monte Carlo error is about 0.3% of sd; tolerance 1%.
    draws = np.random.default_rng(1).normal(0.0, 2.0, 200_000)
    assert minimum_detectable_effect(draws) == pytest.approx((Z975 + Z80) * 2.0, rel=0.01)
    assert minimum_detectable_effect_se(2.0) == pytest.approx((Z975 + Z80) * 2.0, rel=1e-12)


def test_mde_t_null_matches_t_quantiles():
    # Reference: a t(G-1) null with G = 6 clusters: (t_{0.975,5} + t_{0.8,5}) * scale.
    draws = 0.5 * np.random.default_rng(2).standard_t(5, 200_000)
    expected = (stats.t.ppf(0.975, 5) + stats.t.ppf(0.8, 5)) * 0.5
    assert minimum_detectable_effect(draws) == pytest.approx(expected, rel=0.015)
    assert minimum_detectable_effect_se(0.5, df=5) == pytest.approx(expected, rel=1e-12)
    # Studentized draws times the SE give the same MDE as draws on the estimate's scale.
    t_draws = np.random.default_rng(3).standard_t(5, 50_000)
    assert minimum_detectable_effect(t_draws, se=0.5) == pytest.approx(
        minimum_detectable_effect(0.5 * t_draws), rel=1e-12)


def test_planted_effect_at_the_mde_is_detected_80_percent():
    # Location-shift model: the run's null draws give the critical values and the MDE; 4,000
    # estimates drawn with the true effect equal to the MDE are rejected ~80% of the time
    # (Monte Carlo sd 0.6 points; tolerance 3 points).
    rng = np.random.default_rng(4)
    null = rng.normal(0.0, 1.0, 20_000)
    mde = minimum_detectable_effect(null)
    lo, hi = np.quantile(null, [0.025, 0.975])
    estimates = rng.normal(mde, 1.0, 4000)
    rate = np.mean((estimates > hi) | (estimates < lo))
    assert abs(rate - 0.80) < 0.03
    curve = power_curve(null, [0.0, mde, -mde, 10.0])
    assert curve[0] == pytest.approx(0.05, abs=0.002)
    # The MDE is the larger of the two directions' detectable magnitudes: power 0.8 in the
    # binding direction, at least 0.8 in the other.
    assert min(curve[1], curve[2]) == pytest.approx(0.80, abs=1e-3)
    assert max(curve[1], curve[2]) < 0.83
    assert curve[3] == 1.0
    assert np.all(np.diff(power_curve(null, np.linspace(0, 5, 21))) >= 0)


def test_mde_input_checks():
    with pytest.raises(ValueError):
        minimum_detectable_effect([1.0])
    with pytest.raises(ValueError):
        minimum_detectable_effect([0.0, 1.0, 2.0], power=1.2)
    # non-finite draws are dropped
    d = np.r_[np.random.default_rng(5).normal(size=1000), np.nan, np.inf]
    assert minimum_detectable_effect(d) == minimum_detectable_effect(d[:1000])


# ----------------------------------------------------------------------------------------
# TOST
# ----------------------------------------------------------------------------------------


def test_tost_hand_computed():
    # estimate 0.1, se 0.2, margin +-0.5 (normal): p_low = 1 - Phi(3), p_high = Phi(-2).
    out = tost_equivalence(0.1, sesoi=0.5, se=0.2)
    assert out["p_low"] == pytest.approx(0.0013498980316301, abs=1e-15)
    assert out["p_high"] == pytest.approx(0.0227501319481792, abs=1e-15)
    assert out["p_value"] == out["p_high"] and out["equivalent"] and out["method"] == "normal"
    # Asymmetric margin, and a non-equivalent case.
    out = tost_equivalence(0.1, sesoi=(-0.2, 0.5), se=0.2)
    assert out["p_low"] == pytest.approx(stats.norm.sf(1.5)) and not out["equivalent"]


def test_tost_matches_statsmodels_ttost_ind():
    # Reference: statsmodels ttost_ind (pooled variance): same estimate, se and df.
    rng = np.random.default_rng(6)
    x1, x2 = rng.normal(0.1, 1.0, 40), rng.normal(0.0, 1.0, 35)
    p_ref, (_, p1, df1), (_, p2, _) = ttost_ind(x1, x2, -0.6, 0.6, usevar="pooled")
    n1, n2 = x1.size, x2.size
    pooled = ((n1 - 1) * x1.var(ddof=1) + (n2 - 1) * x2.var(ddof=1)) / (n1 + n2 - 2)
    se = math.sqrt(pooled * (1 / n1 + 1 / n2))
    out = tost_equivalence(x1.mean() - x2.mean(), sesoi=0.6, se=se, df=df1)
    assert out["p_value"] == pytest.approx(p_ref, abs=1e-12)
    assert out["p_low"] == pytest.approx(p1, abs=1e-12)
    assert out["p_high"] == pytest.approx(p2, abs=1e-12)


def test_tost_from_draws_and_from_interval():
    est, se, margin = 0.05, 0.1, 0.25
    normal = tost_equivalence(est, sesoi=margin, se=se)
    # Null draws of estimate - theta from a normal distribution: MC error ~0.001.
    draws = np.random.default_rng(7).normal(0.0, se, 400_000)
    from_draws = tost_equivalence(est, sesoi=margin, null_draws=draws)
    assert from_draws["p_value"] == pytest.approx(normal["p_value"], abs=0.002)
    assert from_draws["method"] == "draws"
    # A 90% normal interval gives the same p-values; the decision is the interval's.
    half = special.ndtri(0.95) * se
    from_ci = tost_equivalence(est, sesoi=margin, ci=(est - half, est + half))
    assert from_ci["p_value"] == pytest.approx(normal["p_value"], rel=1e-12)
    assert from_ci["equivalent"] == (normal["p_value"] < 0.05)
    assert not tost_equivalence(est, sesoi=margin, ci=(-0.3, 0.2))["equivalent"]
    with pytest.raises(ValueError):
        tost_equivalence(est, sesoi=margin, se=se, null_draws=draws)


# ----------------------------------------------------------------------------------------
# Multiple testing
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("method,ours", [("holm", holm), ("fdr_bh", benjamini_hochberg)])
def test_holm_and_bh_match_statsmodels(method, ours):
    # Reference: statsmodels multipletests, to 1e-12; NaNs are passed through and left out
    # of the family; ties and input order preserved.
    rng = np.random.default_rng(8)
    p = np.r_[rng.uniform(0, 0.1, 12), rng.uniform(0, 1, 12), 0.01, 0.01, 1.0]
    rng.shuffle(p)
    np.testing.assert_allclose(ours(p), multipletests(p, method=method)[1], atol=1e-12)
    with_nan = p.copy()
    with_nan[[3, 10]] = np.nan
    got = ours(with_nan)
    keep = ~np.isnan(with_nan)
    assert np.isnan(got[~keep]).all()
    np.testing.assert_allclose(got[keep], multipletests(with_nan[keep], method=method)[1],
                               atol=1e-12)
    assert ours(p.reshape(3, 9)).shape == (3, 9)
    with pytest.raises(ValueError):
        ours([0.5, 1.5])


def _equicorrelated(rng, n, k, rho):
    common = rng.standard_normal((n, 1))
    return math.sqrt(rho) * common + math.sqrt(1 - rho) * rng.standard_normal((n, k))


def test_romano_wolf_controls_fwer_under_global_null():
    # 800 replications of K = 6 equicorrelated (rho = 0.7) t-statistics under the global
    # null, each with B = 400 joint bootstrap draws from the same distribution: the
    # family-wise rejection rate at 5% stays within alpha + 2 Monte Carlo sd (0.065).
    rng = np.random.default_rng(9)
    reps, k, b = 800, 6, 400
    any_reject = 0
    for _ in range(reps):
        t_obs = _equicorrelated(rng, 1, k, 0.7)[0]
        t_boot = _equicorrelated(rng, b, k, 0.7)
        any_reject += np.any(romano_wolf(t_obs, t_boot) <= 0.05)
    fwer = any_reject / reps
    assert fwer <= 0.05 + 2 * math.sqrt(0.05 * 0.95 / reps)


def test_romano_wolf_more_powerful_than_bonferroni_on_correlated_draws():
    # rho = 0.8, 3 of 6 hypotheses false (shift 2.8): Romano-Wolf uses the dependence, so
    # it rejects more false nulls than Bonferroni (and Holm) on the same bootstrap p-values.
    rng = np.random.default_rng(10)
    k, b, shift = 6, 500, np.r_[2.8, 2.8, 2.8, 0, 0, 0]
    rw = bonf = hm = 0
    for _ in range(300):
        t_obs = _equicorrelated(rng, 1, k, 0.8)[0] + shift
        t_boot = _equicorrelated(rng, b, k, 0.8)
        p_raw = (1 + np.sum(np.abs(t_boot) >= np.abs(t_obs), axis=0)) / (b + 1)
        adj = romano_wolf(t_obs, t_boot)
        assert np.all(adj >= p_raw - 1e-12)  # adjustment never lowers a p-value
        rw += np.sum(adj[:3] <= 0.05)
        bonf += np.sum(np.minimum(1, k * p_raw[:3]) <= 0.05)
        hm += np.sum(holm(p_raw)[:3] <= 0.05)
    assert rw > hm >= bonf
    assert rw >= 1.1 * bonf


def test_romano_wolf_order_and_nan():
    t_obs = np.array([0.5, np.nan, 3.0, -2.5])
    t_boot = np.random.default_rng(11).standard_normal((999, 4))
    p = romano_wolf(t_obs, t_boot)
    assert np.isnan(p[1])
    assert p[2] <= p[3] <= p[0]  # larger |t|, smaller adjusted p
    with pytest.raises(ValueError):
        romano_wolf(t_obs, t_boot[:, :3])


# ----------------------------------------------------------------------------------------
# Reading an interval
# ----------------------------------------------------------------------------------------


def test_interval_rules_out():
    # Higher is better: (-0.2, 0.5) rules out improvements > 0.5, deteriorations > 0.2.
    assert interval_rules_out(-0.2, 0.5, "higher") == (0.5, 0.2)
    # Lower is better (e.g. re-referrals): the same interval rules out improvements (falls)
    # larger than 0.2 and deteriorations (rises) larger than 0.5.
    out = interval_rules_out(-0.2, 0.5, "lower")
    assert out.improvement == 0.2 and out.deterioration == 0.5
    # An interval that excludes zero leaves no room on one side.
    assert interval_rules_out(0.1, 0.4, "higher") == (0.4, 0.0)
    arr = interval_rules_out(np.array([-1.0, np.nan]), np.array([2.0, np.nan]), "higher")
    np.testing.assert_array_equal(arr.improvement, [2.0, np.nan])
    np.testing.assert_array_equal(arr.deterioration, [1.0, np.nan])
    with pytest.raises(ValueError):
        interval_rules_out(0.0, 1.0, "up")
    with pytest.raises(ValueError):
        interval_rules_out(1.0, 0.0, "higher")
