"""Wild cluster bootstrap and randomization inference.

The library never refits a model per draw; these tests do, on tiny panels,
and require the vectorised results to equal the brute-force ones exactly
(same draws: full enumeration).
"""
from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import pytest

from analysis.methods.estimation import (
    FWLDesign,
    callaway_santanna,
    cr1_factor,
    prepare_panel,
    simulate_panel,
    twfe_did,
)
from analysis.methods.inference import (
    WildClusterBootstrap,
    bootstrap_weights,
    count_assignments,
    enumerate_assignments,
    multiplier_bootstrap,
    randomization_inference,
    staggered_randomization_inference,
    wild_bootstrap_pretrend,
    wild_cluster_bootstrap,
)

COLS = dict(outcome="y", unit="unit", time="year", first_treated="first_treated")


def _tiny(weighted: bool = True, n_units: int = 8, seed: int = 3, missing: float = 0.0):
    d = simulate_panel(n_units=n_units, n_periods=5, cohorts={2015: 2, 2016: 1}, effect=0.5,
                       seed=seed, missing=missing)
    d["w"] = np.repeat(np.random.default_rng(1).uniform(0.5, 2, n_units), 5)
    return prepare_panel(d, weights="w" if weighted else None, **COLS)


# ---------------------------------------------------------------- brute force helpers

def _dummies(p, X):
    return np.column_stack([X, np.eye(p.n_units)[p.unit_index],
                            np.eye(p.n_periods)[p.time_index][:, 1:]])


def _refit(p, y, Z, k):
    """Full dummy-variable WLS refit: coefficients and CR1 covariance of the first k."""
    sw = p.sqrt_w
    Zw, yw = Z * sw[:, None], y * sw
    b = np.linalg.lstsq(Zw, yw, rcond=None)[0]
    u = yw - Zw @ b
    H = np.linalg.pinv(Zw.T @ Zw)
    S = np.zeros((p.n_units, Z.shape[1]))
    np.add.at(S, p.unit_index, Zw * u[:, None])
    V = H @ S.T @ S @ H * cr1_factor(p.n_obs, p.n_units, k + p.n_periods)
    return b[:k], V[:k, :k]


def _brute_wcr_pvalue(p, X, R, r, V):
    """WCR p-value by refitting the full model for every draw (columns of V)."""
    k = X.shape[1]
    Z = _dummies(p, X)
    b, Vb = _refit(p, p.y, Z, k)
    # restricted fit: impose R b = r by substitution (R selects coefficients)
    sel = np.flatnonzero(np.abs(R).sum(0))
    free = [j for j in range(Z.shape[1]) if j not in sel]
    rvec = np.zeros(k)
    rvec[sel] = r
    sw = p.sqrt_w
    yr = p.y - X @ rvec
    gam = np.linalg.lstsq(Z[:, free] * sw[:, None], yr * sw, rcond=None)[0]
    fitted = X @ rvec + Z[:, free] @ gam
    ut = p.y - fitted
    dev = R @ b - r
    wald = dev @ np.linalg.solve(R @ Vb @ R.T, dev)
    count = 0
    for j in range(V.shape[1]):
        bs, Vs = _refit(p, fitted + ut * V[p.unit_index, j], Z, k)
        ds = R @ bs - r
        count += ds @ np.linalg.solve(R @ Vs @ R.T, ds) >= wald * (1 - 1e-10)
    return count / V.shape[1]


# ---------------------------------------------------------------- wild bootstrap

def test_rademacher_enumeration_when_2_to_G_fits():
    V, enum = bootstrap_weights(5, 9999)
    assert enum and V.shape == (5, 32)
    assert len({tuple(c) for c in V.T}) == 32 and (V[:, 0] == 1).all()
    V2, enum2 = bootstrap_weights(20, 999, seed=1)
    assert not enum2 and V2.shape == (20, 999) and set(np.unique(V2)) == {-1.0, 1.0}
    W, _ = bootstrap_weights(20, 999, "webb", seed=1)
    assert np.allclose(np.unique(W ** 2), [0.5, 1.0, 1.5])


def test_wcr_equals_brute_force_refit_per_draw():
    p = _tiny(weighted=True)
    res = wild_cluster_bootstrap(p, draws=9999)
    assert res.enumerated and res.draws == 2 ** 8
    V, _ = bootstrap_weights(p.n_units, 9999)
    X = p.treatment[:, None]
    R = np.ones((1, 1))
    assert res.p_value == _brute_wcr_pvalue(p, X, R, np.zeros(1), V)
    design = FWLDesign.build(p, X, ["D"])
    wb = WildClusterBootstrap(design, R, draws=9999)
    for null in (0.3, -1.0):
        assert wb.pvalue(null) == _brute_wcr_pvalue(p, X, R, np.array([null]), V)
    # the interval bounds are where the brute-force p-value crosses 0.05
    eps = 1e-6
    assert _brute_wcr_pvalue(p, X, R, np.array([res.ci_low - eps]), V) <= 0.05
    assert _brute_wcr_pvalue(p, X, R, np.array([res.ci_low + eps]), V) > 0.05
    assert _brute_wcr_pvalue(p, X, R, np.array([res.ci_high + eps]), V) <= 0.05
    assert _brute_wcr_pvalue(p, X, R, np.array([res.ci_high - eps]), V) > 0.05
    # bootstrap t at the identity draw equals the observed t
    assert wb.t_boot(0.0)[0] == pytest.approx(wb.t_stat(0.0), rel=1e-9)


def test_wcr_enumeration_matches_pyfixest_wildboottest():
    import pyfixest as pf
    d = simulate_panel(n_units=10, n_periods=6, cohorts={2016: 2, 2017: 2}, effect=0.5, seed=5)
    d["uid"] = d.unit.str[1:].astype(int)
    d["D"] = ((d.first_treated > 0) & (d.year >= d.first_treated)).astype(float)
    fit = pf.feols("y ~ D | uid + year", data=d, vcov={"CRV1": "uid"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = fit.wildboottest(param="D", reps=9999, seed=1)
    ours = wild_cluster_bootstrap(d, draws=9999, **COLS)
    assert ours.enumerated
    # both enumerate the 2^10 sign vectors; pyfixest counts |t*| > |t| strictly,
    # we count ties (the identity draw and its mirror): at most 2 / 1024 apart
    assert abs(ours.p_value - float(theirs["Pr(>|t|)"])) <= 2 / 1024 + 1e-12


def test_wcr_is_seeded_and_reproducible():
    p = prepare_panel(simulate_panel(n_units=60, n_periods=8, cohorts={2017: 6}, effect=0.3,
                                     seed=2), **COLS)
    a = wild_cluster_bootstrap(p, draws=999, seed=42)
    b = wild_cluster_bootstrap(p, draws=999, seed=42)
    c = wild_cluster_bootstrap(p, draws=999, seed=43)
    assert a == b
    assert a.p_value != c.p_value or a.ci_low != c.ci_low
    w = wild_cluster_bootstrap(p, draws=999, weight_type="webb", seed=42)
    assert abs(w.p_value - a.p_value) < 0.1
    assert a.ci_low < a.estimate < a.ci_high


def test_wcr_pretrend_joint_test_equals_brute_force():
    p = _tiny(weighted=False, n_units=9, seed=4)
    res = wild_bootstrap_pretrend(p, draws=9999)
    assert res.enumerated and res.q >= 2
    from analysis.methods.estimation import event_time_matrix
    X, ev, _, _ = event_time_matrix(p)
    leads = [i for i, e in enumerate(ev) if e < -1]
    R = np.zeros((len(leads), len(ev)))
    R[np.arange(len(leads)), leads] = 1
    V, _ = bootstrap_weights(p.n_units, 9999)
    assert res.p_value == _brute_wcr_pvalue(p, X, R, np.zeros(len(leads)), V)


# ---------------------------------------------------------------- randomization inference

def test_assignment_enumeration_counts():
    vals = np.array([0, 0, 0, 0, 2015, 2015, 2016])
    A = enumerate_assignments(vals)
    assert count_assignments(vals) == 7 * 6 * 5 // 2 == A.shape[1]
    assert len({tuple(c) for c in A.T}) == A.shape[1]
    assert all(sorted(c) == sorted(vals) for c in A.T)


@pytest.mark.parametrize("statistic", ["estimate", "t"])
def test_ri_exact_enumeration_equals_brute_force(statistic):
    p = _tiny(weighted=True, n_units=9, missing=0.1)
    res = randomization_inference(p, draws=5000, statistic=statistic)
    assert res.enumerated and res.draws == res.n_assignments == 9 * 8 * 7 // 2

    def stat(q):
        r = twfe_did(q)
        return r.estimate if statistic == "estimate" else r.estimate / r.std_error

    assigns = {tuple(p.first_treated[list(perm)]) for perm in itertools.permutations(range(9))}
    assert len(assigns) == res.draws

    def brute(delta):
        q0 = p.with_outcome(p.y - delta * p.treatment)
        obs = stat(q0)
        st = np.array([stat(q0.with_first_treated(np.array(g))) for g in assigns])
        return np.mean(np.abs(st) >= abs(obs) * (1 - 1e-10))

    assert res.p_value == pytest.approx(brute(0.0), abs=1e-12)
    assert brute(res.ci_low - 1e-6) <= 0.05 < brute(res.ci_low + 1e-6)
    assert brute(res.ci_high + 1e-6) <= 0.05 < brute(res.ci_high - 1e-6)


def test_ri_random_draws_are_seeded():
    p = prepare_panel(simulate_panel(n_units=40, n_periods=7, cohorts={2016: 5}, effect=0.0,
                                     seed=6), **COLS)
    a = randomization_inference(p, draws=400, seed=1)
    b = randomization_inference(p, draws=400, seed=1)
    assert a == b and not a.enumerated and a.draws == 400
    assert a.n_assignments == math.comb(40, 5)
    # p = (1 + #extreme) / (draws + 1): a multiple of 1/401
    assert round(a.p_value * 401) == pytest.approx(a.p_value * 401, abs=1e-9)
    assert a.ci_low < a.estimate < a.ci_high


def test_ri_eligible_restricts_placebos():
    d = simulate_panel(n_units=12, n_periods=5, cohorts={2016: 2}, seed=3)
    p = prepare_panel(d, **COLS)
    treated = list(p.units[p.treated])
    others = [u for u in p.units if u not in treated][:3]
    res = randomization_inference(p, eligible=treated + others)
    assert res.enumerated and res.n_assignments == math.comb(5, 2)


def test_zero_effect_rejection_rates_near_5_percent():
    """150 units, 10 treated, AR(1) errors, no effect: WCR and RI reject ~5%.

    300 replications with 199 draws each (interval not computed). With a
    true rate of 5% the binomial sd is 1.3 points; the bounds [1.5%, 9.5%]
    allow for that and for the slight conservativeness of WCR with 10
    treated clusters.
    """
    p0 = prepare_panel(simulate_panel(n_units=150, n_periods=13, seed=1), **COLS)
    rng = np.random.default_rng(11)
    rej_wb = rej_ri = 0
    reps = 300
    for r in range(reps):
        u = rng.normal(size=(150, 13))
        for t in range(1, 13):
            u[:, t] = 0.5 * u[:, t - 1] + u[:, t] * math.sqrt(0.75)
        y = rng.normal(size=150)[p0.unit_index] + u[p0.unit_index, p0.time_index]
        q = p0.with_outcome(y)
        rej_wb += wild_cluster_bootstrap(q, draws=199, seed=r, ci=False).p_value <= 0.05
        rej_ri += randomization_inference(q, draws=199, seed=r, ci=False).p_value <= 0.05
    assert 0.015 <= rej_wb / reps <= 0.095, rej_wb / reps
    assert 0.015 <= rej_ri / reps <= 0.095, rej_ri / reps


# ---------------------------------------------------------------- staggered

def test_staggered_ri_enumeration_equals_brute_force():
    d = simulate_panel(n_units=8, n_periods=6, cohorts={2015: 2, 2017: 1}, effect=0.7, seed=7,
                       missing=0.05)
    p = prepare_panel(d, **COLS)
    res = staggered_randomization_inference(p, draws=5000)
    assert res.enumerated and res.n_assignments == 8 * 7 * 6 // 2
    obs = callaway_santanna(p).overall.estimate
    assert res.estimate == pytest.approx(obs, abs=1e-12)
    stats_ = []
    for g in {tuple(p.first_treated[list(x)]) for x in itertools.permutations(range(8))}:
        q = p.with_first_treated(np.array(g))
        stats_.append(callaway_santanna(q).overall.estimate)
    stats_ = np.array(stats_)
    brute = np.mean(np.abs(stats_) >= abs(obs) * (1 - 1e-10))
    assert res.p_value == pytest.approx(brute, abs=1e-12)


def test_staggered_ri_interval_inverts_a_constant_effect():
    d = simulate_panel(n_units=8, n_periods=6, cohorts={2015: 2, 2017: 1}, effect=0.7, seed=7)
    p = prepare_panel(d, **COLS)
    res = staggered_randomization_inference(p, draws=5000)
    assigns = {tuple(p.first_treated[list(x)]) for x in itertools.permutations(range(8))}

    def brute(delta):
        q0 = p.with_outcome(p.y - delta * p.treatment)
        obs = callaway_santanna(q0).overall.estimate
        st = np.array([callaway_santanna(q0.with_first_treated(np.array(g))).overall.estimate
                       for g in assigns])
        return np.mean(np.abs(st) >= abs(obs) * (1 - 1e-10))

    if np.isfinite(res.ci_high):
        assert brute(res.ci_high + 1e-6) <= 0.05 < brute(res.ci_high - 1e-6)
    if np.isfinite(res.ci_low):
        assert brute(res.ci_low - 1e-6) <= 0.05 < brute(res.ci_low + 1e-6)


def test_multiplier_bootstrap_agrees_with_analytic_se():
    p = prepare_panel(simulate_panel(n_units=150, n_periods=10, cohorts={2016: 30, 2019: 30},
                                     effect=0.5, seed=4), **COLS)
    cs = callaway_santanna(p)
    mb = multiplier_bootstrap(cs, draws=9999, seed=1)
    half = (mb.ci_high - mb.ci_low) / 2
    # symmetric bootstrap half-width ~ 1.96 analytic SE (many treated units here)
    assert half == pytest.approx(1.96 * cs.overall.std_error, rel=0.05)
    assert mb.ci_low < 0.5 < mb.ci_high
