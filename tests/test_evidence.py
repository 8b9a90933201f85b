"""The evidence-strength rule: table-driven cases, monotonicity, NaN handling, wording."""
from __future__ import annotations

import itertools

import pytest

from analysis.core.errors import DesignError
from analysis.methods.evidence import (
    DEFAULT_THRESHOLDS,
    LEVELS,
    check_thresholds,
    describe_rule,
    describe_verdicts,
    grade_evidence,
    sign_agrees,
    verdict,
)

NAN = float("nan")
GOOD = dict(primary_p=0.001, ci_low=0.5, ci_high=2.0, pretrend_p=0.5, max_abs_smd=0.1,
            sign_agreement_share=0.9)


def grade(**change):
    return grade_evidence(**{**GOOD, **change}, thresholds=DEFAULT_THRESHOLDS)


@pytest.mark.parametrize("change, level, limiting", [
    ({}, "high", []),
    (dict(ci_low=-2.0, ci_high=-0.5), "high", []),                      # negative effect
    (dict(primary_p=0.03), "moderate", ["p-value"]),
    (dict(primary_p=0.07), "low", ["p-value"]),
    (dict(primary_p=0.2), "no", ["p-value"]),
    (dict(primary_p=0.01), "moderate", ["p-value"]),                    # strict <
    (dict(primary_p=0.10), "no", ["p-value"]),
    (dict(primary_p=NAN), "no", ["p-value"]),
    (dict(ci_low=-0.1), "low", ["interval"]),                            # significant, CI has 0
    (dict(ci_low=NAN), "low", ["interval"]),
    (dict(pretrend_p=0.02), "low", ["pre-trends"]),
    (dict(pretrend_p=0.10), "high", []),                                 # >= passes
    (dict(pretrend_p=NAN), "moderate", ["pre-trends"]),                  # one pre-year: capped
    (dict(primary_p=0.03, pretrend_p=NAN), "moderate", ["p-value", "pre-trends"]),
    (dict(max_abs_smd=0.3), "low", ["balance"]),
    (dict(max_abs_smd=0.25), "low", ["balance"]),                        # < needed
    (dict(max_abs_smd=-0.1), "high", []),                                # sign ignored
    (dict(max_abs_smd=NAN), "low", ["balance"]),
    (dict(sign_agreement_share=0.8), "high", []),
    (dict(sign_agreement_share=0.7), "moderate", ["agreement"]),
    (dict(sign_agreement_share=0.5), "low", ["agreement"]),
    (dict(sign_agreement_share=NAN), "moderate", ["agreement"]),
    (dict(primary_p=0.03, max_abs_smd=0.4), "low", ["balance"]),
    (dict(primary_p=0.2, ci_low=-1, pretrend_p=0.0, max_abs_smd=1, sign_agreement_share=0), "no",
     ["p-value"]),
    (dict(primary_p=0.08, pretrend_p=NAN, sign_agreement_share=NAN), "low", ["p-value"]),
])
def test_table_of_cases(change, level, limiting):
    g = grade(**change)
    assert g.level == level
    assert g.limiting == limiting
    assert len(g.reasons) == 5 and str(g) == f"{level} strength evidence"


def test_reasons_say_pass_and_fail():
    g = grade(pretrend_p=0.02, sign_agreement_share=NAN)
    r = g.reasons
    assert r[0].startswith("passed: p = 0.001 < 0.01")
    assert r[1].startswith("passed: confidence interval")
    assert r[2] == "failed (caps at low): pre-trend test rejected (p = 0.02 < 0.1)"
    assert r[3].startswith("passed: largest |SMD|")
    assert r[4].startswith("not assessed (caps at moderate): no sensitivity")
    assert grade(primary_p=0.03).reasons[0].startswith("failed (caps at moderate): p = 0.03")


# Each axis ordered from worse to better; the rule must never lower the grade along one.
AXES = {
    "primary_p": [1.0, 0.5, 0.1, 0.07, 0.05, 0.02, 0.01, 0.005, 1e-4],
    "ci": [(-1.0, 1.0), (-0.01, 3.0), (0.01, 3.0), (1.0, 3.0)],
    "pretrend_p": [0.0, 0.05, 0.0999, 0.1, 0.3, 1.0],
    "max_abs_smd": [2.0, 0.3, 0.25, 0.2499, 0.1, 0.0],
    "sign_agreement_share": [0.0, 0.5, 0.6, 0.7, 0.8, 1.0],
}


def _grade_point(point):
    (lo, hi) = point["ci"]
    return grade_evidence(point["primary_p"], lo, hi, point["pretrend_p"], point["max_abs_smd"],
                          point["sign_agreement_share"], DEFAULT_THRESHOLDS).rank


def test_monotone_in_every_input():
    names = list(AXES)
    n_checked = 0
    for idx in itertools.product(*(range(len(AXES[n])) for n in names)):
        point = {n: AXES[n][i] for n, i in zip(names, idx)}
        g0 = _grade_point(point)
        for n, i in zip(names, idx):
            if i + 1 < len(AXES[n]):
                better = {**point, n: AXES[n][i + 1]}
                assert _grade_point(better) >= g0, (point, n)
                n_checked += 1
    assert n_checked > 10_000
    # every grade is reached somewhere on the grid
    reached = {_grade_point({n: AXES[n][i] for n, i in zip(names, idx)})
               for idx in itertools.product(*(range(len(AXES[n])) for n in names))}
    assert reached == {0, 1, 2, 3}


@pytest.mark.parametrize("axis, worst_pass_fail", [
    ("pretrend_p", (0.05, 0.5)),
    ("sign_agreement_share", (0.5, 0.9)),
])
def test_missing_check_sits_between_fail_and_pass(axis, worst_pass_fail):
    fail, ok = worst_pass_fail
    for p in AXES["primary_p"]:
        g_fail = grade(primary_p=p, **{axis: fail}).rank
        g_nan = grade(primary_p=p, **{axis: NAN}).rank
        g_ok = grade(primary_p=p, **{axis: ok}).rank
        assert g_fail <= g_nan <= g_ok
        assert g_nan <= LEVELS.index("moderate")


def test_thresholds_change_the_grade():
    strict = {**DEFAULT_THRESHOLDS, "p_high": 0.0001}
    assert grade_evidence(**GOOD, thresholds=strict).level == "moderate"
    loose = {**DEFAULT_THRESHOLDS, "max_smd": 0.5}
    assert grade_evidence(**{**GOOD, "max_abs_smd": 0.3}, thresholds=loose).level == "high"


@pytest.mark.parametrize("bad, message", [
    ({"p_high": 0.05, "p_moderate": 0.01}, "p_high < p_moderate"),
    ({"sign_agreement_moderate": 0.9}, "sign_agreement_moderate <="),
    ({"p_low": 1.5}, "out of range"),
    ({"max_smd": 0}, "out of range"),
    ({"p_high": "small"}, "not a number"),
    ({"surprise": 1}, "unknown"),
])
def test_bad_thresholds(bad, message):
    with pytest.raises(DesignError, match=message):
        check_thresholds({**DEFAULT_THRESHOLDS, **bad})
    with pytest.raises(DesignError, match="missing"):
        check_thresholds({k: v for k, v in DEFAULT_THRESHOLDS.items() if k != "max_smd"})


def test_describe_rule_uses_the_thresholds():
    t = dict(p_high=0.005, p_moderate=0.04, p_low=0.12, pretrend_p_min=0.15, max_smd=0.3,
             sign_agreement_high=0.9, sign_agreement_moderate=0.7, sign_tolerance=0.25)
    text = describe_rule(t)
    for s in ["0.005", "0.04", "0.12", "0.15", "0.3", "90%", "70%",
              "**High**", "**Moderate**", "**Low**", "**No**"]:
        assert s in text
    default = describe_rule()
    for s in ["0.01", "0.05", "0.1", "0.25", "80%", "60%"]:
        assert s in default
    assert "0.005" not in default


def test_grade_is_consistent_with_the_described_p_cut_offs():
    # the grade with every check passed is the p-value tier the text describes
    for p, level in [(0.009, "high"), (0.049, "moderate"), (0.099, "low"), (0.1, "no")]:
        assert grade(primary_p=p).level == level


# --------------------------------------------------------------------------- issue 13/14: verdicts
def test_sign_agreement_has_a_tolerance():
    # +0.00 beside a main of -0.5 (SE 1) is no reversal; +0.3 is, with tolerance 0.25 SE
    assert sign_agrees(-0.5, 1.0, 0.0, 0.25)
    assert sign_agrees(-0.5, 1.0, 0.2, 0.25)
    assert not sign_agrees(-0.5, 1.0, 0.3, 0.25)
    assert sign_agrees(0.5, 2.0, -0.4, 0.25) and not sign_agrees(0.5, 2.0, -0.6, 0.25)
    assert not sign_agrees(0.5, 1.0, float("nan"), 0.25)


def _g(p, lo, hi, pre=0.5, smd=0.1, agree=1.0):
    return grade_evidence(p, lo, hi, pre, smd, agree)


def test_failed_design_check_overrides_the_p_value():
    g = _g(0.001, 1.0, 3.0, pre=0.03)
    assert g.level == "low"  # the grade alone still says 'low' evidence of an effect
    v = verdict(g, equivalence_p=float("nan"), pretrend_p=0.03, balance_ok_main=True, balance_ok_any_other=True)
    assert v.category == "not assessable on this design" and "pre-trends rejected" in v.reasons[0]
    v = verdict(_g(0.001, 1.0, 3.0, smd=0.4), equivalence_p=0.01, pretrend_p=0.5, balance_ok_main=False,
                balance_ok_any_other=False)
    assert v.category == "not assessable on this design" and "imbalance" in v.reasons[0]
    # imbalance in main only, with another matched specification balanced: assessable
    v = verdict(_g(0.001, 1.0, 3.0, smd=0.4), equivalence_p=0.01, pretrend_p=0.5, balance_ok_main=False,
                balance_ok_any_other=True)
    assert v.category == "evidence of an effect" and v.text == "evidence of an effect (low strength)"


def test_null_verdicts_distinguish_equivalence_from_inconclusive():
    g = _g(0.6, -1.0, 1.5)
    assert g.level == "no"
    eq = verdict(g, equivalence_p=0.01, pretrend_p=0.5, balance_ok_main=True, balance_ok_any_other=True)
    assert eq.category == "evidence of no effect larger than the SESOI"
    inc = verdict(g, equivalence_p=0.3, pretrend_p=0.5, balance_ok_main=True, balance_ok_any_other=True)
    assert inc.category == "inconclusive"
    none = verdict(g, equivalence_p=float("nan"), pretrend_p=float("nan"), balance_ok_main=True,
                   balance_ok_any_other=False)
    assert none.category == "inconclusive"
    text = describe_verdicts()
    for s in ["Not assessable", "Evidence of an effect", "SESOI", "Inconclusive", "0.1", "0.25"]:
        assert s in text
