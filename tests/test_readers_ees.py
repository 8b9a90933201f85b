"""Tests of analysis.ingest.readers.ees: fixtures copied from the real files, then the real files.

Fixtures under tests/fixtures/ees/ are lines copied byte for byte from the
published CSVs (header + a few National, Regional and LA rows, including
suppressed cells); bad-input cases edit a copy in tmp_path.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.ingest.readers import ees
from analysis.ingest.readers.common import TIDY_COLUMNS

FIX = Path(__file__).parent / "fixtures" / "ees"


def _get(df: pd.DataFrame, area: str, year: int, measure: str) -> pd.Series:
    """The single tidy row of an area, year and measure."""
    hit = df[(df["area_code"] == area) & (df["year"] == year) & (df["measure"] == measure)]
    assert len(hit) == 1, f"{len(hit)} rows for {area} {year} {measure}"
    return hit.iloc[0]


def _edited(tmp_path: Path, name: str, edit) -> Path:
    """Copy a fixture into tmp_path with its lines passed through ``edit``."""
    lines = (FIX / name).read_text(encoding="utf-8-sig").split("\n")
    out = tmp_path / name
    out.write_text("\n".join(edit(lines)), encoding="utf-8")
    return out


# ---------------------------------------------------------------- fixtures: values
def test_c1_fixture_values_and_levels():
    df = ees.read_c1(FIX / "c1_sample.csv")
    assert list(df.columns) == TIDY_COLUMNS
    assert set(df["measure"]) == {"referrals", "rereferrals", "rereferral_pct", "nfa_pct"}
    # Norfolk 2014: rereferral_percent is "x" in the file.
    r = _get(df, "E10000020", 2014, "rereferral_pct")
    assert np.isnan(r["value"]) and r["suppressed"] and r["token"] == "x"
    assert r["old_la_code"] == "926" and r["geographic_level"] == "Local authority"
    # Norfolk 2015 (fixture line 4): 7943 referrals, 17.4 % re-referrals, 5 % NFA.
    assert _get(df, "E10000020", 2015, "referrals")["value"] == 7943
    assert _get(df, "E10000020", 2015, "rereferral_pct")["value"] == 17.4
    assert _get(df, "E10000020", 2015, "nfa_pct")["value"] == 5
    assert not _get(df, "E10000020", 2015, "rereferral_pct")["suppressed"]
    # National and Regional rows keep their own codes, no DfE code.
    nat = _get(df, "E92000001", 2015, "rereferral_pct")
    assert nat["geographic_level"] == "National" and nat["value"] == 24.2 and nat["old_la_code"] == ""
    reg = _get(df, "E12000006", 2014, "rereferral_pct")
    assert reg["geographic_level"] == "Regional" and reg["value"] == 22.4
    assert reg["area_name"] == "East of England"
    # Bournemouth 2015 NFA is "c".
    b = _get(df, "E06000028", 2015, "nfa_pct")
    assert b["suppressed"] and b["token"] == "c"
    # row = the file's own line number.
    assert _get(df, "E10000020", 2014, "referrals")["row"] == 12


def test_b1_and_d3_fixture_values():
    b1 = ees.read_b1(FIX / "b1_sample.csv")
    # Brent 2025 (b1 line 151 of the real file): At31 2721, Started 2584, Anypoint 5188.
    assert _get(b1, "E09000005", 2025, "cin_31mar")["value"] == 2721
    assert _get(b1, "E09000005", 2025, "cin_starts")["value"] == 2584
    assert _get(b1, "E09000005", 2025, "cin_episodes")["value"] == 5188
    assert _get(b1, "E13000002", 2025, "cin_31mar")["geographic_level"] == "Regional"
    d3 = ees.read_d3(FIX / "d3_sample.csv")
    # Wakefield 2016 (d3 line 1538): 294 plans, 43 second or subsequent, 14.6 %.
    assert _get(d3, "E08000036", 2016, "cpp_starts")["value"] == 294
    assert _get(d3, "E08000036", 2016, "cpp_second_subsequent")["value"] == 43
    assert _get(d3, "E08000036", 2016, "cpp_second_subsequent_pct")["value"] == 14.6
    # National row whose region columns are quoted empty strings.
    assert _get(d3, "E92000001", 2016, "cpp_starts")["value"] == 63310


def test_cla_rates_both_layouts_give_the_same_measures():
    new = ees.read_cla_rates(FIX / "cla_rates_2025_sample.csv", "cla_rates_2025")
    old = ees.read_cla_rates(FIX / "cla_rates_2024_sample.csv", "cla_rates_2024")
    expected = {"cla_31mar", "cla_rate_per10k", "cla_starts", "cla_starts_rate_per10k",
                "cla_ceased", "cla_ceased_rate_per10k"}
    assert set(new["measure"]) == expected == set(old["measure"])
    assert set(new["source_id"]) == {"cla_rates_2025"} and set(old["source_id"]) == {"cla_rates_2024"}
    # Bristol 2025 ("on 31 March"): 753 children, 81 per 10,000; starts 271; ceased 288.
    assert _get(new, "E06000023", 2025, "cla_31mar")["value"] == 753
    assert _get(new, "E06000023", 2025, "cla_rate_per10k")["value"] == 81
    assert _get(new, "E06000023", 2025, "cla_starts")["value"] == 271
    assert _get(new, "E06000023", 2025, "cla_ceased_rate_per10k")["value"] == 31
    # Norfolk 2020 ("at 31 March", columns population_count/number): 1105, 66.
    assert _get(old, "E10000020", 2020, "cla_31mar")["value"] == 1105
    assert _get(old, "E10000020", 2020, "cla_rate_per10k")["value"] == 66
    # Northamptonshire no longer exists in 2025: "z", suppressed.
    z = _get(new, "E10000021", 2025, "cla_31mar")
    assert z["suppressed"] and z["token"] == "z" and np.isnan(z["value"])


def test_cla_rates_missing_label_is_an_error(tmp_path):
    path = _edited(tmp_path, "cla_rates_2025_sample.csv",
                   lambda ls: [line.replace("on 31 March", "at 31 March") for line in ls])
    with pytest.raises(DataError, match=r"population_type.*'Children looked after on 31 March"):
        ees.read_cla_rates(path, "cla_rates_2025")


def test_cla_rates_unknown_layout(tmp_path):
    path = _edited(tmp_path, "cla_rates_2025_sample.csv",
                   lambda ls: [ls[0].replace("children_count", "count")] + ls[1:])
    with pytest.raises(DataError, match="children_count"):
        ees.read_cla_rates(path, "cla_rates_2025")


def test_sgo_takes_the_total_row_only():
    df = ees.read_cla_ceased_sgo(FIX / "sgo_sample.csv")
    assert set(df["measure"]) == {"cla_ceased_sgo"}
    # One row per area: the carer-type and adoption rows are not taken.
    assert df.groupby("area_code").size().max() == 1
    # Leicestershire 2022 (sgo line 3249): Total 24; National 3910.
    assert _get(df, "E10000018", 2022, "cla_ceased_sgo")["value"] == 24
    assert _get(df, "E92000001", 2022, "cla_ceased_sgo")["value"] == 3910


def test_population_year_is_mid_year_plus_one():
    df = ees.read_population(FIX / "ons_pop_sample.csv")
    # time_period 2023 (= mid-2023) is the denominator of reporting year 2024.
    assert _get(df, "E10000020", 2024, "pop_0_17")["value"] == 170640
    assert _get(df, "E10000020", 2013, "pop_0_17")["value"] == 165136
    assert set(df["year"]) == {2013, 2024}


def test_csww_joint_returns_go_to_both_las():
    df = ees.read_csww(FIX / "csww_sample.csv")
    for code in ("E09000021", "E09000027"):  # Kingston, Richmond: "314 / 318" in the file
        r = _get(df, code, 2025, "sw_turnover_pct")
        assert r["value"] == 28 and r["area_name"] == "Kingston upon Thames / Richmond upon Thames"
        assert _get(df, code, 2025, "sw_agency_pct")["value"] == 14.9
    assert _get(df, "E09000021", 2025, "sw_turnover_pct")["old_la_code"] == "314"
    assert _get(df, "E09000027", 2025, "sw_turnover_pct")["old_la_code"] == "318"
    # Suffolk 2019: turnover 13.3, agency 6.4 (FTE columns, not headcount 13.1/5.8).
    assert _get(df, "E10000029", 2019, "sw_turnover_pct")["value"] == 13.3
    assert _get(df, "E10000029", 2019, "sw_agency_pct")["value"] == 6.4
    # Kensington and Chelsea 2025: "x" after a cyberattack.
    assert _get(df, "E09000020", 2025, "sw_turnover_pct")["token"] == "x"


# ---------------------------------------------------------------- fixtures: bad input
def test_renamed_column_names_the_column(tmp_path):
    path = _edited(tmp_path, "c1_sample.csv",
                   lambda ls: [ls[0].replace("rereferral_percent", "rereferral_pc")] + ls[1:])
    with pytest.raises(DataError, match=r"column 'rereferral_percent'.*missing") as exc:
        ees.read_c1(path)
    assert "c1_sample.csv" in str(exc.value)


def test_unknown_token_names_file_column_and_line(tmp_path):
    def edit(lines):
        header = lines[0].split(",")
        cells = lines[3].split(",")  # file line 4: Norfolk 2015
        cells[header.index("rereferral_percent")] = "abc"
        lines[3] = ",".join(cells)
        return lines

    path = _edited(tmp_path, "c1_sample.csv", edit)
    with pytest.raises(DataError) as exc:
        ees.read_c1(path)
    msg = str(exc.value)
    assert "c1_sample.csv" in msg and "column 'rereferral_percent'" in msg
    assert "row 4" in msg and "'abc'" in msg


def test_unknown_la_code(tmp_path):
    path = _edited(tmp_path, "c1_sample.csv",
                   lambda ls: [line.replace(",926,E10000020,", ",999,E10999999,") for line in ls])
    with pytest.raises(DataError, match=r"unknown LA code '999'.*") as exc:
        ees.read_c1(path)
    assert "row 4" in str(exc.value)


def test_headline_value_disappears(tmp_path):
    path = _edited(tmp_path, "c1_sample.csv",
                   lambda ls: [line.replace("Referrals and Re-referrals", "Referrals") for line in ls])
    with pytest.raises(DataError, match=r"column 'category'.*'Referrals and Re-referrals' not found"):
        ees.read_c1(path)


def test_extra_breakdown_rows_are_filtered_or_caught(tmp_path):
    # Another category for Norfolk 2015: filtered away by the explicit headline value.
    def add_category(lines):
        return lines[:4] + [lines[3].replace("Referrals and Re-referrals", "Referrals by source")] + lines[4:]

    df = ees.read_c1(_edited(tmp_path, "c1_sample.csv", add_category))
    assert _get(df, "E10000020", 2015, "rereferral_pct")["value"] == 17.4
    # A repeated line: duplicate rows, both lines named.
    path = _edited(tmp_path, "c1_sample.csv", lambda ls: ls[:4] + [ls[3]] + ls[4:])
    with pytest.raises(DataError, match=r"duplicate rows for E10000020 in 2015 \(file rows 4 and 5\)"):
        ees.read_c1(path)


def test_financial_year_time_identifier_is_refused(tmp_path):
    path = _edited(tmp_path, "c1_sample.csv",
                   lambda ls: [ls[0]] + [line.replace("Reporting year", "Financial year") for line in ls[1:]])
    with pytest.raises(DataError, match=r"time_identifier.*row 2"):
        ees.read_c1(path)


def test_generic_reader_with_explicit_columns():
    df = ees.read_ees(FIX / "c1_sample.csv", "test", {"referral_child_count": "children_referred"},
                      {"category": "Referrals and Re-referrals"})
    assert _get(df, "E10000020", 2015, "children_referred")["value"] == 7306
    assert set(df["source_id"]) == {"test"}


# ---------------------------------------------------------------- real files
@pytest.mark.integration
def test_real_files_spot_values(real_source):
    c1 = ees.read_c1(real_source("cin_c1"))
    # Norfolk (926, E10000020) 2014: rereferral_percent "x" (c1 line 1897).
    r = _get(c1, "E10000020", 2014, "rereferral_pct")
    assert r["suppressed"] and r["token"] == "x" and np.isnan(r["value"]) and r["row"] == 1897
    # c1 line 1733: Norfolk 2015, 7943 referrals, 17.4 % re-referrals.
    assert _get(c1, "E10000020", 2015, "referrals")["value"] == 7943
    assert _get(c1, "E10000020", 2015, "rereferral_pct")["value"] == 17.4
    # b1 line 151: Brent 2025 At31_episodes 2721.
    assert _get(ees.read_b1(real_source("cin_b1")), "E09000005", 2025, "cin_31mar")["value"] == 2721
    # d3 line 1538: Wakefield 2016 CPP_subsequent_percent 14.6.
    d3 = ees.read_d3(real_source("cpp_d3"))
    assert _get(d3, "E08000036", 2016, "cpp_second_subsequent_pct")["value"] == 14.6
    # cla_number_and_rate_per_10k_children.csv (2025) line 363: Bristol 2025, 753, 81.
    cla25 = ees.read_cla_rates(real_source("cla_rates_2025"), "cla_rates_2025")
    assert _get(cla25, "E06000023", 2025, "cla_31mar")["value"] == 753
    assert _get(cla25, "E06000023", 2025, "cla_rate_per10k")["value"] == 81
    # BenGoodair .../cla_number_and_rate_per_10k_children.csv (2024) line 2301: Norfolk 2020, 1105, 66.
    cla24 = ees.read_cla_rates(real_source("cla_rates_2024"), "cla_rates_2024")
    assert _get(cla24, "E10000020", 2020, "cla_31mar")["value"] == 1105
    assert _get(cla24, "E10000020", 2020, "cla_rate_per10k")["value"] == 66
    # la_children_who_ceased_during_the_year_sgo_adoption.csv line 3249: Leicestershire 2022 SGO 24.
    sgo = ees.read_cla_ceased_sgo(real_source("cla_ceased_sgo_2024"))
    assert _get(sgo, "E10000018", 2022, "cla_ceased_sgo")["value"] == 24
    # ons_mid-year... line 260: Norfolk time_period 2023 (mid-2023) 170640 -> year 2024.
    pop = ees.read_population(real_source("ons_pop_0_17"))
    assert _get(pop, "E10000020", 2024, "pop_0_17")["value"] == 170640
    # csww_indicators line 160: Kingston/Richmond 2025 turnover 28 (both LAs);
    # line 1071: Suffolk 2019 turnover 13.3, agency 6.4.
    csww = ees.read_csww(real_source("csww_2025"))
    assert _get(csww, "E09000027", 2025, "sw_turnover_pct")["value"] == 28
    assert _get(csww, "E10000029", 2019, "sw_turnover_pct")["value"] == 13.3
    assert _get(csww, "E10000029", 2019, "sw_agency_pct")["value"] == 6.4


@pytest.mark.integration
def test_real_c1_rereferral_coverage(real_source):
    c1 = ees.read_c1(real_source("cin_c1"))
    la = c1[(c1["geographic_level"] == "Local authority") & (c1["measure"] == "rereferral_pct")]
    per_year = la[la["value"].notna()].groupby("year")["area_code"].nunique()
    assert sorted(per_year.index) == list(range(2013, 2026))
    # Measured: 148 149 149 150 152 152 151 148 149 150 149 149 153 (2013-2025).
    assert per_year.min() >= 145, per_year.to_dict()


@pytest.mark.integration
def test_real_population_is_the_cla_denominator(real_source):
    """CLA 2025 release: population_estimate of year Y == ONS mid-(Y-1) == pop_0_17 year Y."""
    pop = ees.read_population(real_source("ons_pop_0_17"))
    pop = pop[pop["geographic_level"] == "Local authority"]
    from analysis.ingest.geography import current_la_codes
    from analysis.ingest.readers.common import read_csv_text

    raw = read_csv_text(real_source("cla_rates_2025"), "cla_rates_2025")
    raw = raw[(raw["geographic_level"] == "Local authority")
              & (raw["population_type"] == "Children looked after on 31 March each year")
              & (raw["population_estimate"] != "x")]
    raw = raw.assign(year=raw["time_period"].astype(int),
                     cla_pop=raw["population_estimate"].astype(float),
                     area_code=current_la_codes(raw["new_la_code"], raw["old_la_code"],
                                                    file="cla", column="old_la_code").to_numpy())
    m = raw.merge(pop[["area_code", "year", "value"]], on=["area_code", "year"])
    assert len(m) >= 750
    assert (m["cla_pop"] == m["value"]).all()
    # And never the same-year estimate (i.e. no offset would be wrong).
    same = raw.merge(pop.assign(year=pop["year"] - 1)[["area_code", "year", "value"]],
                     on=["area_code", "year"])
    assert (same["cla_pop"] == same["value"]).mean() < 0.05


@pytest.mark.integration
def test_real_cla_releases_overlap(real_source):
    """The two CLA releases agree on counts for 2021-2022 (revisions after that are DfE's)."""
    new = ees.read_cla_rates(real_source("cla_rates_2025"), "cla_rates_2025")
    old = ees.read_cla_rates(real_source("cla_rates_2024"), "cla_rates_2024")
    keys = ["geographic_level", "area_code", "year", "measure"]
    m = new.merge(old, on=keys, suffixes=("_new", "_old"))
    m = m[(m["measure"] == "cla_31mar") & (m["year"] <= 2022) & m["value_new"].notna()]
    assert len(m) > 300
    assert (m["value_new"] == m["value_old"]).mean() > 0.95


@pytest.mark.integration
def test_real_ees_readers_are_fast(real_source):
    for sid in ees.EES_READERS:
        real_source(sid)  # fetch first: time the reading only
    start = time.perf_counter()
    df = ees.read_all_ees()
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"EES readers took {elapsed:.1f} s"
    assert len(df) > 40000
