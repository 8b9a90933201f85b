"""Newest revision wins everywhere: the back series of the 2018 and 2019 SFR files.

The 2018 and 2019 underlying-data files republish four earlier years of the totals
(``CLA_Mar2014`` ..., ``CLA_started2014`` ..., ``CLA_cease2014`` ...) as revised by
LAs. They are read (``sfr_cla.read_back_series``), and the panel's newest-release
rule takes them; ``release_choices.csv`` records each choice.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.ingest.panel import resolve_releases
from analysis.ingest.readers import sfr_cla
from analysis.ingest.sources import Source

HACKNEY, BRENT, CITY = "E09000012", "E09000005", "E09000001"


# --------------------------------------------------------------------------- fixtures
def test_back_series_of_the_2019_ceased_file(fixtures):
    # tests/fixtures/sfr/CEA2019.csv: CLA_cease2015..2019; City of London "c,6,c,16,18",
    # Brent "268,220,231,176,185".
    df = sfr_cla.read_file(fixtures / "sfr" / "CEA2019.csv", 2019, "cea", source_id="cla_sfr_2019_cea",
                           back_series=True)
    assert set(df["measure"]) == {"cla_ceased"}
    assert set(df["year"]) == {2015, 2016, 2017, 2018}              # never the file's own year
    la = df[df["geographic_level"] == "Local authority"].set_index(["area_code", "year"])
    assert [la.loc[(BRENT, y), "value"] for y in (2015, 2016, 2017, 2018)] == [268, 220, 231, 176]
    assert la.loc[(CITY, 2016), "value"] == 6
    c = la.loc[(CITY, 2015)]
    assert np.isnan(c["value"]) and c["suppressed"] and c["token"] == "c"
    assert (df["source_id"] == "cla_sfr_2019_cea").all()
    assert la.loc[(BRENT, 2015), "row"] == 5                        # the file's own line
    # and the own-year reading is unchanged: 2019 only
    own = sfr_cla.read_file(fixtures / "sfr" / "CEA2019.csv", 2019, "cea")
    assert set(own["year"]) == {2019}


def test_back_series_rules_cover_the_four_earlier_years():
    t = sfr_cla.column_table(back_series=True)
    back = t[t["year"] != t["data_year"]]
    assert sorted(set(zip(back["year"], back["data_year"]))) == [
        (2018, 2014), (2018, 2015), (2018, 2016), (2018, 2017),
        (2019, 2015), (2019, 2016), (2019, 2017), (2019, 2018)]
    assert set(back["measure"]) == {"cla_31mar", "cla_starts", "cla_ceased"}
    row = back[(back["year"] == 2018) & (back["data_year"] == 2014) & (back["file"] == "cla")]
    assert row["columns"].item() == "CLA_Mar2014"
    assert len(sfr_cla.column_table()) == len(sfr_cla.COLUMN_RULES)   # default: own years only


def test_a_file_without_back_series_is_an_error(fixtures):
    with pytest.raises(DataError, match="no back-series rules for SFR year 2015"):
        sfr_cla.read_file(fixtures / "sfr" / "SFR34_ADM2015.csv", 2015, "adm", back_series=True)


def test_revision_in_a_later_release_wins_and_is_recorded():
    def src(sid, date):
        return Source(id=sid, path=f"p/{sid}.csv", title=sid, publisher="DfE", release=sid,
                      licence="OGL-UK-3.0", url="https://x/" + sid, sha256="0" * 64, bytes=1,
                      release_date=date)

    manifest = {"cla_sfr_2014_cla": src("cla_sfr_2014_cla", "2014-09"),
                "cla_sfr_2018_cla": src("cla_sfr_2018_cla", "2018-11")}
    tidy = pd.DataFrame({
        "geographic_level": "Local authority", "area_code": [HACKNEY, HACKNEY, BRENT, BRENT],
        "old_la_code": "", "area_name": "", "year": 2014, "measure": "cla_31mar",
        "value": [329.0, 340.0, 300.0, 300.0], "suppressed": False, "token": "",
        "source_id": ["cla_sfr_2014_cla", "cla_sfr_2018_cla"] * 2, "row": [1, 2, 3, 4]})
    resolved, choices = resolve_releases(tidy, manifest)
    assert resolved.set_index("area_code").loc[HACKNEY, "value"] == 340.0
    c = choices.iloc[0]
    assert (c["kept_source"], c["dropped_source"], c["n_overlap"], c["n_differ"], c["max_abs_diff"]) \
        == ("cla_sfr_2018_cla", "cla_sfr_2014_cla", 2, 1, 11.0)


# --------------------------------------------------------------------------- real data
@pytest.mark.integration
def test_real_back_series_hackney(real_source):
    df = sfr_cla.read_back_series(real_source)
    la = df[(df["geographic_level"] == "Local authority") & (df["area_code"] == HACKNEY)]
    v = la.set_index(["source_id", "measure", "year"])["value"]
    # CLA2018.csv line 97 Hackney: CLA_Mar2014..2018 = 340,340,328,368,381 (own year 381 not here)
    assert [v[("cla_sfr_2018_cla", "cla_31mar", y)] for y in (2014, 2015, 2016, 2017)] == [340, 340, 328, 368]
    # 2019/CLA2019.csv line 97 Hackney: CLA_Mar2015..2019 = 340,328,368,382,405
    assert [v[("cla_sfr_2019_cla", "cla_31mar", y)] for y in (2015, 2016, 2017, 2018)] == [340, 328, 368, 382]
    assert not ((la["source_id"] == "cla_sfr_2018_cla") & (la["year"] == 2018)).any()


@pytest.mark.integration
def test_real_panel_takes_the_revision_and_records_it(real_panel):
    panel = pd.read_csv(real_panel / "panel.csv").set_index(["la_code", "year"])
    assert panel.loc[(HACKNEY, 2014), "cla_31mar"] == 340            # first published 329
    ch = pd.read_csv(real_panel / "release_choices.csv")
    row = ch[(ch["measure"] == "cla_31mar") & (ch["year"] == 2014)]
    assert list(row["kept_source"]) == ["cla_sfr_2018_cla"]
    assert list(row["dropped_source"]) == ["cla_sfr_2014_cla"]
    assert row["n_overlap"].item() == 151 and row["n_differ"].item() == 93
    long = pd.read_csv(real_panel / "panel_long.csv")
    cell = long[(long["area_code"] == HACKNEY) & (long["year"] == 2014) & (long["measure"] == "cla_31mar")]
    assert cell["source_id"].item() == "cla_sfr_2018_cla"
    # Revised in 2018 for starts and ceased too; 2015-2018 revisions are in later releases.
    for measure in ("cla_starts", "cla_ceased"):
        r = ch[(ch["measure"] == measure) & (ch["year"] == 2014)]
        assert list(r["kept_source"]) == [f"cla_sfr_2018_{'adm' if measure == 'cla_starts' else 'cea'}"]
        assert r["n_differ"].item() > 50
    later = ch[(ch["measure"] == "cla_31mar") & ch["year"].between(2015, 2018)]
    assert set(later["dropped_source"]) >= {"cla_sfr_2018_cla", "cla_sfr_2019_cla"}
    # The first-release values stay in the tidy table of releases only through choices:
    # every LA-year of the panel holds the newest release's figure.
    assert long.duplicated(["area_code", "year", "measure"]).sum() == 0
