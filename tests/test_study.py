"""The study runner: planted effects are recovered; the real study runs end to end."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.design import load_design
from analysis.run.study import ESTIMATE_COLUMNS, Run, duplicate_specs, plan_runs, run_one, run_study, write_results


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
    # The same run twice gives the same numbers (seeded draws).
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
def test_real_study_two_outcomes_deterministic(real_source, tmp_path):
    from analysis.run.build import build_panel_files

    build_panel_files(tmp_path / "processed", progress=False)
    kw = dict(panel_path=tmp_path / "processed" / "panel.csv", progress=False,
              outcomes=["rereferrals", "assessment_timeliness"])
    a = run_study(workers=2, **kw)
    b = run_study(workers=1, **kw)
    write_results(a, tmp_path / "a")
    write_results(b, tmp_path / "b")
    for name in a.tables():
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    est = a.estimates
    assert list(est.columns) == ESTIMATE_COLUMNS
    main = est[(est["specification"] == "main") & (est["estimator"] == "twfe")]
    assert set(main["inference"]) >= {"cluster", "wild_bootstrap", "randomization"}
    assert set(a.evidence["grade"]) <= {"no", "low", "moderate", "high"}
    # Assessment timeliness is identified only with the wave-2 onset: pre-years 2015-2017.
    a45 = main[main["outcome"] == "assessment_timeliness"].iloc[0]
    assert a45["pre_years"] == "2015-2017" and a45["n_treated"] == 10


@pytest.mark.integration
def test_twfe_on_real_matched_panel_matches_pyfixest(real_source, tmp_path, design):
    pf = pytest.importorskip("pyfixest")
    from analysis.ingest.panel import build_panel
    from analysis.methods.estimation import prepare_panel, twfe_did
    from analysis.methods.matching import match_comparators

    panel = build_panel().panel
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
