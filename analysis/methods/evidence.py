"""Grading the strength of evidence for each outcome: no, low, moderate or high.

The rule combines five criteria. Each one sets a *ceiling* on the grade, and
the grade is the lowest ceiling (so the weakest criterion decides):

- p-value of the primary inference: "high" if p < ``p_high``, "moderate" if
  p < ``p_moderate``, "low" if p < ``p_low``, else "no" (also when NaN);
- confidence interval: "high" if it excludes zero, else "low" (also when NaN);
- joint pre-trend test: "high" if p >= ``pretrend_p_min`` (not rejected),
  "moderate" when there is no test (NaN: a single pre-year), else "low";
- balance after matching: "high" if the largest absolute SMD < ``max_smd``,
  else "low" (also when NaN);
- sign agreement across sensitivity specifications: "high" if the share >=
  ``sign_agreement_high``, "moderate" if >= ``sign_agreement_moderate`` or
  NaN (no sensitivity run), else "low".

A missing primary p-value (NaN) gives "no". Because the grade is the minimum
of ceilings that each never fall as their input improves, improving any input
(smaller p, an interval that excludes zero, larger pre-trend p, smaller
imbalance, more agreement) never lowers the grade. A failed design check
caps the grade at "low", never below it: a clearly significant estimate that
fails a check is "low" evidence, as the rule states.

Thresholds come from the study design file as a dict with the keys of
:data:`DEFAULT_THRESHOLDS`:

``p_high``, ``p_moderate``, ``p_low``
    p-value cut-offs for high, moderate and low (``p_high < p_moderate <= p_low``).
``pretrend_p_min``
    the joint pre-trend test passes when its p-value is at least this.
``max_smd``
    balance passes when the largest absolute standardised mean difference
    after matching is below this.
``sign_agreement_high``, ``sign_agreement_moderate``
    minimum share of sensitivity specifications whose estimate has the same
    sign as the main estimate, for high and moderate.
``sign_tolerance``
    a sensitivity estimate disagrees in sign only when it lies on the other
    side of zero by more than this many standard errors of the main estimate
    (:func:`sign_agrees`).

The **verdict** (:func:`verdict`) puts the grade beside what the interval rules
out and whether the design's own checks hold:

- "not assessable on this design": the joint pre-trend test rejects parallel
  trends, or balance fails in the main specification and in every other matched
  specification of the outcome; whatever the p-value;
- "evidence of an effect" (with the grade) when the grade is low or better;
- "evidence of no effect larger than the SESOI" when the equivalence test
  (two one-sided tests against the smallest effect size of interest) rejects;
- "inconclusive" otherwise: the interval holds both no effect and an effect
  that matters.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping

from analysis.core.errors import DesignError

#: Grades from weakest to strongest.
LEVELS: tuple[str, ...] = ("no", "low", "moderate", "high")

#: Thresholds used when the study design file gives none (documented above).
DEFAULT_THRESHOLDS: dict[str, float] = {
    "p_high": 0.01,
    "p_moderate": 0.05,
    "p_low": 0.10,
    "pretrend_p_min": 0.10,
    "max_smd": 0.25,
    "sign_agreement_high": 0.8,
    "sign_agreement_moderate": 0.6,
    "sign_tolerance": 0.25,
}


@dataclass(frozen=True)
class Criterion:
    """One criterion of the rule as applied: its ceiling and a sentence saying why."""

    name: str
    passed: bool | None  # None: not assessable (NaN input)
    ceiling: str
    text: str


@dataclass(frozen=True)
class Grade:
    """Strength of evidence for one outcome.

    Attributes
    ----------
    level : str
        "no", "low", "moderate" or "high".
    criteria : tuple of Criterion
        Every criterion with its ceiling and explanation.
    """

    level: str
    criteria: tuple[Criterion, ...]

    @property
    def rank(self) -> int:
        """0 (no) .. 3 (high), for ordering."""
        return LEVELS.index(self.level)

    @property
    def reasons(self) -> list[str]:
        """One sentence per criterion: its outcome, its ceiling (unless high) and its text.

        For example "passed: ...", "failed (caps at low): ...", "not assessed
        (caps at moderate): ...".
        """
        out = []
        for c in self.criteria:
            tag = {True: "passed", False: "failed", None: "not assessed"}[c.passed]
            if c.ceiling != "high":
                tag += f" (caps at {c.ceiling})"
            out.append(f"{tag}: {c.text}")
        return out

    @property
    def limiting(self) -> list[str]:
        """Names of the criteria whose ceiling set the grade (empty when the grade is 'high')."""
        if self.level == "high":
            return []
        return [c.name for c in self.criteria if c.ceiling == self.level]

    def __str__(self) -> str:
        return f"{self.level} strength evidence"


def check_thresholds(thresholds: Mapping[str, float]) -> dict[str, float]:
    """Validate a thresholds dict (all keys present, numeric, ordered) and return it as floats.

    Raises
    ------
    DesignError
        A key is missing or unknown, a value is not a number in [0, 1], or
        the p-value or agreement cut-offs are out of order.
    """
    missing = [k for k in DEFAULT_THRESHOLDS if k not in thresholds]
    unknown = [k for k in thresholds if k not in DEFAULT_THRESHOLDS]
    if missing or unknown:
        raise DesignError(f"evidence thresholds: missing {missing}, unknown {unknown}",
                          hint=f"expected keys {list(DEFAULT_THRESHOLDS)}")
    t: dict[str, float] = {}
    for key in DEFAULT_THRESHOLDS:
        try:
            v = float(thresholds[key])
        except (TypeError, ValueError):
            raise DesignError(f"evidence threshold {key} is not a number: {thresholds[key]!r}") from None
        if key == "max_smd":
            ok = v > 0 and math.isfinite(v)
        elif key == "sign_tolerance":
            ok = v >= 0 and math.isfinite(v)
        else:
            ok = 0 < v <= 1
        if not ok:
            raise DesignError(f"evidence threshold {key} = {v} is out of range")
        t[key] = v
    if not t["p_high"] < t["p_moderate"] <= t["p_low"]:
        raise DesignError("evidence thresholds need p_high < p_moderate <= p_low, got "
                          f"{t['p_high']}, {t['p_moderate']}, {t['p_low']}")
    if not t["sign_agreement_moderate"] <= t["sign_agreement_high"]:
        raise DesignError("evidence thresholds need sign_agreement_moderate <= sign_agreement_high")
    return t


def _nan(x: object) -> bool:
    """True for None, NaN and pandas' NA: an input that is not available."""
    if x is None:
        return True
    try:
        return math.isnan(float(x))  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return True


def _pct(x: float) -> str:
    return f"{100 * x:g}%"


def grade_evidence(primary_p: float, ci_low: float, ci_high: float, pretrend_p: float,
                   max_abs_smd: float, sign_agreement_share: float,
                   thresholds: Mapping[str, float] | None = None) -> Grade:
    """Grade the strength of evidence for one outcome.

    Parameters
    ----------
    primary_p : float
        p-value of the headline estimate under the primary inference method.
        NaN gives "no".
    ci_low, ci_high : float
        Its confidence interval (same method). An interval that includes zero,
        or is NaN, caps the grade at "low".
    pretrend_p : float
        p-value of the joint test that all event-study leads are zero. NaN
        (no test: a single pre-year) caps the grade at "moderate"; a value
        below ``pretrend_p_min`` caps it at "low".
    max_abs_smd : float
        Largest absolute standardised mean difference after matching. At or
        above ``max_smd``, or NaN, caps the grade at "low".
    sign_agreement_share : float
        Share (0-1) of sensitivity specifications whose estimate has the
        main estimate's sign. Below ``sign_agreement_moderate`` caps at "low",
        below ``sign_agreement_high`` at "moderate"; NaN (no sensitivity run)
        caps at "moderate".
    thresholds : dict, optional
        Keys of :data:`DEFAULT_THRESHOLDS` (the study design file's values);
        default :data:`DEFAULT_THRESHOLDS`.

    Returns
    -------
    Grade
        The level and, per criterion, whether it passed and the ceiling it set.
    """
    t = check_thresholds(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    crit: list[Criterion] = []

    if _nan(primary_p):
        crit.append(Criterion("p-value", None, "no", "no p-value from the primary inference"))
    elif primary_p < t["p_high"]:
        crit.append(Criterion("p-value", True, "high", f"p = {primary_p:.3g} < {t['p_high']:g}"))
    elif primary_p < t["p_moderate"]:
        crit.append(Criterion("p-value", False, "moderate",
                              f"p = {primary_p:.3g}: below {t['p_moderate']:g} but not {t['p_high']:g}"))
    elif primary_p < t["p_low"]:
        crit.append(Criterion("p-value", False, "low",
                              f"p = {primary_p:.3g}: below {t['p_low']:g} but not {t['p_moderate']:g}"))
    else:
        crit.append(Criterion("p-value", False, "no", f"p = {primary_p:.3g} >= {t['p_low']:g}"))

    if _nan(ci_low) or _nan(ci_high):
        crit.append(Criterion("interval", None, "low", "no confidence interval"))
    elif ci_low > 0 or ci_high < 0:
        crit.append(Criterion("interval", True, "high",
                              f"confidence interval [{ci_low:.3g}, {ci_high:.3g}] excludes zero"))
    else:
        crit.append(Criterion("interval", False, "low",
                              f"confidence interval [{ci_low:.3g}, {ci_high:.3g}] includes zero"))

    if _nan(pretrend_p):
        crit.append(Criterion("pre-trends", None, "moderate",
                              "no pre-trend test (fewer than two pre-treatment years): "
                              "parallel trends cannot be checked"))
    elif pretrend_p >= t["pretrend_p_min"]:
        crit.append(Criterion("pre-trends", True, "high",
                              f"pre-trend test not rejected (p = {pretrend_p:.3g} >= "
                              f"{t['pretrend_p_min']:g})"))
    else:
        crit.append(Criterion("pre-trends", False, "low",
                              f"pre-trend test rejected (p = {pretrend_p:.3g} < "
                              f"{t['pretrend_p_min']:g})"))

    if _nan(max_abs_smd):
        crit.append(Criterion("balance", None, "low", "balance after matching not available"))
    elif abs(max_abs_smd) < t["max_smd"]:
        crit.append(Criterion("balance", True, "high",
                              f"largest |SMD| after matching {abs(max_abs_smd):.3g} < {t['max_smd']:g}"))
    else:
        crit.append(Criterion("balance", False, "low",
                              f"largest |SMD| after matching {abs(max_abs_smd):.3g} >= {t['max_smd']:g}"))

    s = sign_agreement_share
    if _nan(s):
        crit.append(Criterion("agreement", None, "moderate", "no sensitivity specifications to compare"))
    elif s >= t["sign_agreement_high"]:
        crit.append(Criterion("agreement", True, "high",
                              f"{_pct(s)} of sensitivity estimates share the sign "
                              f"(>= {_pct(t['sign_agreement_high'])})"))
    elif s >= t["sign_agreement_moderate"]:
        crit.append(Criterion("agreement", False, "moderate",
                              f"{_pct(s)} of sensitivity estimates share the sign "
                              f"(>= {_pct(t['sign_agreement_moderate'])} but < "
                              f"{_pct(t['sign_agreement_high'])})"))
    else:
        crit.append(Criterion("agreement", False, "low",
                              f"only {_pct(s)} of sensitivity estimates share the sign "
                              f"(< {_pct(t['sign_agreement_moderate'])})"))

    level = LEVELS[min(LEVELS.index(c.ceiling) for c in crit)]
    return Grade(level=level, criteria=tuple(crit))


def describe_rule(thresholds: Mapping[str, float] | None = None) -> str:
    """The grading rule in plain English (Markdown), built from the same thresholds.

    Parameters
    ----------
    thresholds : dict, optional
        As for :func:`grade_evidence`.

    Returns
    -------
    str
        A short paragraph and a bullet list, one bullet per grade, then how
        missing checks are treated.
    """
    t = check_thresholds(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    checks = (f"the confidence interval excludes zero, the joint test of the pre-treatment "
              f"leads does not reject parallel trends (its p-value is at least "
              f"{t['pretrend_p_min']:g}) and every matching variable is balanced (the largest "
              f"absolute standardised mean difference after matching is below {t['max_smd']:g})")
    return (
        "Each outcome's evidence is graded from the headline estimate's p-value and confidence "
        "interval under the primary inference method, the pre-trend test, covariate balance "
        "after matching, and whether the sensitivity analyses agree on the direction of the "
        "effect. The weakest of these decides the grade.\n\n"
        f"- **High**: p-value below {t['p_high']:g}; {checks}; and at least "
        f"{_pct(t['sign_agreement_high'])} of sensitivity specifications give an estimate of "
        "the same sign.\n"
        f"- **Moderate**: p-value below {t['p_moderate']:g} and the same checks, except that "
        f"at least {_pct(t['sign_agreement_moderate'])} of sensitivity specifications must "
        "agree in sign; a pre-trend test that cannot be run (only one pre-treatment year) or a "
        "missing sensitivity analysis is allowed here, but not for high.\n"
        f"- **Low**: p-value below {t['p_low']:g}; or a smaller p-value but one of the checks "
        "failed (interval includes zero, pre-trends rejected, imbalance, or sign agreement "
        f"below {_pct(t['sign_agreement_moderate'])}).\n"
        f"- **No**: p-value of {t['p_low']:g} or more, or no p-value.\n"
    )


def sign_agrees(main_estimate: float, main_se: float, estimate: float, tolerance: float) -> bool:
    """Whether a sensitivity estimate agrees in sign with the main estimate.

    It disagrees only when it lies on the other side of zero by more than
    ``tolerance`` standard errors of the main estimate, so an estimate of +0.00
    beside a main estimate of -0.5 is no reversal.

    Parameters
    ----------
    main_estimate, main_se : float
        The main estimate and its standard error.
    estimate : float
        The sensitivity specification's estimate.
    tolerance : float
        ``sign_tolerance`` of the design, in standard errors.

    Returns
    -------
    bool
    """
    if _nan(main_estimate) or _nan(estimate):
        return False
    margin = tolerance * (main_se if not _nan(main_se) else 0.0)
    if main_estimate >= 0:
        return estimate >= -margin
    return estimate <= margin


#: The verdicts, in the order the report explains them.
VERDICTS = ("evidence of an effect", "evidence of no effect larger than the SESOI", "inconclusive",
            "not assessable on this design")


@dataclass(frozen=True)
class Verdict:
    """An outcome's verdict: the category, the grade beside it and why."""

    category: str
    grade: str
    reasons: tuple[str, ...]

    @property
    def text(self) -> str:
        """The verdict as the report prints it, e.g. "evidence of an effect (moderate strength)"."""
        if self.category == "evidence of an effect":
            return f"evidence of an effect ({self.grade} strength)"
        return self.category


def verdict(grade: Grade, *, equivalence_p: float, pretrend_p: float, balance_ok_main: bool,
            balance_ok_any_other: bool, thresholds: Mapping[str, float] | None = None,
            alpha: float = 0.05) -> Verdict:
    """The outcome's verdict from its grade, its equivalence test and its design checks.

    Parameters
    ----------
    grade : Grade
        From :func:`grade_evidence`.
    equivalence_p : float
        p-value of the two one-sided tests against the smallest effect size of
        interest (NaN when no SESOI is declared).
    pretrend_p : float
        p-value of the joint pre-trend test under the primary inference (NaN: no test).
    balance_ok_main, balance_ok_any_other : bool
        Whether balance passes in the main specification, and in at least one
        other matched specification of the outcome.
    thresholds : dict, optional
        As for :func:`grade_evidence`.
    alpha : float
        Level of the equivalence test.

    Returns
    -------
    Verdict
    """
    t = check_thresholds(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    why: list[str] = []
    if not _nan(pretrend_p) and pretrend_p < t["pretrend_p_min"]:
        why.append(f"pre-trends rejected (p = {pretrend_p:.3g} < {t['pretrend_p_min']:g})")
    if not balance_ok_main and not balance_ok_any_other:
        why.append(f"imbalance: largest |SMD| at least {t['max_smd']:g} in every matched specification")
    if why:
        return Verdict("not assessable on this design", grade.level, tuple(why))
    if grade.level != "no":
        return Verdict("evidence of an effect", grade.level, tuple(grade.reasons))
    if not _nan(equivalence_p) and equivalence_p < alpha:
        return Verdict("evidence of no effect larger than the SESOI", grade.level,
                       (f"equivalence test p = {equivalence_p:.3g} < {alpha:g}",))
    return Verdict("inconclusive", grade.level,
                   ("the interval holds both no effect and an effect larger than the SESOI",))


def describe_verdicts(thresholds: Mapping[str, float] | None = None, alpha: float = 0.05) -> str:
    """The verdict rule in plain English (Markdown), from the same thresholds.

    Parameters
    ----------
    thresholds : dict, optional
        As for :func:`grade_evidence`.
    alpha : float
        Level of the equivalence test.

    Returns
    -------
    str
        A bullet list, one bullet per verdict, in the order they are checked.
    """
    t = check_thresholds(DEFAULT_THRESHOLDS if thresholds is None else thresholds)
    return (
        "Each outcome then gets one of four verdicts, checked in this order:\n\n"
        "- **Not assessable on this design**, whatever the p-value, when the design's own checks "
        f"fail: a joint pre-trend test rejects parallel trends (p below {t['pretrend_p_min']:g} in the "
        "wild bootstrap Wald test or in the cluster-robust F test: a design check errs on the side "
        "of failing), "
        "or the largest absolute standardised mean difference after matching is "
        f"{t['max_smd']:g} or more in the main specification and in every other matched "
        "specification.\n"
        "- **Evidence of an effect** (low, moderate or high strength, by the grading rule above).\n"
        "- **Evidence of no effect larger than the smallest effect size of interest (SESOI)** when "
        f"two one-sided tests at the {_pct(alpha)} level reject both an improvement and a "
        "deterioration as large as the SESOI: the interval then lies inside the range of effects "
        "too small to matter.\n"
        "- **Inconclusive** otherwise: the interval holds both no effect and an effect large "
        "enough to matter. The report says which way the estimate leans and what the interval "
        "rules out.\n"
    )
