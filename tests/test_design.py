"""Study design file: loads, validates, refuses impossible designs with clear messages."""
from __future__ import annotations

import copy
import re

import pytest
import yaml

from analysis.core.errors import DesignError
from analysis.design import DESIGN_PATH, StudyDesign, load_design, reporting_year
from analysis.ingest.geography import la_register

WAVE1 = ["E09000005", "E06000023", "E10000018", "E10000019", "E10000020", "E10000029",
         "E09000030", "E08000036", "E10000032", "E06000041"]
BEXLEY, TOWER_HAMLETS = "E09000004", "E09000030"
PANEL_MEASURES = {"assessments_45wd_pct", "rereferral_pct", "cpp_second_subsequent_pct",
                  "cpp_starts_rate_per10k", "cla_ceased_sgo_pct", "cla_foster_pct",
                  "cin_rate_per10k", "cla_rate_per10k", "cla_starts_rate_per10k",
                  "s47_rate_per10k", "sw_turnover_pct", "sw_agency_pct",
                  "pop_0_17", "idaci_score", "people_per_sqkm", "ofsted_overall"}


@pytest.fixture(scope="module")
def design() -> StudyDesign:
    return load_design()


@pytest.fixture
def raw() -> dict:
    return yaml.safe_load(DESIGN_PATH.read_text(encoding="utf-8"))


def _write(tmp_path, data) -> "Path":  # noqa: F821
    path = tmp_path / "study_design.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return path


def _refused(tmp_path, data, pattern, **kw):
    path = _write(tmp_path, data)
    with pytest.raises(DesignError) as info:
        load_design(path, **kw)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}, "), msg
    assert re.search(pattern, msg), msg
    return msg


# ---------------------------------------------------------------- the real design

def test_real_design_pilots_and_timing(design):
    assert len(design.pilots) == 11
    assert design.pilot_codes("wave1") == WAVE1 + [BEXLEY]
    assert design.pilot_codes("wave2") == [c for c in WAVE1 if c != TOWER_HAMLETS] + [BEXLEY]
    assert all(design.first_treated_year(c, "wave1") == 2015 for c in WAVE1)
    assert design.first_treated_year(BEXLEY, "wave1") == 2018
    assert design.first_treated_year(BEXLEY, "wave2") == 2018
    assert design.first_treated_year("E10000020", "wave2") == 2018
    assert design.first_treated_year(TOWER_HAMLETS, "wave2") is None
    assert design.waves["wave1"].first_treated_year == 2015   # November 2014
    assert design.waves["wave2"].first_treated_year == 2018   # 29 September 2017


def test_real_design_donor_pool(design):
    reg = la_register()
    main = design.donor_pool()
    assert len(reg) == 158
    # 158 - 11 pilots - 2 other SoS - 11 boundary-changed - 2 tiny (City, Scilly).
    assert len(main) == 132
    assert len(design.donor_pool("exclude_similar_models")) == 111
    assert not set(main) & set(design.all_pilot_codes())
    assert not {"E09000027", "E09000021"} & set(main)                 # Richmond, Kingston
    assert not set(reg.loc[reg.boundary_changed, "la_code"]) & set(main)
    assert not {"E09000001", "E06000053"} & set(main)
    assert "E10000015" in main                                        # Hertfordshire (Family Safeguarding)
    assert "E10000015" not in design.donor_pool("exclude_similar_models")
    assert design.donor_pool("k5") == main


def test_real_design_outcomes_and_specs(design):
    a = design.outcome("assessments_45wd_pct")
    assert a.onset == "wave2" and a.first_year == 2015 and a.primary
    assert design.onset_for("rereferral_pct") == "wave1"
    assert design.years("rereferral_pct")[:2] == [2013, 2014]
    assert 2021 not in design.years("rereferral_pct", "no_covid")
    assert design.years("rereferral_pct", "programme_period")[-1] == 2020
    assert design.onset_for("rereferral_pct", "wave2_onset") == "wave2"
    assert design.k() == 2 and design.k("k1") == 1 and design.k("k5") == 5
    assert set(design.specifications) >= {"main", "exclude_similar_models", "wave2_onset",
                                          "no_covid", "leave_one_out", "k1", "k5", "transition_year",
                                          "years_0_3", "no_known_sos", "pilots_new_to_sos",
                                          "pilots_experienced", "all_donors"}
    assert design.spec("leave_one_out").leave_one_out
    # The log records every change made after results were first seen.
    assert [d.date.isoformat() for d in design.deviations][:2] == ["2026-11-26", "2026-11-26"]
    # issues 13-15 (2026-12-03): one primary inference, SESOIs, counted robustness, new specifications;
    # issues 12 and 15 (2026-12-07): the anomaly and common-comparator sensitivity specifications
    dates = [d.date.isoformat() for d in design.deviations[2:]]
    assert set(dates) == {"2026-12-03", "2026-12-07"} and dates == sorted(dates)
    assert {"common_comparators", "no_anomalies"} <= set(design.specifications)
    assert design.spec("no_anomalies").drop_anomalies and design.spec("common_comparators").common_comparators
    assert any("primary inference" in d.change for d in design.deviations[2:])
    assert "kinship_care" in design.deviations[0].change
    assert "rereferrals_after_nfa" in design.deviations[1].change
    child = [o.id for o in design.outcomes if o.source == "child_level"]
    assert child == ["kinship_care", "rereferrals_after_nfa", "escalation_after_rereferral",
                     "assessment_duration"]
    assert design.evidence.thresholds["max_smd"].value == 0.25
    assert design.inference.wild_bootstrap.draws == 9999
    assert design.inference.randomization.draws == 5000
    # Every outcome measure and matching covariate is a known panel measure.
    load_design(known_measures=PANEL_MEASURES)


def test_design_feeds_matching_and_evidence(design):
    import inspect

    from analysis.methods.evidence import grade_evidence
    from analysis.methods.matching import match_comparators

    kw = design.matching_kwargs("k5")
    # Ofsted is read by the study runner in the earliest onset year, then enters as a constant
    assert kw["k"] == 5 and kw["replace"] is False and kw["context_at"]["ofsted_overall"] == "last"
    assert kw["missing_category"] == ["ofsted_overall"]
    # Every key is an argument of match_comparators.
    inspect.signature(match_comparators).bind_partial(**kw)
    assert design.pre_years("rereferral_pct") == [2013, 2014]
    assert design.pre_years("assessments_45wd_pct") == [2015, 2016, 2017]
    assert design.treated("assessments_45wd_pct") == {c: 2018 for c in design.pilot_codes("wave2")}
    g = grade_evidence(0.2, -1, 1, 0.5, 0.1, 1.0, thresholds=design.evidence.threshold_values())
    assert g.level == "no"


def test_reporting_year():
    import datetime as dt
    assert reporting_year(dt.date(2014, 11, 1)) == 2015
    assert reporting_year(dt.date(2015, 3, 31)) == 2015
    assert reporting_year(dt.date(2017, 9, 29)) == 2018


# ---------------------------------------------------------------- refusals

def test_unknown_la_code(tmp_path, raw):
    raw["pilots"][3]["la_code"] = "E0999"
    _refused(tmp_path, raw, r"pilots\[3\]\.la_code: unknown LA code 'E0999'")


def test_unknown_la_code_in_exclusions_and_similar_models(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["similar_models"][0]["la_code"] = "E10000099"
    _refused(tmp_path, bad, r"similar_models\[0\]\.la_code: unknown LA code 'E10000099'")
    raw["exclusions"]["manual"][1]["la_code"] = "X"
    _refused(tmp_path, raw, r"exclusions\.manual\[1\]\.la_code: unknown LA code 'X'")


def test_unknown_measure(tmp_path, raw):
    idx = [o["measure"] for o in raw["outcomes"]].index("sw_agency_pct")
    raw["outcomes"][idx]["measure"] = "sw_agency_rate"
    path = _write(tmp_path, raw)
    load_design(path)  # no check without known_measures
    _refused(tmp_path, raw, rf"outcomes\[{idx}\]\.measure: unknown measure 'sw_agency_rate'",
             known_measures=PANEL_MEASURES)


def test_wave1_onset_for_45_day_assessments_has_no_pre_period(tmp_path, raw):
    idx = [o["measure"] for o in raw["outcomes"]].index("assessments_45wd_pct")
    raw["outcomes"][idx]["onset"] = "wave1"
    msg = _refused(tmp_path, raw, rf"outcomes\[{idx}\]\.onset: outcome 'assessments_45wd_pct' "
                                  r"has no pre-period under onset 'wave1'")
    assert "treated from 2015" in msg and "2015-2025" in msg


def test_specification_imposing_wave1_is_refused_naming_the_spec(tmp_path, raw):
    raw["specifications"]["wave1_onset"] = {"description": "all wave 1", "changes": {"onset": "wave1"}}
    msg = _refused(tmp_path, raw, r"specifications\.wave1_onset\.changes\.onset: outcome "
                                  r"'assessments_45wd_pct' has no pre-period under onset 'wave1'")
    assert "specification wave1_onset" in msg


def test_one_pre_year_is_too_few(tmp_path, raw):
    idx = [o["measure"] for o in raw["outcomes"]].index("rereferral_pct")
    raw["outcomes"][idx]["first_year"] = 2014
    _refused(tmp_path, raw, rf"outcomes\[{idx}\]\.onset: outcome 'rereferral_pct' has only 1 "
                            r"pre-year\(s\) \[2014\] under onset 'wave1'.*need at least 2")


def test_no_post_period(tmp_path, raw):
    raw["specifications"]["short"] = {"description": "too short", "changes": {"last_year": 2016}}
    _refused(tmp_path, raw, r"specifications\.short\.changes\.last_year: outcome "
                            r"'assessments_45wd_pct' has no post-period under onset 'wave2'")


def test_unknown_specification_key_and_bad_values(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["specifications"]["k1"]["changes"] = {"comparators": 1}
    _refused(tmp_path, bad, r"specifications\.k1\.changes\.comparators: unknown key")
    bad = copy.deepcopy(raw)
    bad["specifications"]["wave2_onset"]["changes"] = {"onset": "wave3"}
    _refused(tmp_path, bad, r"specifications\.wave2_onset\.changes\.onset: 'wave3' is not one of")
    bad = copy.deepcopy(raw)
    del bad["specifications"]["main"]
    _refused(tmp_path, bad, r"specifications\.main: missing")


def test_dates_must_parse(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["waves"]["wave1"]["start"] = "November 2014"
    _refused(tmp_path, bad, r"waves\.wave1\.start: not a date")
    raw["deviations"] = [{"date": "2025-13-01", "change": "x", "reason": "y"}]
    _refused(tmp_path, raw, r"deviations\[0\]\.date: not a date")


def test_deviation_log_entries_load(tmp_path, raw):
    raw["deviations"] = [{"date": "2025-06-01", "change": "k from 2 to 3",
                          "reason": "two pilots had no donor within the caliper"}]
    d = load_design(_write(tmp_path, raw))
    assert d.deviations[0].change == "k from 2 to 3" and d.deviations[0].date.year == 2025
    raw["deviations"] = [{"date": "2025-06-01", "change": "k from 2 to 3"}]
    _refused(tmp_path, raw, r"deviations\[0\]\.reason: missing")


def test_typo_keys_and_yaml_errors(tmp_path, raw):
    bad = copy.deepcopy(raw)
    bad["pilots"][0]["la_cod"] = bad["pilots"][0].pop("la_code")
    _refused(tmp_path, bad, r"pilots\[0\]\.la_code: missing")
    path = tmp_path / "broken.yaml"
    path.write_text("pilots: [\n  - la_code: E09000005\n", encoding="utf-8")
    with pytest.raises(DesignError, match=r"broken\.yaml: not valid YAML at line \d+"):
        load_design(path)


def test_a_pilot_cannot_also_be_a_donor_exclusion_list_entry(tmp_path, raw):
    raw["other_sos_las"][0]["la_code"] = "E10000020"  # Norfolk is a pilot
    _refused(tmp_path, raw, r"other_sos_las\[0\]\.la_code: E10000020 is already pilots\[4\]")


def test_too_few_donors_without_replacement(tmp_path, raw):
    raw["specifications"]["k20"] = {"description": "k 20", "changes": {"k": 20}}
    _refused(tmp_path, raw, r"specifications\.k20: needs 220 distinct comparators .* donor pool has 132")


def test_evidence_thresholds_checked_by_the_grading_module(tmp_path, raw):
    raw["evidence"]["thresholds"]["p_high"]["value"] = 0.2
    _refused(tmp_path, raw, r"evidence\.thresholds: .*p_high < p_moderate")
    del raw["evidence"]["thresholds"]["p_high"]
    _refused(tmp_path, raw, r"evidence\.thresholds: .*missing \['p_high'\]")


def test_helpers_refuse_unknowns(design):
    with pytest.raises(DesignError, match="'E10000015' is not a pilot LA"):
        design.first_treated_year("E10000015", "wave1")
    with pytest.raises(DesignError, match="unknown onset 'wave3'"):
        design.first_treated_year("E10000020", "wave3")
    with pytest.raises(DesignError, match="unknown specification 'k9'"):
        design.donor_pool("k9")


def test_new_specifications_and_prior_use_groups():
    """Issue 14: pre-declared timing, estimand and prior-use specifications; SESOI per outcome."""
    from analysis.run.study import duplicate_specs, plan_runs

    d = load_design()
    groups = {p.name: p.prior_use_group for p in d.pilots}
    assert groups["Bristol"] == "new_to_sos" and groups["Brent"] == "experienced"
    assert groups["Bexley"] == "unknown"
    assert set(d.treated("rereferral_pct", "pilots_new_to_sos")) == {
        p.la_code for p in d.pilots if p.prior_use_group == "new_to_sos"}
    # the SoS-free pool drops the LAs named in the reference file, and only those
    known = {k.la_code for k in d.known_sos_use}
    assert "E09000032" in known  # Wandsworth: an Ofsted report names the model
    assert set(d.donor_pool()) - set(d.donor_pool("no_known_sos")) == known & set(d.donor_pool())
    assert all(o.sesoi > 0 and o.sesoi_reason for o in d.outcomes)
    # no sensitivity run reproduces main: wave-two onset is skipped for wave-two outcomes
    dup = set(duplicate_specs(d))
    assert ("assessment_timeliness", "wave2_onset") in dup and ("rereferrals", "wave2_onset") not in dup
    runs = plan_runs(d)
    assert not any(r.outcome == "assessment_timeliness" and r.spec == "wave2_onset" for r in runs)
    assert "k2" not in d.specifications


def test_leave_one_out_runs_only_over_pilots_in_the_sample():
    import pandas as pd

    from analysis.run.study import plan_runs

    d = load_design()
    norfolk = next(p.la_code for p in d.pilots if p.name == "Norfolk")
    rows = [dict(la_code=p.la_code, year=y, rereferral_pct=(None if p.la_code == norfolk else 20.0))
            for p in d.pilots for y in (2013, 2014)]
    panel = pd.DataFrame(rows)
    loo = [r.left_out for r in plan_runs(d, panel) if r.outcome == "rereferrals" and r.spec == "leave_one_out"]
    assert norfolk not in loo and len(loo) == len(d.treated("rereferrals")) - 1


def test_matching_uses_what_was_known_before_every_onset():
    """Issue 15: looked-after shares from 2011, a held-out pre-year, Ofsted before every onset."""
    import datetime as dt

    d = load_design()
    # the Ofsted judgement is read in the earliest onset year for every outcome and spec but the legacy one
    ofsted = d.fixed_year_context()
    assert ofsted == {"ofsted_overall": d.earliest_onset_year()} == {"ofsted_overall": 2015}
    for o in d.outcomes:
        for spec in d.specifications:
            if d.spec(spec).legacy_matching:
                continue
            year = d.fixed_year_context(spec)["ofsted_overall"]
            assert all(year <= first for first in d.treated(o, spec).values())
    # "in force at the start of reporting year 2015" is 1 April 2014, before wave one began
    assert dt.date(year - 1, 4, 1) < min(w.start for w in d.waves.values())
    # the first edition read it in the year after each outcome's pre-period: 2018 for wave-two outcomes
    assert d.matching_kwargs("main_2026_11")["context_at"]["ofsted_overall"] == "next"
    assert d.pre_years("assessment_timeliness")[-1] + 1 == 2018
    # looked-after shares use every pre-year from 2011; the last is held out of matching
    assert d.pre_years("sgo_exits") == [2011, 2012, 2013, 2014]
    assert d.matching_pre_years("sgo_exits") == [2011, 2012, 2013]
    assert d.pre_years("foster_share")[0] == 2011
    assert d.matching_pre_years("rereferrals") == d.pre_years("rereferrals") == [2013, 2014]
    assert d.years("sgo_exits", "main_2026_11")[0] == 2013
