"""The real panel, built from the published files (integration).

Spot values were read by hand from the raw files; the file and line are noted
beside each. Together they cover every reader that feeds the panel.
"""
from __future__ import annotations

import math

import pandas as pd
import pytest
from conftest import public_build

pytestmark = pytest.mark.integration

BRENT, NORFOLK, BEXLEY, WAKEFIELD = "E09000005", "E10000020", "E09000004", "E08000036"
WEST_SUSSEX, LINCOLNSHIRE, SUFFOLK = "E10000032", "E10000019", "E10000029"


@pytest.fixture(scope="module")
def build(real_source):
    return public_build()


@pytest.fixture(scope="module")
def panel(build) -> pd.DataFrame:
    return build.panel.set_index(["la_code", "year"])


def test_shape_one_row_per_la_and_year(build):
    p = build.panel
    assert not p.duplicated(["la_code", "year"]).any()
    assert set(p["year"]) == set(range(2011, 2026))
    assert p["la_code"].nunique() == 158
    # 152 LAs exist in every year; successors of reorganised LAs join later.
    assert (p.groupby("year")["la_code"].nunique() >= 150).all()


@pytest.mark.parametrize("measure,years", [("rereferral_pct", range(2013, 2026)),
                                           ("assessments_45wd_pct", range(2015, 2026))])
def test_at_least_145_las_with_a_value_every_year(build, measure, years):
    p = build.panel
    counts = {y: int(p.loc[p["year"] == y, measure].notna().sum()) for y in years}
    assert min(counts.values()) >= 145, counts


def test_norfolk_2014_rereferrals_suppressed_is_missing_not_zero(panel, build):
    # c1 line 1897: 2014 Norfolk referrals 9729, re-referrals 'x', percent 'x'
    row = panel.loc[(NORFOLK, 2014)]
    assert math.isnan(row["rereferral_pct"])
    assert "rereferral_pct" in row["suppressed"].split(";")
    assert row["referrals"] == 9729
    long = build.long
    cell = long[(long["area_code"] == NORFOLK) & (long["year"] == 2014) & (long["measure"] == "rereferral_pct")]
    assert cell["suppressed"].item() and cell["token"].item() == "x"


@pytest.mark.parametrize("la,year,measure,expected", [
    (BRENT, 2025, "rereferral_pct", 14.2),            # c1 line 151
    (BRENT, 2025, "referrals", 3553),                 # c1 line 151
    (BEXLEY, 2018, "cpp_second_subsequent_pct", 14.2),  # d3 line 1297
    (BEXLEY, 2018, "cpp_starts", 232),                # d3 line 1297
    (WAKEFIELD, 2016, "cin_31mar", 2243),             # b1 line 1538, At31_episodes
    (NORFOLK, 2025, "cla_31mar", 1069),               # cla_number_and_rate (2025) line 297
    (NORFOLK, 2025, "cla_rate_per10k_published", 62),  # same line (the panel derives 1069 / 171830)
    (NORFOLK, 2025, "cla_rate_per10k", 1069 / 171830 * 1e4),  # counts / ONS mid-2024, every year
    (NORFOLK, 2024, "pop_0_17", 170640),              # ONS mid-2023, line 260
    (WEST_SUSSEX, 2019, "sw_turnover_pct", 10.0),     # csww_indicators line 1089, turnover_rate_fte
    (LINCOLNSHIRE, 2014, "cla_31mar", 602),           # CLA2018.csv line 155 (revised; 606 in SFR36_CLA2014)
    (SUFFOLK, 2012, "cla_31mar", 781),                # SFR20_CLA2012.csv line 161
    (WAKEFIELD, 2018, "assessments_45wd_pct", 51.3),  # LAIT 2025 parquet row 260751
    (BEXLEY, 2022, "s47_rate_per10k", 184.5),         # LAIT 2025 parquet row 132605
    (SUFFOLK, 2016, "idaci_score", 0.135),            # idacilarge.csv line 148 (constant)
    (NORFOLK, 2017, "ofsted_overall", 4),             # SIF published 19 Oct 2015: Inadequate at 1 Apr 2016
    (NORFOLK, 2019, "ofsted_overall", 3),             # SIF re-inspection 19 Jan 2018: RI
])
def test_spot_values_match_the_raw_files(panel, la, year, measure, expected):
    assert panel.loc[(la, year), measure] == pytest.approx(expected, abs=1e-9)


def test_pilots_identified_and_not_boundary_changed(panel):
    for code, name in [(BRENT, "Brent"), (NORFOLK, "Norfolk"), (BEXLEY, "Bexley")]:
        row = panel.loc[(code, 2019)]
        assert row["la_name"] == name and not row["boundary_changed"]
    assert panel.loc[("E10000021", 2019), "boundary_changed"]  # Northamptonshire


def test_dictionary_and_coverage_describe_the_panel(build):
    m = build.measures.set_index("name")
    for name in ("rereferral_pct", "assessments_45wd_pct", "cin_rate_per10k", "cpp_starts",
                 "cpp_starts_rate_per10k", "cpp_second_subsequent_pct", "cla_31mar", "cla_rate_per10k",
                 "cla_starts", "cla_starts_rate_per10k", "cla_foster_pct", "cla_ceased_sgo_pct",
                 "pop_0_17", "idaci_score", "people_per_sqkm", "ofsted_overall", "referrals"):
        assert name in m.index and name in build.panel.columns, name
    assert m.loc["rereferral_pct", "first_year"] == 2013 and m.loc["rereferral_pct", "last_year"] == 2025
    assert m.loc["assessments_45wd_pct", "first_year"] == 2015
    assert "cin_c1" in m.loc["rereferral_pct", "source_ids"]
    cov = build.coverage.set_index(["measure", "year"])
    assert cov.loc[("rereferral_pct", 2014), "las_suppressed"] >= 1
    # Coverage counts agree with the panel itself.
    assert cov.loc[("rereferral_pct", 2020), "las_with_value"] == build.panel.loc[
        build.panel["year"] == 2020, "rereferral_pct"].notna().sum()


def test_release_overlaps_are_recorded_newest_wins(build):
    ch = build.releases
    a45 = ch[(ch["measure"] == "assessments_45wd_pct") & (ch["year"] == 2019)]
    assert list(a45["kept_source"]) == ["lait_2025"] and list(a45["dropped_source"]) == ["lait_2024"]


def test_national_and_regional_rows_kept_apart(build):
    areas = build.areas
    assert set(areas["geographic_level"]) >= {"National", "Regional"}
    eng = areas[(areas["geographic_level"] == "National") & (areas["measure"] == "rereferral_pct")
                & (areas["year"] == 2025)]
    assert eng["value"].iloc[0] == pytest.approx(22.6)  # c1 line 2, England 2025
    assert "National" not in set(build.panel.get("geographic_level", pd.Series(dtype=str)))
