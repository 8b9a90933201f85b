"""Ofsted reader: SIF + ILACS judgements and the one in force each reporting year."""
from __future__ import annotations

import math
import time

import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.ingest.geography import la_register
from analysis.ingest.readers.common import TIDY_COLUMNS
from analysis.ingest.readers.ofsted import (
    OVERALL_CODES,
    OVERALL_LABELS,
    inspections,
    overall_in_force,
    read_ilacs,
    read_ofsted,
    read_sif,
)


@pytest.fixture
def paths(fixtures):
    return (fixtures / "ofsted" / "sif_judgements_subset.csv",
            fixtures / "ofsted" / "ilacs_history_subset.ods")


def _in_force(f, code, year):
    sel = f[(f.la_code == code) & (f.year == year)]
    assert len(sel) == 1, (code, year)
    return sel.iloc[0]


def test_codes_and_labels():
    assert OVERALL_CODES == {"Outstanding": 1, "Good": 2, "Requires improvement": 3, "Inadequate": 4}
    assert OVERALL_LABELS[3] == "Requires improvement"


def test_norfolk_judgement_in_force_at_start_of_each_year(paths):
    # Reference csv: SIF Inadequate published 19 Oct 2015; SIF re-inspection Requires
    # improvement published 19 Jan 2018. ILACS sheet: Good published 13 Jan 2023.
    f = overall_in_force(inspections(*paths))
    assert math.isnan(_in_force(f, "E10000020", 2016).ofsted_overall)  # at 1 Apr 2015: none yet
    assert _in_force(f, "E10000020", 2017).ofsted_overall == 4
    assert _in_force(f, "E10000020", 2018).ofsted_overall == 4          # at 1 Apr 2017
    row = _in_force(f, "E10000020", 2019)                               # at 1 Apr 2018
    assert row.ofsted_overall == 3 and row.ofsted_overall_label == "Requires improvement"
    assert row.published == pd.Timestamp("2018-01-19") and row.framework == "SIF"
    assert _in_force(f, "E10000020", 2023).ofsted_overall == 3          # at 1 Apr 2022
    assert _in_force(f, "E10000020", 2024).ofsted_overall == 2          # at 1 Apr 2023


def test_ilacs_requires_improvement_to_be_good_is_code_3_and_1_april_counts(paths):
    ilacs = read_ilacs(paths[1])
    bd = ilacs[ilacs.la_code == "E09000002"].iloc[0]
    assert bd.overall == "Requires improvement" and bd.overall_code == 3
    f = overall_in_force(inspections(*paths))
    # Barking and Dagenham: published on 1 April 2019, the first day of reporting year 2020.
    assert math.isnan(_in_force(f, "E09000002", 2019).ofsted_overall)
    assert _in_force(f, "E09000002", 2020).ofsted_overall == 3


def test_sif_dates_fall_back_to_file_date_and_accept_slashes(paths):
    sif = read_sif(paths[0])
    # Bolton: no printed publication date transcribed -> file date 21 March 2014.
    assert sif.loc[sif.la_code == "E08000001", "published"].tolist() == [pd.Timestamp("2014-03-21")]
    # Redbridge: '25/11/2016'.
    assert sif.loc[sif.la_code == "E09000026", "published"].tolist() == [pd.Timestamp("2016-11-25")]
    # Only SIF rows with an overall judgement are kept (Norfolk's 2013 report is not SIF).
    assert sorted(sif.loc[sif.la_code == "E10000020", "inspection_type"]) == ["SIF", "SIF re-inspection"]


def test_abolished_la_has_no_rows_after_it_ended(paths):
    f = overall_in_force(inspections(*paths))
    bournemouth = f[f.la_code == "E06000028"]
    assert bournemouth.year.max() == la_register().set_index("la_code").loc["E06000028", "last_year"]
    assert bournemouth.ofsted_overall.isna().all()  # its ILACS (Aug 2018) came into force after 1 Apr 2018
    bcp = f[f.la_code == "E06000058"]
    first = la_register().set_index("la_code").loc["E06000058", "first_year"]
    assert bcp.year.min() == first and bcp.ofsted_overall.isna().all()  # not inherited


def test_tidy_output(paths):
    df = read_ofsted(*paths)
    assert list(df.columns) == TIDY_COLUMNS
    assert set(df.measure) == {"ofsted_overall"}
    assert df.year.min() == 2011 and df.year.max() == 2025
    assert not df.suppressed.any()
    nor = df[(df.area_code == "E10000020") & (df.year == 2019)].iloc[0]
    assert nor.value == 3 and nor.source_id == "sif_judgements_from_reports" and nor.old_la_code == "926"
    none_yet = df[(df.area_code == "E10000020") & (df.year == 2016)].iloc[0]
    assert math.isnan(none_yet.value) and none_yet.source_id == "sif_judgements_from_reports"
    bcp = df[(df.area_code == "E06000058") & (df.year == 2021)].iloc[0]
    assert math.isnan(bcp.value) and bcp.source_id == "ofsted_ilacs_2025"


def test_unknown_judgement_and_bad_date_name_the_row(paths, tmp_path):
    text = paths[0].read_text(encoding="utf-8")
    (tmp_path / "a.csv").write_text(text.replace(",Inadequate,Requires improvement,Inadequate,",
                                                 ",Adequate,Requires improvement,Inadequate,", 1))
    with pytest.raises(DataError, match=r"column 'overall', row 3: unknown overall judgement 'Adequate'"):
        read_sif(tmp_path / "a.csv")
    (tmp_path / "b.csv").write_text(text.replace("19 October 2015", "Autumn 2015"))
    with pytest.raises(DataError, match=r"column 'report_published', row 3: date 'Autumn 2015'"):
        read_sif(tmp_path / "b.csv")


def test_missing_ilacs_sheet_is_a_data_error(fixtures, tmp_path):
    bad = tmp_path / "x.ods"
    with pd.ExcelWriter(bad, engine="odf") as w:
        pd.DataFrame([["nothing"]]).to_excel(w, sheet_name="Cover", header=False, index=False)
    with pytest.raises(DataError, match="cannot read sheet 'ILACS_inspection_history'"):
        read_ilacs(bad)


# ---------------------------------------------------------------- real files

@pytest.mark.integration
def test_real_ofsted(real_source):
    path = real_source("ofsted_ilacs_2025")
    t0 = time.perf_counter()
    df = read_ofsted(ilacs_path=path)
    elapsed = time.perf_counter() - t0
    assert elapsed < 5, f"read_ofsted took {elapsed:.1f} s"
    insp = inspections(ilacs_path=path)
    assert (insp.framework == "ILACS").sum() == 271 and (insp.framework == "SIF").sum() == 167
    val = lambda code, y: df[(df.area_code == code) & (df.year == y)].value.iloc[0]  # noqa: E731
    assert math.isnan(val("E10000020", 2016))
    assert val("E10000020", 2018) == 4 and val("E10000020", 2019) == 3 and val("E10000020", 2024) == 2
    # Bexley: SIF Requires improvement (May 2014) in force at 1 April 2018; ILACS Outstanding
    # (published August 2018) from reporting year 2020.
    assert val("E09000004", 2019) == 3 and val("E09000004", 2020) == 1
    # No judgement before SIF reports began (2014); nearly every LA has one by 2019.
    assert df[df.year <= 2014].value.isna().all()
    by_year = df.groupby("year").value.count()
    assert by_year[2015] == 11 and by_year[2019] == 147
    assert set(df.value.dropna()) <= {1.0, 2.0, 3.0, 4.0}


def test_panel_entry_point_takes_a_fetcher(paths, monkeypatch):
    import analysis.ingest.readers.ofsted as mod
    monkeypatch.setattr(mod, "SIF_PATH", paths[0])
    df = mod.read_ofsted_overall({"ofsted_ilacs_2025": paths[1]}.__getitem__)
    assert df[(df.area_code == "E10000020") & (df.year == 2019)].value.iloc[0] == 3
