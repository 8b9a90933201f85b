"""The CIN census side of child-level mode end to end: generated returns with a planted effect
on re-referral after no further action -> data stage -> study finds it.

Returns come from :func:`analysis.childlevel.synthetic.generate_cin` for every LA present
in all years of the real public panel (as returned: a referral open across 31 March is
in two returns). In the pilots, from the first year their wave-1 onset treats, a referral
closed with no further action is followed by a planted re-referral within six months
with probability 0.10 lower than in their own earlier years (each LA's base is 0.15 to
0.25). Other referrals arrive by chance as well, so the effect on the measure (the share
of such referrals followed by any referral within six months) is not exactly -10 points:
it is measured against the counterfactual world (same seed, no effect), whose children
differ only where a planted re-referral changed their chain of referrals.
"""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
from conftest import public_build

from analysis.core.paths import ROOT

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not os.environ.get("SOS_DATA_MIRROR") and not (ROOT / "data" / "raw").exists(),
    reason="real public data not available: set SOS_DATA_MIRROR")]

N_CHILDREN = 200_000
YEARS = range(2013, 2026)
EFFECT = -0.10
SEED = 20250402


def _measures(cin: dict) -> pd.DataFrame:
    """The data stage's LA-year measures from the returns (one copy per record, censored)."""
    from analysis.childlevel.aggregate import to_panel_measures
    from analysis.childlevel.returns import combine_returns, records_coverage

    _, once = combine_returns(None, cin)
    cover = records_coverage(None, cin).set_index("la")
    wide = to_panel_measures(cin=once, data_start=cover["data_start"], data_end=cover["data_end"])
    return wide[wide["year"].isin(list(YEARS))].set_index(["la_code", "year"])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    import dataclasses

    from analysis.childlevel.pipeline import COUNTS_FILE, ChildLevelInputs
    from analysis.childlevel.readers import REPORT_COLUMNS
    from analysis.childlevel.synthetic import generate_cin
    from analysis.design import load_design
    from analysis.run.build import build_panel_files
    from analysis.run.study import run_study

    design = load_design()
    treated = design.treated("rereferrals_after_nfa")
    public = public_build()
    counts = public.panel.groupby("la_code")["year"].nunique()
    las = sorted(counts[counts == counts.max()].index)
    rng = np.random.default_rng(3)
    base = {la: float(rng.uniform(0.15, 0.25)) for la in las}
    planted = {la: {y: base[la] + (EFFECT if la in treated and y >= treated[la] else 0.0)
                    for y in range(min(YEARS) - 2, max(YEARS) + 2)} for la in las}
    cin = generate_cin(N_CHILDREN, las, YEARS, SEED, planted)
    cin_cf = generate_cin(N_CHILDREN, las, YEARS, SEED, base)

    folder = tmp_path_factory.mktemp("cin")
    out = tmp_path_factory.mktemp("processed")
    inputs = ChildLevelInputs(folder, None, None, cin, pd.DataFrame(columns=REPORT_COLUMNS))
    mp = pytest.MonkeyPatch()
    mp.setattr("analysis.ingest.panel.build_panel",
               lambda progress=False, **kw: dataclasses.replace(public, files=dict(public.files)))
    try:
        build_panel_files(out, progress=False, child_level_dir=folder, child_level_inputs=inputs)
    finally:
        mp.undo()
    # the main specification only: these tests check what the data stage and the
    # estimators recover, not the sensitivity analyses (tested on synthetic panels elsewhere)
    study = run_study(panel_path=out / "panel.csv", progress=False, specifications=["main"],
                      outcomes=["rereferrals_after_nfa", "escalation_after_rereferral",
                                "assessment_duration"])
    return dict(design=design, treated=treated, cin=cin, cin_cf=cin_cf, out=out, study=study,
                counts_file=out / COUNTS_FILE, measures={})


def _world_measures(world, which: str) -> pd.DataFrame:
    """:func:`_measures` of ``world[which]``, computed once per module."""
    if which not in world["measures"]:
        world["measures"][which] = _measures(world[which])
    return world["measures"][which]


def _true_att(world, measure: str, outcome: str) -> float:
    o = world["design"].outcome(outcome)
    a, b = _world_measures(world, "cin")[measure], _world_measures(world, "cin_cf")[measure]
    diff = (a - b).reset_index(name="d")
    first = diff["la_code"].map(world["treated"])
    post = first.notna() & (diff["year"] >= first) & diff["year"].between(o.first_year, o.last_year)
    return float(diff.loc[post, "d"].mean())


def test_the_panel_holds_the_measures_the_study_reads(world):
    panel = pd.read_csv(world["out"] / "panel.csv", dtype={"la_code": str}).set_index(["la_code", "year"])
    direct = _world_measures(world, "cin")
    for m in ("rereferral_6m_after_nfa_pct", "rereferral_escalation_pct", "assessment_days_median"):
        both = panel[[m]].join(direct[[m]].add_suffix("_direct"), how="inner").dropna()
        assert len(both) > 1000
        assert np.allclose(both[m], both[f"{m}_direct"], atol=1e-6)
    # the first year of the records has no re-referral-based rate; the last none after a window
    assert panel.loc[(slice(None), 2013), "rereferral_escalation_pct"].isna().all()
    assert panel.loc[(slice(None), 2025), "rereferral_6m_after_nfa_pct"].notna().any()
    assert panel.loc[(slice(None), 2025), "rereferral_escalation_pct"].isna().all()


def test_study_finds_the_planted_effect_on_rereferral_after_nfa(world):
    est = world["study"].estimates
    main = est[(est["outcome"] == "rereferrals_after_nfa") & (est["specification"] == "main")]
    main = main.set_index(["estimator", "inference"])
    att = _true_att(world, "rereferral_6m_after_nfa_pct", "rereferrals_after_nfa")
    assert -10 < att < -5          # diluted by re-referrals that arrive by chance
    # about 130 such referrals per LA-year: a cell SE near 4 points, a DiD SE near 1.2
    # (with this seed: TWFE -8.6, true ATT -7.5)
    twfe = main.loc[("twfe", "cluster"), "estimate"]
    assert abs(twfe - att) < 3.0, (twfe, att)
    wb = main.loc[("twfe", "wild_bootstrap")]
    assert wb["ci_low"] < att < wb["ci_high"] < 0
    print(f"\nwild bootstrap 95% interval {wb['ci_low']:.2f} to {wb['ci_high']:.2f}")
    lpm = main.loc[("child_lpm", "cluster")]
    assert abs(lpm["estimate"] - att) < 3.0 and lpm["ci_high"] < 0, (lpm, att)
    ev = world["study"].evidence.set_index("outcome")
    assert ev.loc["rereferrals_after_nfa", "effect"] == "improvement"
    print(f"\nrereferrals_after_nfa: TWFE {twfe:.2f}, child LPM {lpm['estimate']:.2f}, "
          f"true ATT {att:.2f} pp; grade {ev.loc['rereferrals_after_nfa', 'grade']}")


def test_no_effect_where_none_was_planted(world):
    """Escalation and assessment duration were not touched: their intervals cover zero."""
    est = world["study"].estimates
    wb = est[(est["specification"] == "main") & (est["estimator"] == "twfe")
             & (est["inference"] == "wild_bootstrap")].set_index("outcome")
    for outcome in ("assessment_duration",):
        assert wb.loc[outcome, "ci_low"] < 0 < wb.loc[outcome, "ci_high"], wb.loc[outcome]
    # escalation depends on re-referrals, which the effect changes; it is estimated
    assert "escalation_after_rereferral" in wb.index
