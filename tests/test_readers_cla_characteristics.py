"""Children looked after at 31 March by placement (DfE dashboard .rds), 2021-2025.

``tests/fixtures/cla_characteristics_sample.csv`` holds rows copied from the real
``combined_cla_31_march_data.rds`` (written out as CSV): Brent 2021, City of
London 2022 (``c``), Cumberland 2021 (did not exist yet: ``z`` everywhere), the
Isles of Scilly 2025 (``z`` placements, total 0), Inner London and England 2025,
each repeated for the three ``population_count`` values as in the file, plus two
rows of another group.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.ingest.readers import cla_characteristics as cc
from analysis.ingest.readers.common import TIDY_COLUMNS


@pytest.fixture
def sample(fixtures):
    return fixtures / "cla_characteristics_sample.csv"


def _row(df, **where):
    sel = np.ones(len(df), bool)
    for k, v in where.items():
        sel &= df[k].eq(v).to_numpy()
    rows = df[sel]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_foster_placements_one_row_per_area_year(sample):
    df = cc.read_characteristics(sample)
    assert list(df.columns) == TIDY_COLUMNS
    assert set(df["measure"]) == {"cla_foster"}
    brent = _row(df, old_la_code="304")
    assert (brent["area_code"], brent["area_name"], brent["year"], brent["value"]) == (
        "E09000005", "Brent", 2021, 181.0)
    assert not brent["suppressed"]
    eng = _row(df, geographic_level="National")
    assert (eng["area_code"], eng["area_name"], eng["year"], eng["value"]) == (
        "E92000001", "England", 2025, 54820.0)
    inner = _row(df, geographic_level="Regional")
    assert (inner["area_code"], inner["area_name"], inner["value"]) == ("E13000001", "Inner London", 2610.0)


def test_suppression_and_areas_that_did_not_exist(sample):
    df = cc.read_characteristics(sample)
    city = _row(df, old_la_code="201")
    assert np.isnan(city["value"]) and city["suppressed"] and city["token"] == "c"
    # Cumberland 2021: total 'z' (not yet an LA) -> dropped.
    assert "942" not in set(df["old_la_code"])
    # Scilly: total 0, placements 'z' -> kept, flagged.
    scilly = _row(df, old_la_code="420")
    assert np.isnan(scilly["value"]) and scilly["suppressed"] and scilly["token"] == "z"
    assert len(df) == 5


def test_unknown_token_names_file_column_and_line(sample, tmp_path):
    text = sample.read_text()
    lines = text.splitlines()
    i = next(n for n, line in enumerate(lines)
             if line.startswith("Brent,2021") and "31 March each year" in line and "Foster placements" in line)
    lines[i] = lines[i].replace("Foster placements,181,", "Foster placements,18l,")
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError) as exc:
        cc.read_characteristics(bad)
    msg = str(exc.value)
    assert "bad.csv" in msg and "cla_31_march_number" in msg and exc.value.row == i + 1


def test_missing_characteristic_or_column_is_an_error(sample, tmp_path):
    bad = tmp_path / "renamed.csv"
    bad.write_text(sample.read_text().replace("Foster placements", "Fostering"))
    with pytest.raises(DataError, match="characteristic 'Foster placements'"):
        cc.read_characteristics(bad)
    df = pd.read_csv(sample, dtype=str, keep_default_na=False).drop(columns=["old_la_code"])
    df.to_csv(tmp_path / "nocol.csv", index=False)
    with pytest.raises(DataError, match="old_la_code"):
        cc.read_characteristics(tmp_path / "nocol.csv")


def test_unknown_la_code_is_an_error(sample, tmp_path):
    df = pd.read_csv(sample, dtype=str, keep_default_na=False)
    df.loc[df["old_la_code"] == "304", ["old_la_code", "new_la_code"]] = ["399", "E09000099"]
    df.to_csv(tmp_path / "code.csv", index=False)
    with pytest.raises(DataError, match="unknown LA code '399'"):
        cc.read_characteristics(tmp_path / "code.csv")


def test_duplicate_area_year_is_an_error(sample, tmp_path):
    df = pd.read_csv(sample, dtype=str, keep_default_na=False)
    extra = df[(df["old_la_code"] == "304") & (df["population_count"].str.contains("31 March"))]
    pd.concat([df, extra]).to_csv(tmp_path / "dup.csv", index=False)
    with pytest.raises(DataError, match="more than one row"):
        cc.read_characteristics(tmp_path / "dup.csv")


@pytest.mark.integration
def test_real_file(real_source):
    df = cc.read_all(real_source)
    la = df[df["geographic_level"] == "Local authority"]
    assert sorted(la["year"].unique()) == [2021, 2022, 2023, 2024, 2025]
    assert not la.duplicated(["area_code", "year"]).any()
    # Values read from the R data frame (pyreadr), 1-based row numbers:
    # row 13579 Brent 2021 "Foster placements" (31 March) = 181; row 14407 Brent 2025 = 174;
    # row 88927 England 2025 = 54820.
    brent = la[la["old_la_code"] == "304"].set_index("year")
    assert brent.loc[2021, "value"] == 181 and brent.loc[2021, "row"] == 13579
    assert brent.loc[2025, "value"] == 174 and brent.loc[2025, "row"] == 14407
    eng = df[(df["geographic_level"] == "National") & (df["year"] == 2025)]
    assert eng["value"].item() == 54820
    # The dashboard keeps only today's LAs: Northamptonshire (928) is absent in 2021
    # and Cumbria (909) in 2021-2023 (their successors carry 'z' until they existed).
    absent = {2021: {"928", "909"}, 2022: {"909"}, 2023: {"909"}, 2024: set(), 2025: set()}
    for year in range(2021, 2026):
        got = la[la["year"] == year]
        assert got["value"].notna().sum() >= 145, year
        assert not absent[year] & set(got["old_la_code"]), year
        total = df[(df["geographic_level"] == "National") & (df["year"] == year)]["value"].item()
        if not absent[year]:
            # LA values are unrounded; England is rounded to the nearest 10 after summing.
            assert abs(got["value"].sum() - total) <= 50, year
        else:
            assert got["value"].sum() < total, year
    # No kinship (relative or friend) split in this file.
    assert set(df["measure"]) == {"cla_foster"}
