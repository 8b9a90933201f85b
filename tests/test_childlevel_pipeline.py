"""Child-level mode end to end: synthetic SSDA903 extracts -> panel -> study, with disclosure control.

The records come from :func:`analysis.childlevel.synthetic.generate_903` for every
LA of the public panel, with the real public panel as context (matching
variables), and a planted effect: from its first treated year (the design's
wave-1 onset) each pilot's probability that a placement is kinship foster care
(U1-U3) is 0.13 lower; every LA has its own constant base share (0.17 plus
noise), the same in every year.

What the planted effect is on each measure. On the share of children looked
after at 31 March in U1-U3 (``kinship_cla``) it is -0.13 (less a little in the
first treated year, when some children at 31 March were placed before it). The
design's outcome, ``poc_kinship_pct`` (the 2021 evaluation's periods-of-care
measure), counts a period as kinship when *any* of its care-order episodes in
the first 365 days is a kinship placement, a P1 placement or ends in an SGO,
so a drop of 0.13 in the per-placement probability moves it by a different
amount. The test measures that amount exactly: the generator draws every
attribute before applying the shares, so the same seed without the effect gives
the same children with the same episodes, differing only in the placements the
effect changed (the counterfactual world). The true effect on the outcome is
the mean over the pilots' post-period LA-years of (treated world - counterfactual
world), and the study's estimate must find it.
"""
from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from conftest import public_build

from analysis.core.paths import ROOT

pytestmark = pytest.mark.skipif(
    not os.environ.get("SOS_DATA_MIRROR") and not (ROOT / "data" / "raw").exists(),
    reason="real public data not available: set SOS_DATA_MIRROR")

N_CHILDREN = 150_000          # about 80 periods of care per LA-year under a care order
YEARS = range(2013, 2026)
EFFECT = -0.13
SEED = 20250401


def _copy(build):
    import dataclasses

    return dataclasses.replace(build, files=dict(build.files))


def _shares(las, treated, rng):
    base = {la: float(np.clip(0.17 + rng.normal(0, 0.03), 0.08, 0.30)) for la in las}
    planted = {la: {y: base[la] + (EFFECT if la in treated and y >= treated[la] else 0.0)
                    for y in YEARS} for la in las}
    counterfactual = {la: {y: base[la] for y in YEARS} for la in las}
    return planted, counterfactual


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from analysis.childlevel.synthetic import generate_903, write_903_csv
    from analysis.design import load_design
    public = public_build()
    design = load_design()
    treated = design.treated("kinship_care")
    counts = public.panel.groupby("la_code")["year"].nunique()
    las = sorted(counts[counts == counts.max()].index)      # LAs present in every panel year
    planted, counterfactual = _shares(las, treated, np.random.default_rng(7))
    header, episodes = generate_903(N_CHILDREN, las, YEARS, SEED, planted)
    _, episodes_cf = generate_903(N_CHILDREN, las, YEARS, SEED, counterfactual)
    folder = tmp_path_factory.mktemp("childlevel")
    (folder / "903").mkdir()
    write_903_csv(header, folder / "903" / "header.csv", with_la_year=True)
    write_903_csv(episodes, folder / "903" / "episodes.csv", with_la_year=True)
    return dict(public=public, design=design, treated=treated, las=las, folder=folder,
                episodes=episodes, episodes_cf=episodes_cf,
                out=tmp_path_factory.mktemp("processed"), results=tmp_path_factory.mktemp("results"))


@pytest.fixture(scope="module")
def built(world, monkeypatch_module):
    """The data stage in child-level mode, run through the CLI's entry (ensure_panel)."""
    from analysis.run.build import ensure_panel

    monkeypatch_module.setattr("analysis.ingest.panel.build_panel", lambda progress=False, **kw: _copy(world["public"]))
    ensure_panel(out_dir=world["out"], child_level_dir=world["folder"], force=True, echo=lambda *a: None)
    return world["out"]


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()


@pytest.fixture(scope="module")
def study(world, built):
    from analysis.run.study import run_study

    return run_study(panel_path=built / "panel.csv", outcomes=["kinship_care"], progress=False)


def _once(episodes: pd.DataFrame) -> pd.DataFrame:
    """The generated returns with each episode once (an episode is in every return it touches)."""
    from analysis.childlevel.returns import combine_returns

    return combine_returns(episodes, None)[0]


def _true_att(world) -> float:
    """Mean over the pilots' post-period LA-years of treated-world minus counterfactual poc %."""
    from analysis.childlevel.aggregate import to_panel_measures

    o = world["design"].outcome("kinship_care")
    a = to_panel_measures(_once(world["episodes"])).set_index(["la_code", "year"])["poc_kinship_pct"]
    b = to_panel_measures(_once(world["episodes_cf"])).set_index(["la_code", "year"])["poc_kinship_pct"]
    diff = (a - b).reset_index(name="d")
    first = diff["la_code"].map(world["treated"])
    post = first.notna() & (diff["year"] >= first) & diff["year"].between(o.first_year, o.last_year)
    return float(diff.loc[post, "d"].mean())


def test_panel_gets_child_level_columns_and_definitions(world, built):
    panel = pd.read_csv(built / "panel.csv")
    public_cols = list(world["public"].panel.columns)
    assert list(panel.columns[: len(public_cols)]) == public_cols      # public columns untouched
    assert {"poc_kinship_pct", "cla_kinship_pct", "foster_kinship_pct"} <= set(panel.columns)
    measures = pd.read_csv(built / "measures.csv")
    row = measures.set_index("name").loc["poc_kinship_pct"]
    assert row["source_ids"] == "child_level" and "periods of care" in row["definition"].lower()
    validation = pd.read_csv(built / "childlevel_validation.csv")
    assert list(validation.columns[:3]) == ["rule", "child", "field"]
    assert validation.empty                       # the generator writes valid returns


def test_study_finds_the_planted_kinship_effect(world, study):
    est = study.estimates
    main = est[(est["outcome"] == "kinship_care") & (est["specification"] == "main")
               & (est["estimator"] == "twfe")].set_index("inference")
    att = _true_att(world)
    # A drop of 13 points in the placement probability is a drop of more than 13 in
    # the share of periods with any kinship placement (several episodes per period).
    assert att < -13
    # Tolerance: about 80 periods per LA-year give a binomial SE per cell of about
    # 5.6 points; the DiD contrasts 10-11 pilots' 2 pre-years (about 22 cells) and
    # their 22 comparators' 12 years, SE about 5.6 * sqrt(1/22 + 1/44 + 1/110 + 1/260)
    # = 1.7 points. 4 points is 2.4 SE (with this seed: estimate -16.1, true -14.8).
    assert abs(main.loc["cluster", "estimate"] - att) < 4.0, (main.loc["cluster", "estimate"], att)
    wb = main.loc["wild_bootstrap"]
    assert wb["ci_high"] < 0                      # the interval excludes zero
    print(f"\nkinship_care: estimate {wb['estimate']:.2f} pp, true ATT {att:.2f} pp, "
          f"wild bootstrap 95% CI {wb['ci_low']:.2f} to {wb['ci_high']:.2f}")


def test_child_level_lpm_finds_the_planted_effect(world, study):
    """The child-level LPM (one row per period of care) finds the effect too."""
    from analysis.childlevel.did import child_lpm_did
    from analysis.childlevel.outcomes import kinship_periods_of_care

    o = world["design"].outcome("kinship_care")
    poc = kinship_periods_of_care(_once(world["episodes"]))
    poc = poc[poc["year"].between(o.first_year, o.last_year)].copy()
    poc["first_treated"] = poc["la"].map(world["treated"]).fillna(0).astype(int)
    res = child_lpm_did(poc, "kinship_poc", "la", "year", "first_treated")
    att = _true_att(world) / 100
    # All LAs (not only matched ones), weighted by periods: SE about 0.01 (res.se);
    # 0.03 is 3 SE. The planted -0.13 per placement is about -0.15 per period.
    assert abs(res.estimate - att) < 0.03, (res, att)
    assert res.ci[1] < 0
    print(f"\nchild-level LPM: {res.estimate:.3f} (SE {res.se:.3f}), true ATT {att:.3f}")


def test_study_reports_the_child_level_lpm_beside_the_la_level_estimate(world, built, study):
    """estimator child_lpm in results: the LPM on the run's matched LAs and years, children
    weighted by their LA's matching weight, computed from the data stage's counts; it must
    equal the LPM fitted directly on the period-of-care rows (an independent path)."""
    from analysis.childlevel.did import child_lpm_did
    from analysis.childlevel.outcomes import kinship_periods_of_care

    est = study.estimates
    lpm = est[(est["outcome"] == "kinship_care") & (est["estimator"] == "child_lpm")]
    specs = set(est.loc[(est["outcome"] == "kinship_care") & (est["estimator"] == "twfe"),
                        "specification"])
    assert set(lpm["specification"]) == specs          # one child-level row per run
    row = lpm[lpm["specification"] == "main"].iloc[0]
    pairs = study.pairs[study.pairs["outcome"] == "kinship_care"]
    k = pairs.groupby("treated_code")["comparator_code"].transform("size")
    weight = (1.0 / k).groupby(pairs["comparator_code"]).sum().to_dict()
    weight |= {code: 1.0 for code in pairs["treated_code"].unique()}
    o = world["design"].outcome("kinship_care")
    poc = kinship_periods_of_care(_once(world["episodes"]))
    poc = poc[poc["la"].isin(list(weight)) & poc["year"].between(o.first_year, o.last_year)].copy()
    poc["first_treated"] = poc["la"].map(world["treated"]).fillna(0).astype(int)
    poc["w"] = poc["la"].map(weight)
    poc["kinship_poc"] = 100.0 * poc["kinship_poc"]
    direct = child_lpm_did(poc, "kinship_poc", "la", "year", "first_treated", weights="w")
    assert row["estimate"] == pytest.approx(direct.estimate, abs=1e-8)
    assert row["std_error"] == pytest.approx(direct.se, abs=1e-8)
    assert (row["n_treated"], row["n_treated"] + row["n_comparison"]) == (
        direct.n_treated_las, direct.n_las)
    att = _true_att(world)
    assert abs(row["estimate"] - att) < 4.0 and row["ci_high"] < 0, (row, att)
    print(f"\nchild-level LPM in results: {row['estimate']:.2f} pp "
          f"({row['ci_low']:.2f} to {row['ci_high']:.2f}), true ATT {att:.2f}")


def test_published_tables_pass_disclosure_and_resist_recovery(world, built):
    from analysis.childlevel.aggregate import tidy_measures
    from analysis.childlevel.disclosure import assert_publishable, load_settings, recover_suppressed
    from analysis.childlevel.pipeline import protect_counts, published_table

    published = pd.read_csv(built / "childlevel_published.csv", dtype=str)
    assert set(published["measure"]) >= {"poc_kinship_pct", "cla_kinship_pct"}
    # no count between 1 and threshold - 1 is shown anywhere in the published file
    threshold = load_settings().threshold
    for col in ("numerator", "rest", "denominator"):
        shown = pd.to_numeric(published[col], errors="coerce")
        assert not shown.between(1, threshold - 1).any(), col
    # one England row (E92000001) per measure and year: the sum of the LA rows rounded to
    # the nearest 10 (DfE's national rounding), where every LA count of the year is shown
    eng = published["la_code"] == "E92000001"
    assert published[eng].groupby(["measure", "year"]).size().eq(1).all()
    assert published[eng][["measure", "year"]].drop_duplicates().shape[0] == \
        published[["measure", "year"]].drop_duplicates().shape[0]
    checked = 0
    for (measure, year), g in published[~eng].groupby(["measure", "year"]):
        e = published[eng & (published["measure"] == measure) & (published["year"] == year)].iloc[0]
        for col in ("numerator", "denominator"):
            if (g[col] == "c").any() or e[col] == "c":
                continue
            total = pd.to_numeric(g[col]).sum()
            assert int(e[col]) == int(np.floor(total / 10 + 0.5)) * 10, (measure, year, col)
            checked += 1
    assert checked
    # Small cells: the synthetic LAs are large, so also protect a version with
    # small LA-years (a tenth of the children of a few LAs) to exercise suppression.
    tidy = tidy_measures(world["episodes"])
    small = tidy[tidy["la_code"].isin(world["las"][:6])].copy()
    small[["numerator", "denominator"]] = (small[["numerator", "denominator"]] // 40)
    protected = protect_counts(small)
    assert_publishable(protected)
    pub = published_table(protected)
    assert (pub[["numerator", "rest", "denominator"]] == "c").to_numpy().any()
    assert (pub.loc[(pub[["numerator", "denominator"]] == "c").any(axis=1), "value"] == "c").all()
    settings = load_settings()
    bounds = recover_suppressed(protected)
    assert bounds
    for (table, row, col), (lo, hi) in bounds.items():
        # the attacker cannot pin a withheld cell below the threshold
        assert hi >= settings.threshold and hi - lo >= settings.protection_level or lo >= settings.threshold, \
            (table, row, col, lo, hi)


def test_strict_validation_stops_with_one_line(world, tmp_path):
    folder = tmp_path / "bad"
    (folder / "E09000005" / "2019").mkdir(parents=True)
    (folder / "E09000005" / "2019" / "header.csv").write_text(
        "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\nA1,1,01/01/2010,WBRI,,,\n")
    (folder / "E09000005" / "2019" / "episodes.csv").write_text(
        "CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,HOME_POST,PL_POST,URN\n"
        "A1,01/05/2018,S,C2,N1,ZZ,PR1,,,,,,\n")
    env = {**os.environ, "SOS_CHILDLEVEL_DIR": str(folder)}
    r = subprocess.run([sys.executable, "-m", "analysis", "data", "--strict", "--out",
                        str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 2, r.stderr
    assert r.stderr.count("\n") == 1 and "PLACE" in r.stderr, r.stderr


def test_public_outputs_unchanged_without_child_level(world, tmp_path, monkeypatch):
    """Unset SOS_CHILDLEVEL_DIR: the public panel and results are byte-identical."""
    from analysis.ingest.panel import write_atomically
    from analysis.run.build import ensure_panel
    from analysis.run.study import run_study, write_results

    monkeypatch.delenv("SOS_CHILDLEVEL_DIR", raising=False)
    monkeypatch.setattr("analysis.ingest.panel.build_panel", lambda progress=False, **kw: _copy(world["public"]))
    (tmp_path / "a").mkdir()
    ensure_panel(out_dir=tmp_path / "a", force=True, echo=lambda *a: None)
    write_atomically(world["public"].files, tmp_path / "b")  # the public stage as it was
    for name in sorted(p.name for p in (tmp_path / "b").glob("*.csv")):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name
    assert not (tmp_path / "a" / "childlevel_published.csv").exists()
    # The study on the public panel skips the child-level outcome with a note, and
    # the estimates are byte-identical to those of the design without it.
    design = ROOT / "data" / "study_design.yaml"
    text = design.read_text(encoding="utf-8")
    start = text.index("  # Kinship care as the 2021 evaluation")
    end = text.index("\n# Fewest pre-period years")
    without = tmp_path / "design_without.yaml"
    without.write_text(text[:start].rstrip("\n") + "\n" + text[end:], encoding="utf-8")
    panel = tmp_path / "a" / "panel.csv"
    res = run_study(panel_path=panel, outcomes=["kinship_care", "sgo_exits"], progress=False,
                    specifications=["main", "k1"])
    ref = run_study(panel_path=panel, design_path=without, outcomes=["sgo_exits"], progress=False,
                    specifications=["main", "k1"])
    assert set(res.estimates["outcome"]) == {"sgo_exits"}
    assert res.notes["note"].str.contains("poc_kinship_pct").any()
    write_results(res, tmp_path / "with")
    write_results(ref, tmp_path / "without")
    assert (tmp_path / "with" / "estimates.csv").read_bytes() == \
        (tmp_path / "without" / "estimates.csv").read_bytes()


@pytest.mark.parametrize("old,new,message", [
    ("    source: child_level", "    source: secure", "is not one of"),
    ("    measure: poc_kinship_pct", "    measure: poc_kinship_rate", "unknown child-level measure"),
])
def test_design_validates_the_outcome_source(tmp_path, old, new, message, real_panel):
    from analysis.core.errors import DataError
    from analysis.design import load_design

    text = (ROOT / "data" / "study_design.yaml").read_text(encoding="utf-8")
    assert old in text
    bad = tmp_path / "design.yaml"
    bad.write_text(text.replace(old, new), encoding="utf-8")
    with pytest.raises(DataError, match=message):
        load_design(bad)
    public_cols = set(pd.read_csv(real_panel / "panel.csv", nrows=0).columns)
    d = load_design(known_measures=public_cols)
    assert d.outcome("kinship_care").source == "child_level"   # not refused by the public panel


def test_cin_outcomes_are_skipped_with_a_note_when_the_returns_lack_them(built):
    from analysis.run.study import run_study

    ids = ["rereferrals_after_nfa", "escalation_after_rereferral", "assessment_duration"]
    study = run_study(panel_path=built / "panel.csv", outcomes=ids, progress=False)
    assert study.estimates.empty and study.evidence.empty
    notes = study.notes.set_index("outcome")["note"]
    for oid, measure in [("rereferrals_after_nfa", "rereferral_6m_after_nfa_pct"),
                         ("escalation_after_rereferral", "rereferral_escalation_pct"),
                         ("assessment_duration", "assessment_days_median")]:
        assert oid not in set(study.evidence["outcome"])
        assert f"measure {measure} is not in the panel" in notes[oid]


def test_cin_outcomes_are_estimated_beside_their_child_level_model(world, built, tmp_path):
    """The 903-only panel plus LA-year CIN measures with a planted effect (-5 points on the
    re-referral share after no further action, 200 referrals in every LA-year): the study
    estimates the child-level outcomes; with equal denominators the child-level LPM weighs
    every LA-year alike, so it equals the LA-level estimate exactly."""
    from analysis.childlevel.pipeline import COUNTS_FILE
    from analysis.run.study import run_study

    d = world["design"]
    panel = pd.read_csv(built / "panel.csv", dtype={"la_code": str})
    rng = np.random.default_rng(11)
    treated = d.treated("rereferrals_after_nfa")
    base = {la: rng.uniform(20, 30) for la in panel["la_code"].unique()}
    share = np.array([base[la] + 0.3 * (y - 2013) + rng.normal(0, 1.5)
                      + (-5.0 if la in treated and y >= treated[la] else 0.0)
                      for la, y in zip(panel["la_code"], panel["year"])])
    n = 200
    numerator = np.clip(np.round(share / 100 * n), 0, n)
    panel["rereferral_6m_after_nfa_pct"] = 100 * numerator / n
    # a second outcome with no counts (a median): estimated, no child-level model
    panel["assessment_days_median"] = 20 + rng.normal(0, 2, len(panel))
    panel.to_csv(tmp_path / "panel.csv", index=False)
    counts = pd.read_csv(built / COUNTS_FILE, dtype={"la_code": str})
    extra = pd.DataFrame({"measure": "rereferral_6m_after_nfa_pct", "la_code": panel["la_code"],
                          "year": panel["year"], "numerator": numerator, "denominator": n})
    pd.concat([counts, extra], ignore_index=True).to_csv(tmp_path / COUNTS_FILE, index=False)

    res = run_study(panel_path=tmp_path / "panel.csv", progress=False, workers=1, specifications=["main"],
                    outcomes=["rereferrals_after_nfa", "assessment_duration",
                              "escalation_after_rereferral"])
    est = res.estimates[res.estimates["specification"] == "main"]
    nfa = est[est["outcome"] == "rereferrals_after_nfa"].set_index(["estimator", "inference"])
    assert abs(nfa.loc[("twfe", "cluster"), "estimate"] + 5.0) < 1.5
    assert nfa.loc[("twfe", "wild_bootstrap"), "ci_high"] < 0
    assert nfa.loc[("child_lpm", "cluster"), "estimate"] == pytest.approx(
        nfa.loc[("twfe", "cluster"), "estimate"], abs=1e-8)
    days = est[est["outcome"] == "assessment_duration"]
    assert "twfe" in set(days["estimator"]) and "child_lpm" not in set(days["estimator"])
    assert {"rereferrals_after_nfa", "assessment_duration"} <= set(res.evidence["outcome"])
    # escalation has no values at all: skipped with its reason
    note = res.notes.set_index("outcome").loc["escalation_after_rereferral", "note"]
    assert "rereferral_escalation_pct is not in the panel" in note
