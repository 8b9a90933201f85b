"""The study runner: planted effects are recovered; the real study runs end to end."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.design import load_design
from analysis.run.study import ESTIMATE_COLUMNS, Run, duplicate_specs, plan_runs, run_one


def _synthetic_panel(design, measure: str, effect: float, seed: int = 7) -> pd.DataFrame:
    """Real LA codes and regions, simulated values: LA effects + year effects + AR noise.

    Pilots get ``effect`` added from their first treated year on (wave-1 onset).
    """
    from analysis.ingest.geography import la_register

    rng = np.random.default_rng(seed)
    reg = la_register()
    reg = reg[~reg["boundary_changed"]]
    years = np.arange(2011, 2026)
    treated = design.treated(measure)
    rows = []
    year_fx = rng.normal(0, 1, len(years)).cumsum()
    for _, la in reg.iterrows():
        base = rng.normal(20, 4)
        noise = np.zeros(len(years))
        for t in range(len(years)):
            noise[t] = (0.5 * noise[t - 1] if t else 0) + rng.normal(0, 1.0)
        start = treated.get(la["la_code"], 0)
        for t, y in enumerate(years):
            value = base + year_fx[t] + noise[t] + (effect if start and y >= start else 0.0)
            rows.append(dict(la_code=la["la_code"], la_name=la["la_name"], region_code=la["region_code"],
                             year=int(y), **{measure: value},
                             pop_0_17=float(np.exp(rng.normal(11, 0.5))), idaci_score=rng.uniform(0.05, 0.3),
                             people_per_sqkm=float(np.exp(rng.normal(6, 1))),
                             ofsted_overall=float(rng.integers(1, 5)) if y >= 2014 and rng.random() > 0.3 else np.nan))
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def design():
    return load_design()


@pytest.mark.parametrize("effect", [0.0, 3.0])
def test_planted_effect_is_recovered_on_the_matched_panel(design, effect):
    panel = _synthetic_panel(design, "rereferral_pct", effect)
    out = run_one(panel, design, Run("rereferrals", "main"))
    est = pd.DataFrame(out.estimates).set_index(["estimator", "inference"])
    twfe = est.loc[("twfe", "cluster")]
    # 11 pilots x 11 post-years with unit noise sd ~1.15: SE about 0.4; allow 4 SEs.
    assert abs(twfe["estimate"] - effect) < 4 * twfe["std_error"]
    assert twfe["n_treated"] == 11 and twfe["n_comparison"] == 22
    assert twfe["pre_years"] == "2013-2014" and twfe["post_years"] == "2015-2025"
    wb = est.loc[("twfe", "wild_bootstrap")]
    ri = est.loc[("twfe", "randomization")]
    cs = est.loc[("staggered", "analytic")]
    assert abs(cs["estimate"] - effect) < 4 * cs["std_error"]
    if effect:
        assert wb["p_value"] < 0.01 and ri["p_value"] < 0.01
        assert wb["ci_low"] > 0 and ri["ci_low"] > 0
    else:
        assert wb["ci_low"] < 0 < wb["ci_high"]
    if effect == 0.0:  # the same run twice gives the same numbers (seeded draws); once is enough
        again = pd.DataFrame(run_one(panel, design, Run("rereferrals", "main")).estimates)
        pd.testing.assert_frame_equal(pd.DataFrame(out.estimates), again)


def test_plan_covers_every_outcome_and_specification(design):
    runs = plan_runs(design)
    duplicates = set(duplicate_specs(design))
    for o in design.outcomes:
        specs = {r.spec for r in runs if r.outcome == o.id}
        # a specification that reproduces the main one for this outcome is not run (issue 14)
        assert specs == {s for s in design.specifications if (o.id, s) not in duplicates}
        assert "main" in specs
        loo = [r for r in runs if r.outcome == o.id and r.spec == "leave_one_out"]
        assert len(loo) == len(design.treated(o))


def test_suppressed_pre_period_leaves_pilot_out_with_a_note(design):
    panel = _synthetic_panel(design, "rereferral_pct", 0.0)
    norfolk = (panel["la_code"] == "E10000020") & panel["year"].isin([2013, 2014])
    panel.loc[norfolk, "rereferral_pct"] = np.nan
    out = run_one(panel, design, Run("rereferrals", "main"))
    assert out.estimates[0]["n_treated"] == 10
    assert any("Norfolk" in n["note"] and "left out" in n["note"] for n in out.notes)


@pytest.mark.integration
def test_real_study_main_rows(real_results):
    """The session's whole study (its determinism: tests/test_build.py, which also
    checks that a two-outcome run in one process gives the whole study's rows)."""
    est = pd.read_csv(real_results / "estimates.csv", dtype={"pre_years": str})
    ev = pd.read_csv(real_results / "evidence.csv")
    assert list(est.columns) == ESTIMATE_COLUMNS
    main = est[(est["specification"] == "main") & (est["estimator"] == "twfe")]
    for oid in ("rereferrals", "assessment_timeliness"):
        assert set(main.loc[main["outcome"] == oid, "inference"]) >= {"cluster", "wild_bootstrap",
                                                                     "randomization"}, oid
    assert set(ev["grade"]) <= {"no", "low", "moderate", "high"}
    # Assessment timeliness is identified only with the wave-2 onset: pre-years 2015-2017.
    a45 = main[main["outcome"] == "assessment_timeliness"].iloc[0]
    assert a45["pre_years"] == "2015-2017" and a45["n_treated"] == 10


@pytest.mark.integration
def test_twfe_on_real_matched_panel_matches_pyfixest(real_panel, design):
    pf = pytest.importorskip("pyfixest")
    from analysis.ingest.panel import load_panel
    from analysis.methods.estimation import prepare_panel, twfe_did
    from analysis.methods.matching import match_comparators

    panel = load_panel(real_panel / "panel.csv")
    for var, year in design.fixed_year_context().items():  # as the runner does: Ofsted at the first onset
        panel[var] = panel["la_code"].map(panel[panel["year"] == year].set_index("la_code")[var])
    o = design.outcome("repeat_plans")
    kwargs = design.matching_kwargs()
    kwargs.update(outcome_trend=False, min_pre_years=1)  # Norfolk has one pre-year (as the runner does)
    m = match_comparators(panel, design.treated(o), design.donor_pool(), o.measure,
                          design.pre_years(o), **kwargs)
    mp = m.matched_panel[m.matched_panel["year"].isin(design.years(o))]
    mp = mp[["la_code", "year", o.measure, "first_treated", "weight"]].dropna()
    ours = twfe_did(prepare_panel(mp, outcome=o.measure, unit="la_code", time="year",
                                  first_treated="first_treated", weights="weight"))
    df = mp.assign(treat=((mp["first_treated"] > 0) & (mp["year"] >= mp["first_treated"])).astype(float),
                   y=mp[o.measure])
    fit = pf.feols("y ~ treat | la_code + year", data=df, weights="weight", vcov={"CRV1": "la_code"})
    assert ours.estimate == pytest.approx(float(fit.coef()["treat"]), abs=1e-6)
    assert ours.std_error == pytest.approx(float(fit.se()["treat"]), abs=1e-6)


@pytest.mark.integration
def test_common_comparators_are_one_set_for_every_outcome(real_panel, design):
    """Issue 15: the common-comparators specification uses the same donors, with the same
    weights where the same pilots are in the sample, for outcomes measured on different
    sources and onsets; the main specification matches each outcome on its own."""
    from analysis.ingest.panel import load_panel
    from analysis.run.study import composite_outcomes, composite_years

    panel = load_panel(real_panel / "panel.csv")
    assert [o.id for o in composite_outcomes(design)] == ["rereferrals", "repeat_plans", "sgo_exits"]
    assert composite_years(design)[0] < min(design.treated("rereferrals").values())
    donors, own = {}, {}
    for oid in ("repeat_plans", "foster_share", "assessment_timeliness"):
        common = run_one(panel, design, Run(oid, "common_comparators"), full=False).est_sample
        main = run_one(panel, design, Run(oid, "main"), full=False).est_sample
        donors[oid] = set(common.loc[common["first_treated"] == 0, "la_code"])
        own[oid] = set(main.loc[main["first_treated"] == 0, "la_code"])
    # the same comparators, less any with no published value of an outcome in its window
    union, shared = set.union(*donors.values()), set.intersection(*donors.values())
    assert len(shared) >= 0.9 * len(union), (len(shared), len(union))
    own_shared = set.intersection(*own.values())
    assert len(own_shared) < 0.5 * len(set.union(*own.values()))   # main: each outcome its own


@pytest.mark.integration
def test_no_anomalies_leaves_out_flagged_la_years_only_in_its_specification(real_panel, design):
    """Issue 12: Wakefield's 2016 re-referral rate is flagged; the no_anomalies specification
    leaves it out (with a note), the main specification keeps the published value."""
    from analysis.ingest.panel import load_panel
    from analysis.run.study import flagged_cells

    panel = load_panel(real_panel / "panel.csv")
    o = design.outcome("rereferrals")
    flags = flagged_cells(panel, design, o, "no_anomalies")
    wakefield = "E08000036"
    assert ((flags["la_code"] == wakefield) & (flags["year"] == 2016)).any()
    main = run_one(panel, design, Run("rereferrals", "main"), full=False)
    dropped = run_one(panel, design, Run("rereferrals", "no_anomalies"), full=False)
    cell = lambda s: s[(s["la_code"] == wakefield) & (s["year"] == 2016)]  # noqa: E731
    published = panel.loc[(panel["la_code"] == wakefield) & (panel["year"] == 2016), o.measure].iloc[0]
    assert cell(main.est_sample)[o.measure].iloc[0] == published
    assert cell(dropped.est_sample).empty
    assert len(dropped.est_sample) == len(main.est_sample) - len(
        flags.merge(main.est_sample[["la_code", "year"]]))
    assert any("anomaly rule" in n["note"] and "Wakefield 2016" in n["note"] for n in dropped.notes)
    # an outcome with no flagged value in its window is not run: it would reproduce main
    runs = plan_runs(design, panel)
    assert Run("assessment_timeliness", "no_anomalies") not in runs
    assert Run("rereferrals", "no_anomalies") in runs


@pytest.mark.integration
def test_specifications_not_run_are_listed_with_their_reason(real_results):
    notes = pd.read_csv(real_results / "notes.csv")
    est = pd.read_csv(real_results / "estimates.csv")
    not_run = notes[notes["note"].str.startswith("not run:")]
    pairs = set(zip(not_run["outcome"], not_run["specification"]))
    assert ("assessment_timeliness", "no_anomalies") in pairs          # no flag in its window
    assert ("assessment_timeliness", "wave2_onset") in pairs           # its main onset is wave 2
    ran = set(zip(est["outcome"], est["specification"]))
    assert not pairs & ran and ("rereferrals", "no_anomalies") in ran


def test_every_outcome_has_a_simulated_mde_found_four_times_in_five(real_results):
    """The MDE is where the simulated power curve crosses 80%; at no effect it is the size."""
    ev = pd.read_csv(real_results / "evidence.csv").set_index("outcome")
    power = pd.read_csv(real_results / "power.csv")
    public = ev.index[ev["mde"].notna()]
    assert len(public) >= 12
    for oid in public:
        curve = power[power["outcome"] == oid].set_index("effect_in_mdes")["power"]
        assert curve.loc[1.0] == pytest.approx(0.8, abs=1e-9), oid
        assert 0.02 <= curve.loc[0.0] <= 0.09, oid  # the test's size, 1,000 panels
        assert curve.loc[2.0] > 0.95, oid
    est = pd.read_csv(real_results / "estimates.csv")
    se = est[(est["specification"] == "main") & (est["estimator"] == "twfe")
             & (est["inference"] == "cluster")].set_index("outcome")["std_error"]
    ratio = ev.loc[public, "mde"] / se.reindex(public)
    # the order of the normal approximation's 2.8 cluster-robust standard errors
    assert ratio.between(1.5, 6.0).all(), ratio.to_dict()


def test_every_specification_says_what_it_could_detect(real_results):
    """estimates.csv: an MDE on the primary row of every run, leave-one-out runs included."""
    est = pd.read_csv(real_results / "estimates.csv")
    wb = est[(est["estimator"] == "twfe") & (est["inference"] == "wild_bootstrap")]
    assert wb["specification"].str.startswith("leave_one_out").sum() > 100
    assert wb["mde"].notna().all() and (wb["mde"] > 0).all()
    assert est.loc[est["inference"] != "wild_bootstrap", "mde"].isna().all()
    ev = pd.read_csv(real_results / "evidence.csv").set_index("outcome")
    main = wb[wb["specification"] == "main"].set_index("outcome")["mde"]
    assert np.allclose(main.reindex(ev.index), ev["mde"], rtol=0, atol=1e-12)
