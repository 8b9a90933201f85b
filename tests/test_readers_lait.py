"""Tests of analysis.ingest.readers.lait: a fixture parquet built from real rows, then the real files.

tests/fixtures/lait/bds_long_sample.csv holds rows copied from the LAIT 2025
parquet (``parquet_row`` = their 1-based row there, for audit); :func:`_parquet`
writes them to a parquet with the real file's schema (all text, ``LA Number``
a double), optionally edited.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis.core.errors import DataError
from analysis.ingest.readers import ees, lait
from analysis.ingest.readers.common import TIDY_COLUMNS

FIX = Path(__file__).parent / "fixtures" / "lait"
CODES = ["Continue_Assess_Comp", "ReReferral", "Section_47", "Work_Force_TO_Rate"]
SCHEMA = pa.schema([("Short Desc", pa.string()), ("Data item", pa.string()), ("Years", pa.string()),
                    ("LA and Regions", pa.string()), ("Values", pa.string()),
                    ("LA Number", pa.float64()), ("Region", pa.string())])


def _parquet(tmp_path: Path, edit=None) -> Path:
    """Write the fixture rows as a parquet shaped like ``bds_long_0.parquet``."""
    df = pd.read_csv(FIX / "bds_long_sample.csv", dtype=str, keep_default_na=False)
    df = df.drop(columns="parquet_row")
    df["LA Number"] = df["LA Number"].astype(float)
    df["Data item"] = df["Data item"].replace("", None)
    if edit is not None:
        df = edit(df)
    path = tmp_path / "bds_long_0.parquet"
    pq.write_table(pa.Table.from_pandas(df, schema=SCHEMA if list(df.columns) == SCHEMA.names else None,
                                        preserve_index=False), path)
    return path


def _get(df: pd.DataFrame, area: str, year: int, measure: str, source: str | None = None) -> pd.Series:
    hit = df[(df["area_code"] == area) & (df["year"] == year) & (df["measure"] == measure)]
    if source:
        hit = hit[hit["source_id"] == source]
    assert len(hit) == 1, f"{len(hit)} rows for {area} {year} {measure}"
    return hit.iloc[0]


# ---------------------------------------------------------------- fixture
def test_fixture_values_codes_and_levels(tmp_path):
    df = lait.read_lait(_parquet(tmp_path), "lait_2025", codes=CODES)
    assert list(df.columns) == TIDY_COLUMNS
    assert set(df["measure"]) == {"assessments_45wd_pct", "rereferral_pct", "s47_rate_per10k",
                                  "sw_turnover_pct"}
    # Norfolk 2020 ReReferral "18.600000000000001" -> 18.6 exactly (float noise rounded).
    assert _get(df, "E10000020", 2020, "rereferral_pct")["value"] == 18.6
    assert _get(df, "E10000020", 2019, "assessments_45wd_pct")["value"] == 73.8
    # DfE code 304 -> current ONS code of Brent.
    brent = _get(df, "E09000005", 2019, "s47_rate_per10k")
    assert brent["value"] == 179.8 and brent["old_la_code"] == "304"
    assert brent["geographic_level"] == "Local authority"
    # England (970) and Inner London (987) get ONS codes and their levels.
    eng = _get(df, "E92000001", 2020, "assessments_45wd_pct")
    assert eng["geographic_level"] == "National" and eng["value"] == 83.8 and eng["old_la_code"] == ""
    inner = _get(df, "E13000001", 2019, "assessments_45wd_pct")
    assert inner["geographic_level"] == "Regional" and inner["value"] == 81.4
    # "-" is a suppression token: BCP 2019 (not yet formed), Bournemouth 2020 (abolished).
    bcp = _get(df, "E06000058", 2019, "assessments_45wd_pct")
    assert bcp["suppressed"] and bcp["token"] == "-" and np.isnan(bcp["value"])
    assert _get(df, "E06000028", 2019, "assessments_45wd_pct")["value"] == 86.6
    # Joint workforce return: Kingston and Richmond carry the same value.
    assert (_get(df, "E09000021", 2019, "sw_turnover_pct")["value"]
            == _get(df, "E09000027", 2019, "sw_turnover_pct")["value"] == 16.9)
    assert set(df["source_id"]) == {"lait_2025"}
    # row = 1-based row of the parquet table (Section_47 Bournemouth 2019 is the first row).
    assert _get(df, "E06000028", 2019, "s47_rate_per10k")["row"] == 1


def test_dictionary_units_checked(tmp_path):
    dict_path = FIX / "lait_data_dictionary_sample.csv"
    df = lait.read_lait(_parquet(tmp_path), "lait_2025", codes=CODES, dictionary=dict_path)
    assert len(df) == 64
    bad = tmp_path / "dict.csv"
    bad.write_text(dict_path.read_text().replace('"Rate per 10,000"', "Number"))
    with pytest.raises(DataError, match=r"column 'y_axis_name', row 4: unit of 'Section_47' is 'Number'"):
        lait.read_lait(_parquet(tmp_path), "lait_2025", codes=CODES, dictionary=bad)


def test_missing_measure_code(tmp_path):
    path = _parquet(tmp_path, lambda d: d.assign(**{"Short Desc": d["Short Desc"].replace(
        "Continue_Assess_Comp", "Assess_45")}))
    with pytest.raises(DataError, match=r"column 'Short Desc'.*'Continue_Assess_Comp' not found"):
        lait.read_lait(path, "lait_2025", codes=CODES)


def test_renamed_column(tmp_path):
    path = _parquet(tmp_path, lambda d: d.rename(columns={"Values": "Value"}))
    with pytest.raises(DataError, match=r"bds_long_0.parquet, column 'Values'.*missing"):
        lait.read_lait(path, "lait_2025", codes=CODES)


def test_unknown_token_names_file_column_and_row(tmp_path):
    def edit(d):
        d = d.copy()
        d.loc[4, "Values"] = "abc"  # Norfolk Section_47 2019, parquet row 5
        return d

    with pytest.raises(DataError) as exc:
        lait.read_lait(_parquet(tmp_path, edit), "lait_2025", codes=CODES)
    msg = str(exc.value)
    assert "bds_long_0.parquet" in msg and "column 'Values'" in msg and "row 5" in msg and "'abc'" in msg


def test_unknown_la_number(tmp_path):
    def edit(d):
        d = d.copy()
        d.loc[2, "LA Number"] = 999.0
        return d

    with pytest.raises(DataError, match=r"column 'LA Number', row 3: unknown LA code '999'"):
        lait.read_lait(_parquet(tmp_path, edit), "lait_2025", codes=CODES)


def test_non_year_label_is_refused(tmp_path):
    def edit(d):
        d = d.copy()
        d.loc[0, "Years"] = "2018-19"
        return d

    with pytest.raises(DataError, match=r"column 'Years', row 1: Years '2018-19'"):
        lait.read_lait(_parquet(tmp_path, edit), "lait_2025", codes=CODES)


def test_duplicate_area_year(tmp_path):
    path = _parquet(tmp_path, lambda d: pd.concat([d, d.iloc[[4]]], ignore_index=True))
    with pytest.raises(DataError, match=r"duplicate rows for Section_47 2019 LA Number 926"):
        lait.read_lait(path, "lait_2025", codes=CODES)


# ---------------------------------------------------------------- real files
def _newest_wins(df: pd.DataFrame) -> pd.DataFrame:
    rank = df["source_id"].map({"lait_2025": 0, "lait_2024": 1})
    return df.assign(_r=rank).sort_values("_r").drop_duplicates(
        ["geographic_level", "area_code", "year", "measure"]).drop(columns="_r")


@pytest.fixture(scope="module")
def lait_real(real_source):
    return tidy_both(real_source)


def tidy_both(real_source) -> pd.DataFrame:
    return pd.concat([
        lait.read_lait(real_source("lait_2025"), "lait_2025",
                       dictionary=real_source("lait_2025_dictionary")),
        lait.read_lait(real_source("lait_2024"), "lait_2024",
                       dictionary=real_source("lait_2024_dictionary")),
    ], ignore_index=True)


@pytest.mark.integration
def test_real_spot_values(lait_real):
    # lait_2024 parquet row 255258: Continue_Assess_Comp 2015 Norfolk "72.099999999999994".
    r = _get(lait_real, "E10000020", 2015, "assessments_45wd_pct", "lait_2024")
    assert r["value"] == 72.1 and r["row"] == 255258
    # lait_2025 row 260752: Continue_Assess_Comp 2018 Wakefield "51.300000000000004".
    assert _get(lait_real, "E08000036", 2018, "assessments_45wd_pct", "lait_2025")["value"] == 51.3
    # lait_2025 row 132221: Section_47 2019 Suffolk "115".
    assert _get(lait_real, "E10000029", 2019, "s47_rate_per10k", "lait_2025")["value"] == 115
    # lait_2025 row 201095: ISCP_Conf 2017 Wokingham "23.6".
    assert _get(lait_real, "E06000041", 2017, "icpc_rate_per10k", "lait_2025")["value"] == 23.6
    # lait_2024 row 142466: LAC_ceased_SGO 2015 Bexley "25" (a count).
    assert _get(lait_real, "E09000004", 2015, "cla_ceased_sgo", "lait_2024")["value"] == 25
    # lait_2025 row 261959: Continue_Assess_Comp 2025 England "85.7".
    assert _get(lait_real, "E92000001", 2025, "assessments_45wd_pct", "lait_2025")["value"] == 85.7
    # LAC_ceased_SGO% exists only in the 2025 release.
    sgo_pct = lait_real[lait_real["measure"] == "cla_ceased_sgo_pct"]
    assert set(sgo_pct["source_id"]) == {"lait_2025"} and sgo_pct["year"].min() == 2020


@pytest.mark.integration
def test_real_year_alignment_with_c1(lait_real, real_source):
    """LAIT year Y is the reporting year ending March Y: ReReferral == C1 rereferral_percent."""
    c1 = ees.read_c1(real_source("cin_c1"))
    c1 = c1[(c1["measure"] == "rereferral_pct") & (c1["geographic_level"] == "Local authority")]
    la = lait_real[(lait_real["measure"] == "rereferral_pct")
                   & (lait_real["geographic_level"] == "Local authority")]
    for sid, n_expected in (("lait_2025", 1503), ("lait_2024", 1499)):
        m = la[la["source_id"] == sid].merge(c1, on=["area_code", "year"], suffixes=("", "_c1"))
        both = m.dropna(subset=["value", "value_c1"])
        assert len(both) == n_expected
        assert (both["value"] == both["value_c1"]).all()
        # Missing in one exactly where missing in the other.
        assert (m["value"].isna() == m["value_c1"].isna()).all()
        # A one-year shift would not match.
        shifted = la[la["source_id"] == sid].assign(year=lambda d: d["year"] + 1).merge(
            c1, on=["area_code", "year"], suffixes=("", "_c1")).dropna(subset=["value", "value_c1"])
        assert (shifted["value"] == shifted["value_c1"]).mean() < 0.05


@pytest.mark.integration
def test_real_workforce_matches_csww(lait_real, real_source):
    """LAIT Work_Force_TO_Rate year Y == CSWW turnover_rate_fte time_period Y."""
    cs = ees.read_csww(real_source("csww_2025"))
    cs = cs[(cs["measure"] == "sw_turnover_pct") & (cs["geographic_level"] == "Local authority")]
    la = lait_real[(lait_real["measure"] == "sw_turnover_pct") & (lait_real["source_id"] == "lait_2025")]
    both = la.merge(cs, on=["area_code", "year"], suffixes=("", "_cs")).dropna(
        subset=["value", "value_cs"])
    assert len(both) > 1300
    assert (both["value"] == both["value_cs"]).all()


@pytest.mark.integration
def test_real_assessment_coverage(lait_real):
    a = _newest_wins(lait_real)
    a = a[(a["measure"] == "assessments_45wd_pct") & (a["geographic_level"] == "Local authority")]
    per_year = a[a["value"].notna()].groupby("year")["area_code"].nunique()
    assert sorted(per_year.index) == list(range(2015, 2026))
    # Measured: 152 in most years; 151 in 2019, 2020, 2022; 150 in 2021 (Hackney).
    assert per_year.min() >= 145, per_year.to_dict()


@pytest.mark.integration
def test_real_lait_is_fast(real_source):
    for sid in ("lait_2025", "lait_2024", "lait_2025_dictionary", "lait_2024_dictionary"):
        real_source(sid)
    start = time.perf_counter()
    tidy_both(real_source)
    elapsed = time.perf_counter() - start
    assert elapsed < 5, f"LAIT readers took {elapsed:.1f} s"
