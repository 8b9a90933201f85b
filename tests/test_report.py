"""Report sentences built from results and settings (analysis.book.chapters)."""
from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from analysis.book import chapters as report
from analysis.childlevel.disclosure import load_settings


@pytest.mark.parametrize("grades, sentence", [
    (["no", "low", "no"], "None of the 3 outcomes reaches moderate or high strength evidence of an effect."),
    (["no", "moderate", "low"], "One of the 3 outcomes reaches moderate or high strength evidence of an effect."),
    (["high", "moderate", "no", "no"], "2 of the 4 outcomes reach moderate or high strength evidence of an effect."),
    (["high", "moderate"], "All 2 outcomes reach moderate or high strength evidence of an effect."),
])
def test_findings_count(grades, sentence):
    assert report.findings_count(pd.DataFrame({"grade": grades})) == sentence


def test_disclosure_rules_follow_the_settings_file():
    st = load_settings()
    text = report.disclosure_rules()
    assert f"A count from 1 to {st.threshold - 1} is withheld" in text
    assert f"at least {st.protection_level} values that includes {st.threshold} or more" in text
    assert text.count("\n- ") == 3                       # four rules, one bullet each
    assert "England counts to the nearest 10" in text and "local authority counts unrounded" in text


def test_rounding_rule_without_rounding():
    st = dataclasses.replace(load_settings(), rounding=None)
    assert report.rounding_rule(st) == "**Rounding.** Counts are published unrounded."


# --------------------------------------------------------------------------- findings chapters
import math  # noqa: E402

import numpy as np  # noqa: E402

TH = {"p_high": 0.01, "p_moderate": 0.05, "p_low": 0.10, "pretrend_p_min": 0.10, "max_smd": 0.25,
      "sign_agreement_high": 0.8, "sign_agreement_moderate": 0.6, "sign_tolerance": 0.25}


def _ev(**kw) -> pd.Series:
    base = dict(outcome="rereferrals", grade="no", estimate=1.2, ci_low=-2.0, ci_high=4.9, primary_p=0.44,
                p_randomization=0.56, ri_ci_low=-3.5, ri_ci_high=5.9, pretrend_p=0.72, pretrend_p_cluster=0.68,
                max_abs_smd=0.2, balance_ok_other=True, sign_agreement=0.95, n_sensitivity=20,
                effect="deterioration", leans="deterioration", verdict="inconclusive",
                verdict_reasons="the interval holds both no effect and an effect larger than the SESOI",
                sesoi=1.3, mde=4.5, equivalence_p=0.49, honest_ci_low=-20.3, honest_ci_high=25.8,
                breakdown_rm=math.nan, p_holm=1.0, p_bh=0.84, p_adjusted=1.0, rules_out_improvement=2.0,
                rules_out_deterioration=4.9, median_denominator=5710.0, effect_in_children=68.5)
    base.update(kw)
    return pd.Series(base)


@pytest.mark.parametrize("kw, starts, title", [
    ({}, "The evidence on re-referrals is inconclusive: the estimate leans towards a deterioration",
     "No clear change in re-referrals after Signs of Safety began"),
    (dict(verdict="evidence of an effect (moderate strength)", grade="moderate", estimate=-3.0, ci_low=-5.0,
          ci_high=-1.0, primary_p=0.02, effect="improvement"),
     "There is moderate strength evidence of an effect of Signs of Safety on re-referrals, in the direction "
     "of an improvement.", "Moderate evidence that re-referrals fell after Signs of Safety began"),
    (dict(verdict="evidence of no effect larger than the SESOI", ci_low=-0.5, ci_high=0.6),
     "There is evidence of no effect of Signs of Safety on re-referrals larger than the smallest effect that "
     "would matter (1.3 percentage points).", "No change in re-referrals large enough to matter after Signs of Safety"),
    (dict(verdict="not assessable on this design", pretrend_p=0.3, pretrend_p_cluster=0.03, primary_p=0.001),
     "The effect of Signs of Safety on re-referrals is not assessable on this design: the pilots and their "
     "comparators were already moving apart before the programme (the cluster-robust F test",
     "Effect on re-referrals not assessable: trends differed before the start"),
])
def test_verdict_sentence_and_title_follow_the_verdict(kw, starts, title):
    e = _ev(**kw)
    text = report.verdict_sentence(e, "re-referrals", "percentage points", TH)
    assert text.startswith(starts), text
    # the headline interval and p-value are the primary inference's; randomization is the secondary check
    assert (f"95% wild cluster bootstrap interval {report.fmt(e['ci_low'])} to {report.fmt(e['ci_high'])}; "
            f"{report.fmt_p(e['primary_p'])}") in text
    assert "Randomization inference, the secondary check, gives −3.5 to 5.9 (p = 0.56)." in text
    assert report.active_title(e, "re-referrals", TH) == title
    assert len(title.split()) <= 12


def test_not_assessable_says_why_for_imbalance():
    e = _ev(verdict="not assessable on this design", max_abs_smd=0.41, balance_ok_other=False)
    text = report.verdict_sentence(e, "x", "", TH)
    assert "no matched comparison group is like the pilots" in text and "0.41" in text
    assert report.active_title(e, "x", TH) == "Effect on x not assessable: comparators too unlike the pilots"


def test_checklist_passes_and_fails():
    checks = {name: (ok, text) for name, ok, text in report.checklist(_ev(), TH)}
    assert [k for k in checks] == ["Pre-trends", "Balance", "Robustness", "Inference"]
    assert all(ok for ok, _ in checks.values())
    assert "19 of the 20 sensitivity runs" in checks["Robustness"][1]
    bad = {name: ok for name, ok, _ in report.checklist(
        _ev(pretrend_p_cluster=0.05, max_abs_smd=0.3, sign_agreement=0.7, ri_ci_low=0.1), TH)}
    assert bad == {"Pre-trends": False, "Balance": False, "Robustness": False, "Inference": False}
    none = {name: ok for name, ok, _ in report.checklist(
        _ev(pretrend_p=math.nan, pretrend_p_cluster=math.nan), TH)}
    assert none["Pre-trends"] is None


def test_dynamics_text_from_the_estimates():
    coefs = pd.DataFrame({"event_time": [-2, -1, 0, 1, 2, 3, 4, 5, 6],
                          "estimate": [0.1, 0.0, 0.5, 0.5, 0.5, 0.5, 2.0, 3.0, 2.5],
                          "wb_ci_low": [-1, np.nan, -1, -1, -1, -1, 0.5, 1.0, -0.5],
                          "wb_ci_high": [1, np.nan, 2, 2, 2, 2, 3.5, 5.0, 5.5]})
    text = report.dynamics_text(coefs, "points")
    assert "the largest in size, +3.0 points, is in year 5 after the start" in text
    assert "Over years 0 to 3 the differences average +0.5 points, over later years +2.5 points: " \
           "the difference grows over time." in text
    assert "In 2 of the 7 years after the start the wild bootstrap interval excludes zero." in text
    fading = coefs.assign(estimate=[0.1, 0.0, 3, 3, 3, 3, 0.5, 0.5, 0.5], wb_ci_low=-9.0, wb_ci_high=9.0)
    text = report.dynamics_text(fading, "points")
    assert "fades" in text and "In every year the wild bootstrap interval includes zero" in text


def _panel_and_pairs():
    years = list(range(2013, 2020))
    rows = []
    for code, base, missing in [("P1", 10, None), ("P2", 20, None), ("C1", 11, None), ("C2", 13, 2016),
                                ("C3", 21, None), ("C4", 23, None)]:
        for i, y in enumerate(years):
            rows.append(dict(la_code=code, year=y, m=np.nan if y == missing else base + i))
    pairs = pd.DataFrame({"treated_code": ["P1", "P1", "P2", "P2"], "comparator_code": ["C1", "C2", "C3", "C4"]})
    return pd.DataFrame(rows), pairs, years


def test_balanced_trends_drop_las_with_a_missing_year_and_weight_comparators():
    panel, pairs, years = _panel_and_pairs()
    trends, info = report.balanced_trends(panel, pairs, "m", years, [2013, 2014])
    assert info["balanced"] and info["dropped_comparators"] == 1 and info["dropped_pilots"] == 0
    assert (info["first_year"], info["last_year"]) == (2013, 2019)
    com = trends[trends["group"] == "comparators"].set_index("year")
    # C2 is left out in every year; C1 (weight 1/2) and C3, C4 (1/2 each)
    assert com["n_las"].unique().tolist() == [3]
    assert com.loc[2013, "mean"] == pytest.approx((0.5 * 11 + 0.5 * 21 + 0.5 * 23) / 1.5)
    pil = trends[trends["group"] == "pilots"].set_index("year")
    assert pil.loc[2013, "mean"] == 15
    cf = report.did_counterfactual(trends, [2013, 2014])
    assert cf["year"].tolist() == list(range(2014, 2020))
    # the comparators' change added to the pilots' pre-period level
    pre_p, pre_c = pil.loc[[2013, 2014], "mean"].mean(), com.loc[[2013, 2014], "mean"].mean()
    assert cf.set_index("year").loc[2019, "mean"] == pytest.approx(pre_p + com.loc[2019, "mean"] - pre_c)


def test_balanced_trends_fall_back_when_too_much_is_missing():
    panel, pairs, years = _panel_and_pairs()
    panel.loc[panel["la_code"].isin(["P1", "P2"]) & (panel["year"] == 2015), "m"] = np.nan
    trends, info = report.balanced_trends(panel, pairs, "m", years, [2013, 2014])
    assert not info["balanced"]
    assert 2015 not in set(trends.loc[trends["group"] == "pilots", "year"])


@pytest.fixture
def fake_results(monkeypatch, tmp_path):
    """Small synthetic results for the real outcomes ``rereferrals`` (primary) and ``cin_rate``."""
    rng = np.random.default_rng(1)
    est, ev, es, pw, hd, bal, pairs, panel_rows = [], [], [], [], [], [], [], []
    pilots, comps = ["E09000005", "E06000023"], ["E09000017", "E09000009", "E06000026", "E08000031"]
    for oid, measure, primary in [("rereferrals", "rereferral_pct", True), ("cin_rate", "cin_rate_per10k", False)]:
        common = dict(outcome=oid, n_treated=2, n_comparison=4, pre_years="2013-2014", post_years="2015-2025",
                      std_error=1.0)
        for spec, e in [("main", 1.2), ("exclude_similar_models", 1.0), ("wave2_onset", -0.9),
                        ("leave_one_out:E09000005", 1.5), ("pilots_new_to_sos", 2.0), ("all_donors", 0.7)]:
            est.append(dict(common, specification=spec, estimator="twfe", inference="wild_bootstrap",
                            estimate=e, ci_low=e - 3, ci_high=e + 3.5, p_value=0.44))
        for inf, lo, hi in [("randomization", -3.5, 5.9), ("cluster", -1.9, 4.4)]:
            est.append(dict(common, specification="main", estimator="twfe", inference=inf, estimate=1.2,
                            ci_low=lo, ci_high=hi, p_value=0.5))
        est.append(dict(common, specification="main", estimator="sdid", inference="placebo", estimate=1.05,
                        ci_low=-2.2, ci_high=4.3, p_value=0.53, n_comparison=125))
        no_direction = {} if primary else dict(rules_out_improvement=math.nan, rules_out_deterioration=math.nan)
        ev.append(dict(_ev(outcome=oid, primary=primary, n_sensitivity=4, sign_agreement=0.75, **no_direction)))
        for t in range(-2, 6):
            x = 0.0 if t == -1 else float(rng.normal())
            es.append(dict(outcome=oid, specification="main", event_time=t, estimate=x,
                           ci_low=np.nan if t == -1 else x - 1, ci_high=np.nan if t == -1 else x + 1,
                           wb_ci_low=np.nan if t == -1 else x - 2, wb_ci_high=np.nan if t == -1 else x + 2))
        pw += [dict(outcome=oid, effect_in_mdes=m, effect=4.5 * m, power=min(1.0, 0.05 + 0.75 * m)) for m in
               (0.0, 0.5, 1.0, 1.5)]
        hd += [dict(outcome=oid, method=meth, M=m, ci_low=-2 - 10 * m, ci_high=5 + 10 * m)
               for meth in ("relative_magnitudes", "smoothness") for m in (0.0, 0.5, 1.0)]
        bal += [dict(outcome=oid, variable=f"{measure}_level", kind="outcome level", smd_before=0.3,
                     smd_after=0.1)]
        pairs += [dict(outcome=oid, treated_code=p, comparator_code=c) for p, cs in
                  zip(pilots, [comps[:2], comps[2:]]) for c in cs]
    for code in pilots + comps:
        for y in range(2011, 2026):
            panel_rows.append(dict(la_code=code, year=y, rereferral_pct=20 + rng.normal(),
                                   cin_rate_per10k=300 + rng.normal()))
    notes = pd.DataFrame([dict(outcome="rereferrals", specification="k1",
                               note="not run: it reproduces the main specification for this outcome")],
                         columns=["outcome", "specification", "note"])
    tables = dict(estimates=pd.DataFrame(est), evidence=pd.DataFrame(ev), event_study=pd.DataFrame(es),
                  power=pd.DataFrame(pw), honest_did=pd.DataFrame(hd), balance=pd.DataFrame(bal),
                  matched_pairs=pd.DataFrame(pairs), notes=notes,
                  outcomes=pd.DataFrame({"outcome": ["rereferrals", "cin_rate"]}))
    monkeypatch.setattr(report, "result", lambda name: tables[name])
    monkeypatch.setattr(report, "processed", lambda name, folder=None: pd.DataFrame(panel_rows))
    # folders without per-outcome or per-measure slices: the chapters read the tables above
    monkeypatch.setattr(report, "RESULTS_FOLDER", tmp_path / "results")
    monkeypatch.setattr(report, "PROCESSED_DIR", tmp_path / "processed")
    return tables


def test_headline_table_primary_first_with_every_donor_rows(fake_results):
    t = report.Findings("rereferrals").headline_table()
    assert t.iloc[0]["Role"] == "Primary"
    assert t.iloc[0]["Inference"].startswith("Wild cluster bootstrap")
    assert t.iloc[0]["95% interval"] == "−1.80 to 4.70"
    roles = t.set_index("Role")
    assert roles.loc["Secondary check", "95% interval"] == "−3.50 to 5.90"
    assert "unreliable" in t.loc[t["Inference"].str.startswith("Cluster"), "Role"].item()
    donors = t[t["Role"] == "Every donor"].set_index("Estimator")
    assert donors.loc["Synthetic DiD, every donor weighted", "LAs (pilots + comparators)"] == "2 + 125"
    assert "Unmatched DiD, every donor" in donors.index


def test_robustness_table_wild_bootstrap_onsets_and_counted_rows(fake_results):
    t = report.Findings("rereferrals").robustness_table()
    assert "95% interval (wild bootstrap)" in t.columns
    assert t.iloc[0]["Specification"] == "Main analysis"
    assert t["Onset"].tolist() == ["wave 1", "wave 1", "wave 2", "wave 1", "wave 1", "wave 1"]
    same = dict(zip(t["Specification"], t["Same sign as main"]))
    assert same["Wave-two onset"] == "no" and same["Leaving out Brent"] == "yes"
    assert same["Pilots new to Signs of Safety only"] == "contrast, not counted"
    assert len(t) == 1 + len(fake_results["estimates"].query(
        "outcome == 'rereferrals' and estimator == 'twfe' and inference == 'wild_bootstrap' "
        "and specification != 'main'"))


def test_sections_hold_the_standard_displays(fake_results):
    text = report.Findings("rereferrals").sections()
    for name in ("trends", "event", "balance", "power", "honest"):
        assert f":name: fig-rereferrals-{name}" in text
        assert f"```{{glue:figure}} rereferrals_fig_{name}" in text
    assert "(tab-rereferrals-headline)=" in text and "(tab-rereferrals-robustness)=" in text
    assert "**Verdict: inconclusive**" in text
    assert "- **Pre-trends: passed.**" in text and "- **Robustness: failed.**" in text
    assert ("- **What the interval rules out.** The interval rules out improvements larger than 2.0 "
            "percentage points and deteriorations larger than 4.9 percentage points.") in text
    assert "Holm" in text and "about 68 more re-referrals a year" in text
    assert "Not run, because for this outcome they reproduce the main analysis: one comparator per pilot." in text
    assert re.search(r":alt: \S", text)
    other = report.Findings("cin_rate").sections()
    assert "fig-cin_rate-power" not in other and "fig-cin_rate-honest" not in other
    assert "Benjamini" in other and "For a pilot of median size" not in other
    assert "rules out increases larger than" in other


def test_trend_figure_has_counterfactual_estimate_and_active_title(fake_results):
    fig = report.Findings("rereferrals").trend_figure()
    ax = fig.axes[0]
    gids = {ln.get_gid() for ln in ax.get_lines()}
    assert {"pilots", "comparators", "counterfactual"} <= gids and "donor pool" not in gids
    assert any(c.get_gid() == "estimate" for c in ax.collections)
    titles = [t.get_text() for t in fig.texts if t.get_gid() == "title"]
    assert titles == ["No clear change in re-referrals after Signs of Safety began"]
