"""The soft rule ``anomaly``: implausible LA-year values are flagged, never changed."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml

from analysis.core.errors import DataError
from analysis.ingest.panel import (
    VALIDATION_COLUMNS,
    VALIDATION_PATH,
    AnomalySettings,
    anomalies,
    anomaly_settings,
    validate_panel,
)
from analysis.ingest.readers.common import TIDY_COLUMNS

WAKEFIELD = "E08000036"
SETTINGS = AnomalySettings(neighbours=6, min_neighbours=4, z_own=4, z_national=3,
                           transforms={"pct": "arcsine_sqrt", "rate": "log"}, min_population=2000,
                           measures=("rereferral_pct",))


def _panel() -> pd.DataFrame:
    """30 ordinary LAs around 22% (noise 2 points), plus four to judge, 2013-2022."""
    rng = np.random.default_rng(7)
    years = range(2013, 2023)
    rows = [dict(la_code=f"L{i:02d}", year=y, rereferral_pct=22 + rng.normal(0, 2), pop_0_17=50000)
            for i in range(30) for y in years]
    for y in years:
        # spike: 20% every year except 2016 (60%): flagged in 2016 only
        rows.append(dict(la_code="spike", year=y, rereferral_pct=60.0 if y == 2016 else 20.0 + (y % 2),
                         pop_0_17=50000))
        # high: steadily 45%, far from other LAs but in line with its own years: not flagged
        rows.append(dict(la_code="high", year=y, rereferral_pct=45.0 + (y % 2), pop_0_17=50000))
        # back: 60% to 2015, then 22%: the fall brings it to the middle, not flagged after
        rows.append(dict(la_code="back", year=y, rereferral_pct=60.0 if y <= 2015 else 22.0 + (y % 2),
                         pop_0_17=50000))
        # tiny: a spike like "spike" but fewer than 2,000 children: not judged
        rows.append(dict(la_code="tiny", year=y, rereferral_pct=60.0 if y == 2016 else 20.0,
                         pop_0_17=600))
    return pd.DataFrame(rows)


def test_spike_is_flagged_with_its_references():
    flags = anomalies(_panel(), SETTINGS)
    spike = flags[flags["la_code"] == "spike"]
    assert list(spike["year"]) == [2016]
    r = spike.iloc[0]
    assert r["measure"] == "rereferral_pct" and r["value"] == 60.0
    # the six nearest other years: 2013-2015 and 2017-2019: 21, 20, 21, 21, 20, 21 -> median 21
    assert r["reference_years"] == "2013,2014,2015,2017,2018,2019"
    assert r["reference"] == pytest.approx(21.0, abs=0.05)
    assert r["national_median"] == pytest.approx(22, abs=1.5)
    assert r["z_own"] >= 4 and r["z_national"] >= 3
    assert "60 against 21" in r["detail"]


def test_steady_outlier_return_to_the_middle_and_tiny_las_are_not_flagged():
    flags = anomalies(_panel(), SETTINGS)
    assert not set(flags["la_code"]) & {"high", "tiny"}
    # "back" in 2016-2022 is far below its own 60% years but at the national middle
    assert not ((flags["la_code"] == "back") & (flags["year"] >= 2016)).any()
    # with the population floor removed, the tiny LA's spike is flagged too
    no_floor = anomalies(_panel(), AnomalySettings(**{**SETTINGS.__dict__, "min_population": 0}))
    assert ((no_floor["la_code"] == "tiny") & (no_floor["year"] == 2016)).any()


def test_thresholds_decide():
    loose = AnomalySettings(**{**SETTINGS.__dict__, "z_own": 100})
    assert anomalies(_panel(), loose).empty
    assert len(anomalies(_panel(), SETTINGS)) >= 1


def test_flags_reach_validation_and_values_are_kept():
    panel = _panel()
    before = panel.copy()
    resolved = pd.DataFrame(columns=TIDY_COLUMNS)
    report = validate_panel(panel, resolved, settings=SETTINGS)
    assert list(report.columns) == VALIDATION_COLUMNS
    a = report[report["rule"] == "anomaly"]
    row = a[a["la_code"] == "spike"].iloc[0]
    assert (row["severity"], row["year"], row["measure"], row["value"]) == ("warning", 2016, "rereferral_pct", 60.0)
    assert row["reference"] == pytest.approx(21.0, abs=0.05)
    pd.testing.assert_frame_equal(panel, before)                       # nothing changed


def test_settings_file_is_read_and_checked(tmp_path):
    st = anomaly_settings()
    assert (st.z_own, st.z_national, st.neighbours, st.min_neighbours) == (4, 3, 6, 4)
    assert st.transforms == {"pct": "arcsine_sqrt", "rate": "log"}
    assert "rereferral_pct" in st.measures and "cla_rate_per10k" in st.measures
    doc = yaml.safe_load(VALIDATION_PATH.read_text(encoding="utf-8"))
    for change, message in [(lambda a: a.pop("z_own"), "exactly the keys"),
                            (lambda a: a.update(z_own=-1), "z_own must be a number"),
                            (lambda a: a.update(transforms={"pct": "sqrt", "rate": "log"}), "transforms"),
                            (lambda a: a.update(measures=["no_such_measure"]), "no_such_measure")]:
        d = yaml.safe_load(yaml.safe_dump(doc))
        change(d["anomaly"])
        path = tmp_path / "validation.yaml"
        path.write_text(yaml.safe_dump(d), encoding="utf-8")
        with pytest.raises(DataError, match=message):
            anomaly_settings(path)


# --------------------------------------------------------------------------- real data
@pytest.mark.integration
def test_wakefield_rereferrals_2015_and_2016_are_flagged(real_panel):
    v = pd.read_csv(real_panel / "validation.csv")
    a = v[(v["rule"] == "anomaly") & (v["la_code"] == WAKEFIELD) & (v["measure"] == "rereferral_pct")]
    got = a.set_index("year")
    assert sorted(got.index) == [2015, 2016]
    assert got.loc[2015, "value"] == pytest.approx(46.1) and got.loc[2016, "value"] == pytest.approx(67.6)
    # judged against its other years (17-32%): the median of the six nearest is about 25
    assert 20 < got.loc[2015, "reference"] < 30 and 20 < got.loc[2016, "reference"] < 30
    assert "across LAs that year" in got.loc[2016, "detail"]
    # its other years are not flagged, and the panel keeps the published values
    assert not a["year"].isin([2013, 2014, 2017, 2018, 2019]).any()
    panel = pd.read_csv(real_panel / "panel.csv").set_index(["la_code", "year"])
    assert panel.loc[(WAKEFIELD, 2016), "rereferral_pct"] == pytest.approx(67.6)
    # few flags overall: a screen, not a filter of routine variation
    n_values = sum(int(panel[m].notna().sum()) for m in anomaly_settings().measures)
    assert 0 < (v["rule"] == "anomaly").sum() < 0.01 * n_values
