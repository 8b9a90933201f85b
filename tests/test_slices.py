"""Per-outcome and per-measure slices (:mod:`analysis.run.slices`) and the chapters' reads of them.

A findings chapter reads its own outcomes' rows and its measure's column, so that
a revised figure of one outcome re-executes only the chapters that show it. The
slices must be exactly what the book would get from the whole tables.
"""
from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from analysis.book import chapters as report
from analysis.book.chapter_reads import parse_reads
from analysis.run import slices

ROOT = Path(__file__).resolve().parent.parent


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.integration
def test_outcome_slices_are_the_rows_of_the_whole_tables(real_results):
    outcomes = report.estimated_outcomes()
    assert len(outcomes) == 12
    n = 0
    for o in outcomes:
        for name in slices.OUTCOME_TABLES:
            assert slices.outcome_slice_path(real_results, o, name).exists()
            whole = report.result(name)
            # same rows, index, values and column types as filtering the whole table
            pd.testing.assert_frame_equal(report.outcome_rows(name, o), whole[whole["outcome"] == o])
            n += 1
        assert report.evidence_row(o).equals(report.result("evidence").set_index("outcome").loc[o])
    assert n == 12 * len(slices.OUTCOME_TABLES)


@pytest.mark.integration
def test_measure_slices_are_the_columns_of_the_panel(real_panel):
    panel = report.processed("panel", real_panel)
    measures = [o.measure for o in report.design().outcomes]
    for m in measures:
        assert slices.measure_slice_path(real_panel, m).exists()
        pd.testing.assert_frame_equal(report.measure_rows(m, real_panel), panel[["la_code", "year", m]])


@pytest.mark.integration
def test_a_revised_outcome_changes_only_its_own_slices(real_results, tmp_path):
    folder = tmp_path / "results"
    shutil.copytree(real_results, folder)
    before = {p.relative_to(folder): _digest(p) for p in (folder / slices.OUTCOME_SLICES).rglob("*.pkl")}
    est = pd.read_csv(folder / "estimates.csv")
    row = est.index[est["outcome"] == "rereferrals"][0]
    est.loc[row, "estimate"] += 0.5  # one revised number
    est.to_csv(folder / "estimates.csv", index=False, float_format="%.10g", lineterminator="\n")
    slices.write_outcome_slices(folder)
    after = {p.relative_to(folder): _digest(p) for p in (folder / slices.OUTCOME_SLICES).rglob("*.pkl")}
    assert after.keys() == before.keys()
    changed = sorted(str(k) for k in after if after[k] != before[k])
    assert changed == [f"{slices.OUTCOME_SLICES}/rereferrals/estimates.pkl"]


def test_slices_of_a_folder_are_replaced_whole(tmp_path):
    pd.DataFrame({"outcome": ["a", "b", "a"], "x": [1.0, 2.0, None]}).to_csv(tmp_path / "estimates.csv",
                                                                            index=False)
    slices.write_outcome_slices(tmp_path)
    assert sorted(p.parent.name for p in (tmp_path / slices.OUTCOME_SLICES).rglob("*.pkl")) == ["a", "b"]
    a = slices.read_slice(slices.outcome_slice_path(tmp_path, "a", "estimates"))
    assert list(a.index) == [0, 2] and a["x"].dtype == float
    pd.DataFrame({"outcome": ["c"], "x": [3.0]}).to_csv(tmp_path / "estimates.csv", index=False)
    slices.write_outcome_slices(tmp_path)
    # an outcome gone from the results leaves no slice behind, and no temporary folder is left
    assert sorted(p.parent.name for p in (tmp_path / slices.OUTCOME_SLICES).rglob("*.pkl")) == ["c"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [slices.OUTCOME_SLICES, "estimates.csv"]
    assert slices.read_slice(tmp_path / "none.pkl") is None


@pytest.mark.integration
def test_a_findings_chapter_reads_only_its_own_outcome(real_results, real_panel, tmp_path):
    """What the chapter's key covers: its outcome's slices, not the whole tables (recorded as a kernel does)."""
    reads = tmp_path / "reads.txt"
    code = textwrap.dedent(f"""
        from analysis.book.chapter_reads import record_reads
        record_reads({str(reads)!r})
        from analysis.book import chapters as report
        f = report.Findings("rereferrals")
        f.sections(); f.headline_table(); f.robustness_table(); f.trend_figure(); f.event_study_figure()
        f.balance_figure(); f.power_figure(); f.honest_figure()
        report.child_level_section("rereferrals_after_nfa", "x"); report.child_level_verdict("rereferrals_after_nfa")
    """)
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
    files = {Path(p) for p in parse_reads(reads.read_text())["files"]}
    rel = {str(p.relative_to(real_results)) for p in files if p.is_relative_to(real_results)}
    assert rel == {f"{slices.OUTCOME_SLICES}/rereferrals/{t}.pkl" for t in slices.OUTCOME_TABLES} | {"outcomes.csv"}
    proc = {str(p.relative_to(real_panel)) for p in files if p.is_relative_to(real_panel)}
    assert proc == {f"{slices.MEASURE_SLICES}/rereferral_pct.pkl"}
