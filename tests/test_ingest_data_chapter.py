"""The data chapter's tables, on the real panel: no "nan", revisions, both definitions,
flags and suppression by pilots and comparators."""
from __future__ import annotations

import re

import pandas as pd
import pytest

from analysis.book import data_chapter as D

pytestmark = pytest.mark.integration
SGO = "Children leaving care through a special guardianship order (% of those leaving)"


def _cells(df: pd.DataFrame) -> str:
    return df.to_html()


def test_measures_table_never_prints_nan(real_panel):
    m = D.measures_display(real_panel)
    assert not re.search(r">\s*(nan|NaN|<NA>|None)\s*<", _cells(m))
    years = m.set_index("Column")["Years"]
    assert years["cla_foster_kinship"] == "none in the panel (published for 2010, before 2011)"
    assert years["rereferral_pct"] == "2013–2025"
    assert years["cla_foster"] == "2011–2019, 2021–2025"                # no LA count for 2020
    assert m.set_index("Column").loc["cla_ceased_sgo_pct", "Measure"] == SGO
    assert not m["Measure"].str.contains("Care leaver").any()


def test_revisions_and_definitions_tables(real_panel):
    r = D.revisions_summary(real_panel)
    assert r["cla_31mar_2014"] == 93 and r["back_series_total"] >= 93
    t = D.revisions_table(real_panel)
    row = t[(t["Year"] == 2014) & (t["Release set aside"] == "cla_sfr_2014_cla")]
    assert row["LAs revised"].item() == 93 and row["Release used"].item() == "cla_sfr_2018_cla"
    d = D.definitions_table(real_panel).set_index("Measure")
    assert set(d["Rule"]) == {"derived"}
    cla = d.loc["Children looked after per 10,000 children"]
    assert cla["Years with both"] == "2015–2025" and cla["Where"] == "City of London 2017"
    assert cla["Largest difference"] > 20
    assert abs(d.loc["Children in need per 10,000 children", "Largest difference"]) <= 0.05
    by_year = D.definitions_by_year("cla_rate_per10k", real_panel).set_index("Year")
    assert (by_year.loc[2019:, "Largest difference"].abs() <= 0.5).all()


def test_anomalies_listed(real_panel):
    a = D.anomalies_table(real_panel)
    wake = a[(a["LA"] == "Wakefield") & (a["Measure"] == "Re-referrals within 12 months (%)")]
    assert list(wake["Year"]) == [2015, 2016] and list(wake["Value"]) == [46.1, 67.6]
    n = D.anomaly_counts(real_panel)
    assert n["n_flags"] == len(a) and n["n_las"] <= n["n_la_years"] <= n["n_flags"]
    assert n["n_pilot_flags"] >= 2                                     # Wakefield is a pilot


def test_suppression_by_pilots_and_comparators(real_panel):
    s = D.suppression_table(real_panel)
    sgo = s[s["Measure"] == SGO].set_index("LAs")
    assert set(sgo.index) == {"Pilots", "Comparators"}
    # the share is missing where its numerator is suppressed: about one LA-year in five
    assert 15 < sgo.loc["Comparators", "All years"] < 30
    assert sgo.loc["Comparators", 2011] > 50 and sgo.loc["Comparators", 2020] < 20
    # years without the measure are blank, not 0
    a45 = s[s["Measure"] == "Assessments completed within 45 working days (%)"]
    if len(a45):
        assert (a45[2013] == "").all()
