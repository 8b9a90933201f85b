"""The child-level outcome rules file: parameters reach the code, the chapter prints them,
bad files are refused with one line."""
from __future__ import annotations

import pytest
import yaml
from test_childlevel_outcomes import LA, episodes, referrals

from analysis.childlevel import aggregate as A
from analysis.childlevel import outcomes as O
from analysis.core.errors import DesignError


def _write(tmp_path, change) -> A.OutcomeRules:
    doc = yaml.safe_load(A.OUTCOME_RULES_PATH.read_text(encoding="utf-8"))
    change(doc)
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
    return A.load_outcome_rules(path)


def test_file_parameters_equal_the_functions_defaults():
    """The rules file and the outcome functions' defaults say the same thing, so a direct
    call of an outcome function and the pipeline agree."""
    p = A.load_outcome_rules().parameters
    assert tuple(p["kinship_placements"]) == O.KINSHIP_CODES
    assert tuple(p["foster_placements"]) == O.FOSTER_CODES
    assert tuple(p["poc_kinship_placements"]) == O.POC_KINSHIP_PLACEMENTS
    assert tuple(p["poc_kinship_reasons"]) == O.POC_KINSHIP_REASONS
    import inspect

    d = {f: {k: v.default for k, v in inspect.signature(getattr(O, f)).parameters.items()}
         for f in ("kinship_periods_of_care", "assessment_durations", "rereferrals",
                   "rereferral_after_nfa", "rereferral_escalation")}
    assert p["poc_window_days"] == d["kinship_periods_of_care"]["window_days"]
    assert tuple(p["poc_legal_statuses"]) == tuple(d["kinship_periods_of_care"]["legal_statuses"])
    assert p["assessment_start"] == d["assessment_durations"]["start"]
    assert p["assessment_limit_working_days"] == d["assessment_durations"]["limit"]
    assert p["rereferral_months"] == d["rereferrals"]["months"] == d["rereferral_escalation"]["months"]
    assert p["nfa_rereferral_months"] == d["rereferral_after_nfa"]["months"]
    assert p["escalation_window_months"] == d["rereferral_escalation"]["window_months"]


def test_a_changed_window_changes_the_measure(tmp_path):
    # child x: referrals on 1 May 2018 and 1 December 2018, seven months apart
    cin = {"referrals": referrals([(LA, "x", "r1", "2018-05-01", "2018-05-20", False),
                                   (LA, "x", "r2", "2018-12-01", "2019-01-10", False)])}
    twelve = A.tidy_measures(cin=cin).set_index(["measure", "year"])["value"]
    # reporting year 2019 (April 2018 - March 2019): r2 is a re-referral of r1 -> 1 of 2
    assert twelve[("rereferral_12m_pct_child", 2019)] == pytest.approx(50.0)
    rules = _write(tmp_path, lambda d: d["parameters"].update(rereferral_months=6))
    six = A.tidy_measures(cin=cin, rules=rules).set_index(["measure", "year"])["value"]
    assert six[("rereferral_12m_pct_child", 2019)] == 0.0       # seven months > six
    # and the printed rule and the measure definition follow the file
    assert "within 6 calendar months" in rules.table().iloc[3]["What is counted"]
    defs = A.measure_definitions(rules).set_index("name")
    assert defs.loc["rereferrals_child", "label"] == "Re-referrals within 6 months (child-level)"


def test_a_changed_code_list_changes_kinship(tmp_path):
    ep = episodes([(LA, "a", "2018-01-10", None, "S", "C2", "U4", None)])
    base = A.tidy_measures(ep, years=[2018]).set_index("measure")["value"]
    assert base["cla_kinship_pct"] == 0.0
    rules = _write(tmp_path, lambda d: d["parameters"].update(
        kinship_placements=["U1", "U2", "U3", "U4"]))
    wider = A.tidy_measures(ep, years=[2018], rules=rules).set_index("measure")["value"]
    assert wider["cla_kinship_pct"] == 100.0


def test_rules_table_prints_every_value_used():
    rules = A.load_outcome_rules()
    t = rules.table()
    assert list(t.columns) == ["Outcome", "Measures", "Who is counted", "What is counted",
                               "Window and censoring", "Year", "Compared with the 2021 evaluation"]
    text = " ".join(t.astype(str).to_numpy().ravel())
    assert "{" not in text and "}" not in text
    assert "U1, U2, U3, Q1, F1, F4, P1" in text and "365 days" in text
    assert "45 working days" in text
    covered = {m for ms in t["Measures"] for m in ms.split(", ")}
    pct = {k for k, v in A.MEASURES.items() if v[2] == "pct"}
    assert pct <= covered                         # every percentage measure has its rule


@pytest.mark.parametrize("change, message", [
    (lambda d: d["parameters"].update(rerefferal_months=12), "unknown key 'rerefferal_months'"),
    (lambda d: d["parameters"].pop("poc_window_days"), "missing key 'poc_window_days'"),
    (lambda d: d["parameters"].update(poc_window_days="a year"), "poc_window_days must be a positive whole number"),
    (lambda d: d["parameters"].update(assessment_start="closure"), "assessment_start must be assessment or referral"),
    (lambda d: d["rules"][0].update(window="within {poc_days} days"), "{poc_days} names no parameter"),
    (lambda d: d["rules"][1].update(measures=["poc_kinship"]), "unknown child-level measure 'poc_kinship'"),
    (lambda d: d["rules"][2].pop("year"), "rules[2] must have exactly the fields"),
    (lambda d: d["rules"][1].update(measures="poc_kinship_pct"), "rules[1].measures must be a list"),
])
def test_bad_rules_file_is_refused_with_one_line(tmp_path, change, message):
    with pytest.raises(DesignError) as e:
        _write(tmp_path, change)
    assert message in str(e.value) and "\n" not in str(e.value)
    assert "rules.yaml" in str(e.value)


def test_rules_markdown_has_one_block_per_outcome_with_values_filled():
    rules = A.load_outcome_rules()
    md = rules.markdown()
    heads = [line for line in md.split("\n") if line.startswith("**")]
    assert len(heads) == len(rules.rules)
    assert md.count("\n- *Compared with the 2021 evaluation.* ") == len(rules.rules)
    assert "**Re-referrals within 12 months** (`rereferral_12m_pct_child`)" in md
    assert "- *Window and censoring.* 365 days from the start of the period" in md
    assert "{" not in md.replace("`", "")
