"""The disclosure gate on what the book reads in child-level mode (analysis.childlevel.pipeline.publishable_results).

Small hand-made processed/ and results/ folders: each check fails on its own
disclosive table, and passes on a protected one. Public mode (no
``childlevel_published.csv``) is never checked.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.childlevel.pipeline import mask_suppressed, publishable_results, results_problems, withheld_marks
from analysis.core.errors import DataError

PUB = pd.DataFrame({
    "measure": ["poc_kinship_pct"] * 3,
    "la_code": ["E09000005", "E09000005", "E06000023"],
    "year": ["2019", "2020", "2019"],
    "numerator": ["20", "c", "0"],
    "rest": ["80", "c", "40"],
    "denominator": ["100", "120", "40"],
    "value": ["20.0", "c", "0.0"],
})


def _folders(tmp_path, published=PUB, trends=None):
    proc, res = tmp_path / "processed", tmp_path / "results"
    proc.mkdir()
    res.mkdir()
    published.to_csv(proc / "childlevel_published.csv", index=False)
    pd.DataFrame({"la_code": ["E09000005", "E09000005", "E06000023", "E06000023"],
                  "year": [2019, 2020, 2019, 2020],
                  "other_pct": [1.0, 2.0, 3.0, 4.0],
                  "poc_kinship_pct": [20.0, 5.0, 0.0, 7.5]}).to_csv(proc / "panel.csv", index=False)
    pd.DataFrame({"name": ["other_pct", "poc_kinship_pct"], "source_ids": ["lait", "child_level"]}
                 ).to_csv(proc / "measures.csv", index=False)
    (trends if trends is not None else pd.DataFrame(
        {"year": [2019], "group": ["pilots"], "mean": [12.5], "n_las": [10], "outcome": ["kinship_care"]})
     ).to_csv(res / "trends.csv", index=False)
    pd.DataFrame({"event_time": [-1], "estimate": [0.1], "n_obs": [3], "outcome": ["kinship_care"]}
                 ).to_csv(res / "event_study.csv", index=False)
    return res, proc


def test_protected_tables_pass(tmp_path):
    res, proc = _folders(tmp_path)
    assert results_problems(res, proc) == []
    publishable_results(res, proc)


def test_public_mode_is_not_checked(tmp_path):
    res, proc = _folders(tmp_path)
    (proc / "childlevel_published.csv").unlink()
    pd.DataFrame({"numerator": [3]}).to_csv(res / "anything.csv", index=False)
    assert results_problems(res, proc) == []


def test_small_count_in_published_table_fails(tmp_path):
    bad = PUB.copy()
    bad.loc[0, ["numerator", "rest"]] = ["4", "96"]
    res, proc = _folders(tmp_path, published=bad)
    with pytest.raises(DataError, match="numerator 4 of poc_kinship_pct for E09000005 2019"):
        publishable_results(res, proc)


def test_rate_shown_behind_a_withheld_count_fails(tmp_path):
    bad = PUB.copy()
    bad.loc[1, "value"] = "4.2"
    res, proc = _folders(tmp_path, published=bad)
    assert any("is shown though a count behind it is withheld" in p for p in results_problems(res, proc))


def test_child_counts_in_results_fail_la_counts_pass(tmp_path):
    res, proc = _folders(tmp_path)
    pd.DataFrame({"outcome": ["kinship_care"], "n_treated": [3], "numerator": [7]}
                 ).to_csv(res / "extra.csv", index=False)
    problems = results_problems(res, proc)
    assert len(problems) == 1 and "extra.csv: column numerator" in problems[0]


def test_single_la_trend_of_a_child_level_outcome_fails(tmp_path):
    trends = pd.DataFrame({"year": [2019, 2019], "group": ["pilots", "pilots"], "mean": [20.0, 3.0],
                           "n_las": [1, 1], "outcome": ["kinship_care", "sgo_exits"]})
    res, proc = _folders(tmp_path, trends=trends)
    problems = results_problems(res, proc)
    assert len(problems) == 1 and "over one LA" in problems[0] and "kinship_care" in problems[0]


def test_panel_view_withholds_suppressed_rates(tmp_path):
    from analysis.book.chapters import processed

    res, proc = _folders(tmp_path)
    raw = pd.read_csv(proc / "panel.csv", dtype={"la_code": str})
    view = processed("panel", folder=proc)
    k = view.set_index(["la_code", "year"])["poc_kinship_pct"]
    assert k[("E09000005", 2019)] == 20.0 and k[("E06000023", 2019)] == 0.0
    assert np.isnan(k[("E09000005", 2020)])          # its count is suppressed: c
    assert np.isnan(k[("E06000023", 2020)])          # not in the published file at all
    assert view["other_pct"].tolist() == raw["other_pct"].tolist()   # public measures untouched
    assert withheld_marks(view, PUB.astype(str), "poc_kinship_pct").tolist() == ["", "c", "", ""]
    assert mask_suppressed(raw, None) is raw


def test_profile_figure_marks_withheld_years(tmp_path, monkeypatch):
    import analysis.book.appendices as appendices
    import analysis.book.chapters as report
    from analysis.book.appendices import _withheld_years

    res, proc = _folders(tmp_path)
    monkeypatch.setattr(report, "PROCESSED_DIR", proc)
    monkeypatch.setattr(appendices, "PROCESSED_DIR", proc)
    own = pd.read_csv(proc / "panel.csv", dtype={"la_code": str}).query("la_code == 'E09000005'")
    assert _withheld_years(own, "poc_kinship_pct") == [2020]
    assert _withheld_years(own, "other_pct") == []
