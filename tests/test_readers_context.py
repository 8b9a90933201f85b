"""Context reader: density and area from ONS MYE5, IMD and IDACI 2019."""
from __future__ import annotations

import time

import numpy as np
import openpyxl
import pytest

from analysis.core.errors import DataError
from analysis.ingest.geography import la_register
from analysis.ingest.readers.common import TIDY_COLUMNS
from analysis.ingest.readers.context import NOT_REBUILDABLE, read_density, read_idaci, read_imd, read_mye5

# Figures read by hand from mye23tablesew.xlsx, sheet MYE5 (the fixture copies these rows).
BRENT_AREA = 43.2330                 # Area (sq km)
BRENT_POP_MID2018 = 345558           # Estimated Population mid-2018
BRENT_DENSITY_MID2018_PRINTED = 7993  # 2018 people per sq. km (rounded in the sheet)
CUMBERLAND = {"area": 3012.2075, "pop2018": 273256}
WESTMORLAND_FURNESS = {"area": 3755.7384, "pop2018": 225685}
NORTH_NORTHANTS = {"area": 986.5946, "pop2018": 351998}
WEST_NORTHANTS = {"area": 1377.4109, "pop2018": 417242}


@pytest.fixture
def mye5(fixtures):
    return fixtures / "context" / "mye23_mye5_subset.xlsx"


def _value(df, code, measure, year):
    sel = df[(df.area_code == code) & (df.measure == measure) & (df.year == year)]
    assert len(sel) == 1, (code, measure, year, len(sel))
    return float(sel.value.iloc[0])


def test_density_of_brent_2019_is_mid2018_population_over_area(mye5):
    df = read_density(mye5)
    assert list(df.columns) == TIDY_COLUMNS
    got = _value(df, "E09000005", "people_per_sqkm", 2019)  # reporting 2019 <- mid-2018
    assert got == pytest.approx(BRENT_POP_MID2018 / BRENT_AREA)
    assert round(got) == BRENT_DENSITY_MID2018_PRINTED
    assert _value(df, "E09000005", "area_sqkm", 2019) == pytest.approx(BRENT_AREA)
    assert set(df.loc[df.area_code == "E09000005", "year"]) == set(range(2012, 2025))
    assert (df.source_id == "ons_mye23").all() and not df.suppressed.any()


def test_cumbria_and_northamptonshire_are_sums_of_their_successors(mye5):
    df = read_density(mye5)
    cw = (CUMBERLAND, WESTMORLAND_FURNESS)
    assert _value(df, "E10000006", "area_sqkm", 2019) == pytest.approx(sum(x["area"] for x in cw))
    assert _value(df, "E10000006", "people_per_sqkm", 2019) == pytest.approx(
        sum(x["pop2018"] for x in cw) / sum(x["area"] for x in cw))
    nw = (NORTH_NORTHANTS, WEST_NORTHANTS)
    assert _value(df, "E10000021", "people_per_sqkm", 2019) == pytest.approx(
        sum(x["pop2018"] for x in nw) / sum(x["area"] for x in nw))
    # Rebuilt rows have no single sheet row.
    assert (df.loc[df.area_code == "E10000006", "row"] == -1).all()


def test_rows_only_for_years_the_la_exists(mye5):
    df = read_density(mye5)
    reg = la_register().set_index("la_code")
    for code in ("E10000006", "E06000063", "E10000021", "E06000061", "E06000058", "E09000005"):
        first, last = reg.loc[code, ["first_year", "last_year"]]
        # The sheet covers mid-2011 to mid-2023, i.e. reporting years 2012-2024.
        expected = set(range(max(first, 2012), min(last, 2024) + 1))
        assert set(df.loc[df.area_code == code, "year"]) == expected, code
    assert max(df.loc[df.area_code == "E10000006", "year"]) == 2023  # Cumbria ends in 2023


def test_bournemouth_poole_and_old_dorset_are_not_invented(mye5):
    df = read_density(mye5)
    assert not set(NOT_REBUILDABLE) & set(df.area_code)


def test_read_mye5_keeps_the_printed_density_and_sheet_rows(mye5):
    m = read_mye5(mye5)
    brent = m[(m.code == "E09000005") & (m.mid_year == 2018)].iloc[0]
    assert brent.density_published == BRENT_DENSITY_MID2018_PRINTED
    assert brent.population == BRENT_POP_MID2018
    ws = openpyxl.load_workbook(mye5, read_only=True)["MYE5"]
    assert ws.cell(row=int(brent.row), column=1).value == "E09000005"


def _edit_fixture(src, dest, edit):
    wb = openpyxl.load_workbook(src)
    edit(wb["MYE5"])
    wb.save(dest)
    return dest


def test_missing_upper_tier_row_is_caught_by_england_total(mye5, tmp_path):
    def drop_brent(ws):
        for r in range(1, ws.max_row + 1):
            if ws.cell(row=r, column=1).value == "E09000005":
                ws.delete_rows(r)
                return
    bad = _edit_fixture(mye5, tmp_path / "mye.xlsx", drop_brent)
    with pytest.raises(DataError, match=r"sheet MYE5: upper-tier rows do not add up to England for mid-2011"):
        read_density(bad)


def test_unknown_upper_tier_code_names_the_row(mye5, tmp_path):
    def recode(ws):
        for r in range(1, ws.max_row + 1):
            if ws.cell(row=r, column=1).value == "E09000005":
                ws.cell(row=r, column=1).value = "E09000099"
                self_row.append(r)
    self_row: list[int] = []
    bad = _edit_fixture(mye5, tmp_path / "mye.xlsx", recode)
    with pytest.raises(DataError, match=rf"column 'Code', row {self_row[0]}: unknown LA code 'E09000099'"):
        read_density(bad)


def test_missing_sheet_and_text_in_numbers_are_one_line_errors(mye5, tmp_path):
    wb = openpyxl.load_workbook(mye5)
    wb["MYE5"].title = "MYE6"
    wb.save(tmp_path / "nosheet.xlsx")
    with pytest.raises(DataError, match="sheet 'MYE5' not found"):
        read_density(tmp_path / "nosheet.xlsx")

    def garble(ws):
        for r in range(1, ws.max_row + 1):
            if ws.cell(row=r, column=1).value == "E09000005":
                ws.cell(row=r, column=5).value = "n.a.?"
    bad = _edit_fixture(mye5, tmp_path / "garbled.xlsx", garble)
    with pytest.raises(DataError, match=r"column 'Estimated Population mid-2023', row \d+: unknown token"):
        read_density(bad)


def test_imd_and_idaci_map_2019_codes_and_are_filed_under_2019(fixtures):
    imd = read_imd(fixtures / "context" / "imd19_subset.csv")
    idaci = read_idaci(fixtures / "context" / "idacilarge_subset.csv")
    for df in (imd, idaci):
        assert list(df.columns) == TIDY_COLUMNS
        assert (df.year == 2019).all()
        # Buckinghamshire's 2019 code E10000002 maps to the current E06000060.
        assert "E06000060" in set(df.area_code) and "E10000002" not in set(df.area_code)
    assert _value(imd, "E09000005", "imd_score", 2019) == pytest.approx(25.558)
    assert _value(idaci, "E09000005", "idaci_score", 2019) == pytest.approx(0.182)
    assert _value(idaci, "E06000060", "idaci_score", 2019) == pytest.approx(0.085)
    assert _value(imd, "E10000021", "imd_score", 2019) == pytest.approx(18.605)  # Northamptonshire


def test_deprivation_bad_code_and_missing_column(fixtures, tmp_path):
    text = (fixtures / "context" / "idacilarge_subset.csv").read_text(encoding="utf-8-sig")
    (tmp_path / "a.csv").write_text(text.replace("E10000020", "E10009999"))
    with pytest.raises(DataError, match=r"column 'LAD19CD', row 6: unknown LA code 'E10009999'"):
        read_idaci(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text(text.replace("IDACI - Average score", "IDACI score"))
    with pytest.raises(DataError, match="column 'IDACI - Average score'"):
        read_idaci(tmp_path / "b.csv")


# ---------------------------------------------------------------- real files

@pytest.mark.integration
def test_real_density(real_source):
    path = real_source("ons_mye23")
    t0 = time.perf_counter()
    df = read_density(path)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5, f"read_density took {elapsed:.1f} s"
    dens = df[df.measure == "people_per_sqkm"]
    assert _value(df, "E09000005", "people_per_sqkm", 2019) == pytest.approx(BRENT_POP_MID2018 / BRENT_AREA)
    cw = (CUMBERLAND, WESTMORLAND_FURNESS)
    assert _value(df, "E10000006", "people_per_sqkm", 2019) == pytest.approx(
        sum(x["pop2018"] for x in cw) / sum(x["area"] for x in cw))
    # 158 register LAs less the three that cannot be rebuilt.
    assert dens.area_code.nunique() == 155
    assert dens.year.min() == 2012 and dens.year.max() == 2024
    assert dens.value.notna().all() and (dens.value > 0).all()
    # Every unrounded density rounds to what the sheet prints.
    m = read_mye5(path)
    assert (np.round(m.population / m.area_sqkm) == m.density_published).all()


@pytest.mark.integration
def test_real_deprivation(real_source):
    t0 = time.perf_counter()
    imd = read_imd(real_source("imd_2019"))
    idaci = read_idaci(real_source("idaci_2019"))
    assert time.perf_counter() - t0 < 5
    assert len(imd) == len(idaci) == 151
    assert set(imd.area_code) == set(idaci.area_code)
    assert idaci.value.between(0, 1).all() and imd.value.between(0, 100).all()
    # Every pilot LA has both.
    pilots = {"E09000005", "E06000023", "E10000018", "E10000019", "E10000020", "E10000029",
              "E09000030", "E08000036", "E10000032", "E06000041", "E09000004"}
    assert pilots <= set(idaci.area_code)
    assert _value(idaci, "E06000002", "idaci_score", 2019) == pytest.approx(0.327)  # Middlesbrough


def test_readers_accept_a_fetcher_as_the_panel_passes_it(fixtures, mye5):
    files = {"ons_mye23": mye5, "imd_2019": fixtures / "context" / "imd19_subset.csv",
             "idaci_2019": fixtures / "context" / "idacilarge_subset.csv"}
    from analysis.ingest.readers.context import read_deprivation
    dens = read_density(files.__getitem__)
    assert _value(dens, "E09000005", "area_sqkm", 2019) == pytest.approx(BRENT_AREA)
    dep = read_deprivation(files.__getitem__)
    assert set(dep.measure) == {"imd_score", "idaci_score"} and len(dep) == 12
