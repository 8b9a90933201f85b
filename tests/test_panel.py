"""Panel assembly: hard rules, newest release wins, pivot and derivations, atomic writes."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.core.errors import DataError
from analysis.ingest.panel import check_values, pivot_panel, resolve_releases, validate_panel, write_atomically
from analysis.ingest.readers.common import tidy_frame
from analysis.ingest.sources import Source


def _src(sid: str, release_date: str) -> Source:
    return Source(id=sid, path=f"pub/{sid}.csv", title=sid, publisher="DfE", release=sid,
                  licence="OGL-UK-3.0", url="https://x/" + sid, sha256="0" * 64, bytes=1,
                  release_date=release_date)


MANIFEST = {"old": _src("old", "2024-11"), "new": _src("new", "2025-11")}


def _tidy(rows: list[tuple]) -> pd.DataFrame:
    """rows: (area_code, year, measure, value, suppressed, source_id, row)."""
    df = pd.DataFrame(rows, columns=["area_code", "year", "measure", "value", "suppressed",
                                     "source_id", "row"])
    df["geographic_level"] = "Local authority"
    df["old_la_code"] = ""
    df["area_name"] = ""
    df["token"] = np.where(df["suppressed"], "c", "")
    return tidy_frame([df])


def test_newest_release_wins_and_choice_is_recorded():
    tidy = _tidy([
        ("E09000005", 2022, "cla_31mar", 300.0, False, "old", 5),
        ("E09000005", 2022, "cla_31mar", 310.0, False, "new", 7),
        ("E09000004", 2022, "cla_31mar", 200.0, False, "old", 6),
        ("E09000004", 2022, "cla_31mar", 200.0, False, "new", 8),
        ("E09000004", 2021, "cla_31mar", 190.0, False, "old", 9),
    ])
    resolved, choices = resolve_releases(tidy, MANIFEST)
    got = resolved.set_index(["area_code", "year"])["value"]
    assert got[("E09000005", 2022)] == 310.0
    assert got[("E09000004", 2021)] == 190.0  # only in the old release
    assert len(resolved) == 3
    row = choices.iloc[0]
    assert (row["kept_source"], row["dropped_source"]) == ("new", "old")
    assert (row["n_overlap"], row["n_differ"], row["max_abs_diff"]) == (2, 1, 10.0)


def test_newer_suppression_wins_over_older_value():
    tidy = _tidy([
        ("E09000005", 2022, "rereferral_pct", 20.0, False, "old", 5),
        ("E09000005", 2022, "rereferral_pct", np.nan, True, "new", 7),
    ])
    resolved, _ = resolve_releases(tidy, MANIFEST)
    assert len(resolved) == 1 and resolved["suppressed"].iloc[0] and np.isnan(resolved["value"].iloc[0])


@pytest.mark.parametrize("value,rule", [(101.0, "pct_within_0_100"), (-1.0, "pct_within_0_100")])
def test_percentage_out_of_range_names_file_and_row(value, rule):
    tidy = _tidy([("E09000005", 2022, "rereferral_pct", value, False, "new", 42)])
    with pytest.raises(DataError, match=rule) as err:
        check_values(tidy, MANIFEST)
    assert "pub/new.csv" in str(err.value) and "row 42" in str(err.value)


def test_negative_count_is_an_error():
    tidy = _tidy([("E09000005", 2022, "referrals", -5.0, False, "new", 3)])
    with pytest.raises(DataError, match="count_non_negative"):
        check_values(tidy, MANIFEST)


def test_duplicate_la_year_in_one_file_names_both_rows():
    tidy = _tidy([
        ("E09000005", 2022, "referrals", 5.0, False, "new", 3),
        ("E09000005", 2022, "referrals", 6.0, False, "new", 9),
    ])
    with pytest.raises(DataError, match="duplicate") as err:
        check_values(tidy, MANIFEST)
    assert "rows 3, 9" in str(err.value) and "pub/new.csv" in str(err.value)


def test_pivot_derives_rates_keeps_suppression_and_register_ids():
    tidy = _tidy([
        ("E09000005", 2019, "cin_31mar", 1000.0, False, "new", 2),
        ("E09000005", 2019, "pop_0_17", 80000.0, False, "new", 3),
        ("E09000005", 2019, "cla_31mar", 400.0, False, "new", 4),
        ("E09000005", 2019, "cla_rate_per10k", 55.0, False, "new", 5),  # published, disagrees
        ("E09000005", 2019, "rereferral_pct", np.nan, True, "new", 6),
        ("E09000005", 2018, "cla_31mar", 380.0, False, "new", 7),
        ("E09000005", 2018, "pop_0_17", 80000.0, False, "new", 8),
    ])
    panel = pivot_panel(tidy)
    brent = panel[panel["la_code"] == "E09000005"].set_index("year")
    assert brent.loc[2019, "old_la_code"] == "304" and brent.loc[2019, "la_name"] == "Brent"
    assert brent.loc[2019, "cin_rate_per10k"] == pytest.approx(125.0)
    # One definition in every year (series "derived"): from the counts, published kept as a check
    assert brent.loc[2019, "cla_rate_per10k"] == pytest.approx(50.0)
    assert brent.loc[2019, "cla_rate_per10k_published"] == 55.0
    assert brent.loc[2018, "cla_rate_per10k"] == pytest.approx(47.5)
    assert np.isnan(brent.loc[2019, "rereferral_pct"])
    assert brent.loc[2019, "suppressed"] == "rereferral_pct"
    assert set(panel["year"]) == set(range(2011, 2026))
    assert not panel.duplicated(["la_code", "year"]).any()
    # Boundary-changed LAs are kept and flagged.
    assert panel.loc[panel["la_code"] == "E10000021", "boundary_changed"].all()
    report = validate_panel(panel, tidy)
    bad = report[report["rule"] == "rate_consistent"]
    assert list(bad["measure"]) == ["cla_rate_per10k"] and list(bad["year"]) == [2019]


def test_write_atomically_leaves_old_files_when_a_table_fails(tmp_path):
    (tmp_path / "panel.csv").write_text("old\n")

    class Boom(pd.DataFrame):
        def to_csv(self, *a, **kw):
            raise OSError("disk full")

    with pytest.raises(OSError):
        write_atomically({"measures.csv": pd.DataFrame({"a": [1]}), "panel.csv": Boom({"a": [1]})}, tmp_path)
    assert (tmp_path / "panel.csv").read_text() == "old\n"
    assert not (tmp_path / "measures.csv").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["panel.csv"]
