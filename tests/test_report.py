"""Report sentences built from results and settings (analysis.book.chapters)."""
from __future__ import annotations

import dataclasses

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
