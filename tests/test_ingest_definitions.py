"""One definition per measure across years, and suppression of what each measure needs.

Every rate and share with ``derived_from`` is computed from its counts in every
year (``series: derived``); the published figure is kept beside it as a check
(``<name>_published``) and fills only LA-years without counts. ``definitions.csv``
sets the two side by side; the real-data test prints the largest derived-minus-
published difference by measure and year (run with ``-s`` to see it).
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.ingest.panel import _definitions, definition_check, needed_cells, pivot_panel, suppression_needs
from analysis.ingest.readers.common import tidy_frame

BRENT, BEXLEY = "E09000005", "E09000004"


def _tidy(rows) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=["area_code", "year", "measure", "value", "suppressed", "source_id"])
    df["geographic_level"], df["old_la_code"], df["area_name"] = "Local authority", "", ""
    df["token"] = np.where(df["suppressed"], "c", "")
    df["row"] = range(len(df))
    return tidy_frame([df])


def test_every_derived_measure_has_one_rule():
    defs = _definitions()
    derived = defs[defs["derived_from"] != ""]
    assert set(derived["series"]) == {"derived"}
    assert (defs.loc[defs["derived_from"] == "", "series"] == "").all()
    label = defs.set_index("name").loc["cla_ceased_sgo_pct", "label"]
    assert label == "Children leaving care through a special guardianship order (% of those leaving)"
    assert not defs["label"].str.contains("Care leaver", case=False).any()


def test_derived_in_every_year_published_kept_and_used_only_for_gaps():
    panel = pivot_panel(_tidy([
        (BRENT, 2014, "cla_31mar", 400.0, False, "s"), (BRENT, 2014, "pop_0_17", 80000.0, False, "s"),
        (BRENT, 2015, "cla_31mar", 420.0, False, "s"), (BRENT, 2015, "pop_0_17", 80000.0, False, "s"),
        (BRENT, 2015, "cla_rate_per10k", 55.0, False, "p"),          # old population: differs
        (BRENT, 2016, "cla_rate_per10k", 57.0, False, "p"),          # no count: published fills
    ]))
    b = panel[panel["la_code"] == BRENT].set_index("year")
    assert b.loc[2014, "cla_rate_per10k"] == pytest.approx(50.0)
    assert b.loc[2015, "cla_rate_per10k"] == pytest.approx(52.5)     # not 55: one definition
    assert b.loc[2015, "cla_rate_per10k_published"] == 55.0
    assert b.loc[2016, "cla_rate_per10k"] == 57.0
    check = definition_check(panel)
    r = check[check["measure"] == "cla_rate_per10k"].set_index("year")
    assert (r.loc[2015, "n_both"], r.loc[2015, "max_diff"], r.loc[2015, "max_diff_la"]) == (1, -2.5, BRENT)
    assert (r.loc[2016, "n_used_published"], r.loc[2014, "n_used_derived"]) == (1, 1)


def test_suppression_counts_what_a_share_needs():
    tidy = _tidy([
        # Brent: SGO exits suppressed -> the share is missing although its own cell is not marked
        (BRENT, 2016, "cla_ceased_sgo", np.nan, True, "s"), (BRENT, 2016, "cla_ceased", 100.0, False, "s"),
        # Bexley: both counts published
        (BEXLEY, 2016, "cla_ceased_sgo", 10.0, False, "s"), (BEXLEY, 2016, "cla_ceased", 50.0, False, "s"),
    ])
    panel = pivot_panel(tidy)
    assert needed_cells("cla_ceased_sgo_pct") == ["cla_ceased_sgo_pct", "cla_ceased_sgo", "cla_ceased"]
    s = suppression_needs(panel, {BRENT: "pilot"}, ["cla_ceased_sgo_pct"])
    y = s[s["year"] == 2016].set_index("group")
    assert (y.loc["pilot", "n_las"], y.loc["pilot", "n_suppressed"], y.loc["pilot", "pct_suppressed"]) \
        == (1, 1, 100.0)
    assert y.loc["comparator", "n_suppressed"] == 0 and y.loc["comparator", "n_value"] == 1
    # the share's own cell is never marked: counting it alone would report nothing
    assert "cla_ceased_sgo_pct" not in ";".join(panel["suppressed"])


# --------------------------------------------------------------------------- real data
@pytest.mark.integration
def test_real_derived_minus_published_by_measure_and_year(real_panel):
    d = pd.read_csv(real_panel / "definitions.csv")
    both = d[d["n_both"] > 0]
    table = both.pivot(index="measure", columns="year", values="max_diff")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print("\nLargest derived-minus-published difference, by measure and year:")
        print(table.round(2).to_string())
    big = both.set_index(["measure", "year"])["max_abs_diff"]
    # Figures DfE derives from the same counts and today's ONS estimates agree within rounding:
    # one decimal for LAIT's CIN, CPP and referral rates, whole numbers for the others.
    for m in ("cin_rate_per10k", "cpp_starts_rate_per10k", "referral_rate_per10k"):
        assert big[m].max() <= 0.05 + 1e-9, m
    for m in ("cla_foster_pct", "cla_ceased_sgo_pct"):
        assert big[m].max() <= 0.5 + 1e-9, m
    for m in ("cla_rate_per10k", "cla_starts_rate_per10k", "cla_ceased_rate_per10k"):
        assert big[m][big[m].index >= 2019].max() <= 0.5 + 1e-9, m
    # Looked-after rates to 2018 were published on the population estimates of their day:
    # the panel's one definition moves the City of London by tens per 10,000.
    worst = both[(both["measure"] == "cla_rate_per10k") & (both["year"] <= 2018)]
    assert worst["max_abs_diff"].max() > 20
    assert worst.loc[worst["max_abs_diff"].idxmax(), "max_diff_la"] == "E09000001"
    # Published figures are used only where a count is missing: cla_foster_pct in 2020
    # (no LA foster count published for 2020 in these sources) and a few LA-years else.
    used = d[d["n_used_published"] > 0].set_index(["measure", "year"])["n_used_published"]
    assert used[("cla_foster_pct", 2020)] >= 145
    assert used.drop(("cla_foster_pct", 2020)).max() <= 3


@pytest.mark.integration
def test_real_panel_uses_one_definition(real_panel):
    p = pd.read_csv(real_panel / "panel.csv")
    for m in ("cin_rate_per10k", "cpp_starts_rate_per10k", "cla_rate_per10k", "cla_ceased_sgo_pct"):
        has = p[f"{m}_derived"].notna()
        assert (p.loc[has, m] == p.loc[has, f"{m}_derived"]).all(), m


@pytest.mark.integration
def test_lait_cpp_abuse_rate_is_the_rate_of_plans_starting(real_panel, real_source):
    """LAIT's dictionary describes CPP_Abuse_Rate with the 31 March text; its numbers are
    plans starting (D3 CPP_start) per 10,000 children, not the 31 March rate (CPP_rate)."""
    dictionary = pd.read_csv(real_source("lait_2025_dictionary"), dtype=str)
    row = dictionary[dictionary["Measure_short"].str.strip() == "CPP_Abuse_Rate"].iloc[0]
    assert "starting during the year" in row["Measure"]
    assert "at 31 March" in row["Description"]                        # the dictionary's slip
    p = pd.read_csv(real_panel / "panel.csv")
    both = p[p["cpp_starts_rate_per10k_published"].notna() & p["cpp_starts_rate_per10k_derived"].notna()]
    assert len(both) > 1500
    assert (both["cpp_starts_rate_per10k_published"] - both["cpp_starts_rate_per10k_derived"]).abs().max() \
        <= 0.05 + 1e-9
    at31 = both[both["cpp_31mar_rate_per10k"].notna()]
    assert ((at31["cpp_starts_rate_per10k_published"] - at31["cpp_31mar_rate_per10k"]).abs() > 1).mean() > 0.8


@pytest.mark.integration
def test_real_sgo_share_suppression_counts_its_numerator(real_panel):
    p = pd.read_csv(real_panel / "panel.csv")
    s = suppression_needs(p, {}, ["cla_ceased_sgo_pct"])
    s = s[s["year"] >= 2011]
    share = s["n_suppressed"].sum() / s["n_las"].sum()
    assert 0.15 < share < 0.30                                        # about one LA-year in five
    own = p["suppressed"].fillna("").str.split(";").apply(lambda x: "cla_ceased_sgo_pct" in x)
    assert own.mean() < share / 2                                     # the share's own cell: far fewer
