"""Child-level mode's inputs end to end: the DIR/<LA>/<year>/ layout, CIN census XML, strictness.

A small folder of hand-written returns (:func:`_write_returns`) goes through the
data stage's command line (``python -m analysis data --child-level DIR --out
OUT``), and the CIN-derived LA-year measures in ``panel.csv`` are checked
against numbers worked out by hand from the records below (the working is in
the comments). The fast tests run the command in-process with the public build
replaced by a stub panel of every register LA and panel year
(:func:`_public_stub`); the slow one runs it as a subprocess on the real public
build.

The folder (Camden is E09000007, DfE 202; Hartlepool E06000001; Birmingham E08000025, DfE 330)::

    DIR/E09000007/2019/cin.xml            CIN census 2019, ONS-code folder (header LEA 202)
    DIR/202/2019/header.csv, episodes.csv SSDA903 2019, DfE-code folder (same LA)
    DIR/202/2020/cin.xml                  CIN census 2020, DfE-code folder
    DIR/E09000007/2020/header.csv, ...    SSDA903 2020, ONS-code folder
    DIR/E06000001/2020/cin.xml            CIN census without <Header>: LA and year from the folders;
                                          one invalid record (ReferralSource 'ZZ')
    DIR/returns/birmingham_cin.xml        no LA or year folder: <LEA> 330, <ReferenceDate> 2020-03-31

Working days (``[referral date, authorisation date)``, weekends and England's bank
holidays, :func:`analysis.childlevel.outcomes.bank_holidays`, left out) are counted
by hand in the comments; the holidays that fall inside a span are named.
"""
from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.childlevel.synthetic import write_cin_xml
from analysis.core.errors import DataError
from analysis.core.paths import ROOT

CAMDEN, HARTLEPOOL, BIRMINGHAM = "E09000007", "E06000001", "E08000025"
HEADER_COLS = "CHILD,SEX,DOB,ETHNIC,UPN,MOTHER,MC_DOB\n"
EPISODE_COLS = ("CHILD,DECOM,RNE,LS,CIN,PLACE,PLACE_PROVIDER,DEC,REC,REASON_PLACE_CHANGE,"
                "HOME_POST,PL_POST,URN\n")


# --------------------------------------------------------------------------- the returns
def _ref(date, *, closed=None, assessments=(), s47=(), source=None, **kw) -> dict:
    r = dict(cin_referral_date=date, cin_closure_date=closed, reason_for_closure="RC1" if closed else None,
             assessments=list(assessments), s47=list(s47), **kw)
    if source is not None:
        r["referral_source"] = source
    return r


def _assess(start, authorised=None) -> dict:
    return dict(assessment_actual_start_date=start, assessment_authorisation_date=authorised,
                factors=["1C"] if authorised else None)


def _icpc(s47_start, icpc) -> dict:
    return dict(s47_actual_start_date=s47_start, icpc_date=icpc)


def _child(child, *referrals, sex="1", dob="2012-01-01") -> dict:
    return dict(child=child, sex=sex, dob=dob, ethnicity="WBRI", referrals=list(referrals))


def _write_903(folder: Path, header_rows: list[str], episode_rows: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "header.csv").write_text(HEADER_COLS + "".join(r + "\n" for r in header_rows))
    (folder / "episodes.csv").write_text(EPISODE_COLS + "".join(r + "\n" for r in episode_rows))


def _write_returns(root: Path) -> Path:
    """Write the folder of returns described in the module docstring; return it."""
    # ---- Camden, CIN census 2019 (1 April 2018 - 31 March 2019), ONS-code folder
    write_cin_xml([
        # C1: referred 1 May 2018 (Tue), assessed by Tue 8 May: Tue 1, Wed 2, Thu 3, Fri 4
        # (Mon 7 May is the early May bank holiday) = 4 working days.
        # Re-referred Mon 4 Feb 2019 (within 12 months: a re-referral), assessed by Fri 29 Mar:
        # 7 weeks (35) + Mon 25 - Thu 28 Mar (4) = 39 working days.
        _child("C1", _ref("2018-05-01", closed="2018-06-15",
                          assessments=[_assess("2018-05-01", "2018-05-08")]),
               _ref("2019-02-04", closed="2019-03-29",
                    assessments=[_assess("2019-02-04", "2019-03-29")])),
        # C2: referred Mon 11 Mar 2019, still open on 31 March: its assessment is not yet
        # authorised in this return. Conference on 26 Mar 2019.
        _child("C2", _ref("2019-03-11", assessments=[_assess("2019-03-12")],
                          s47=[_icpc("2019-03-12", "2019-03-26")]), sex="2"),
        # C3: referred Mon 1 Oct 2018, assessed by Mon 7 Jan 2019: 14 weeks (70) less
        # 25, 26 Dec and 1 Jan = 67 working days. Two s47 records with the same
        # conference date (29 Oct 2018): one conference.
        _child("C3", _ref("2018-10-01", closed="2019-01-31",
                          assessments=[_assess("2018-10-01", "2019-01-07")],
                          s47=[_icpc("2018-10-15", "2018-10-29"), _icpc("2018-10-16", "2018-10-29")])),
    ], root / CAMDEN / "2019" / "cin.xml", lea="202", year=2019)

    # ---- Camden, CIN census 2020, DfE-code folder
    write_cin_xml([
        # C2 again (open across 31 March 2019: the same referral in both returns, counted once).
        # Assessed by Tue 2 Apr 2019: Mon 11 - Fri 29 Mar (15) + Mon 1 Apr (1) = 16 working days.
        # The conference of 26 Mar 2019 is in this return too: still one conference, in 2019.
        _child("C2", _ref("2019-03-11", closed="2019-07-01",
                          assessments=[_assess("2019-03-12", "2019-04-02")],
                          s47=[_icpc("2019-03-12", "2019-03-26")]), sex="2"),
        # C1 re-referred Mon 2 Sep 2019: the previous referral (4 Feb 2019) is in the 2019
        # return, in the ONS-code folder: a re-referral only if the two folders are one LA.
        # Assessed by Mon 4 Nov 2019: 9 weeks = 45 working days (within 45: the boundary).
        _child("C1", _ref("2019-09-02", closed="2019-11-29",
                          assessments=[_assess("2019-09-02", "2019-11-04")])),
        # C4: referred Mon 3 Jun 2019, assessed by Mon 2 Sep: 13 weeks (65) less the summer
        # bank holiday (26 Aug) = 64 working days. Conference 17 Jun 2019.
        _child("C4", _ref("2019-06-03", closed="2019-12-20",
                          assessments=[_assess("2019-06-03", "2019-09-02")],
                          s47=[_icpc("2019-06-04", "2019-06-17")])),
        # C5: referred Mon 7 Oct 2019, assessed by Mon 14 Oct = 5 working days.
        _child("C5", _ref("2019-10-07", closed="2019-10-31",
                          assessments=[_assess("2019-10-07", "2019-10-14")])),
    ], root / "202" / "2020" / "cin.xml", lea="202", year=2020)

    # ---- Hartlepool, CIN census 2020 with no <Header> at all: LA and year come from the folders
    write_cin_xml([
        # H1: ReferralSource 'ZZ' is not a code (the planted invalid record, kept and counted).
        # Referred Mon 13 May 2019, assessed Mon 20 May = 5 working days. Conference 24 May 2019.
        _child("H1", _ref("2019-05-13", closed="2019-06-28", source="ZZ",
                          assessments=[_assess("2019-05-13", "2019-05-20")],
                          s47=[_icpc("2019-05-14", "2019-05-24")])),
        # H2: referred Mon 1 Apr 2019 (no assessment), re-referred Mon 6 Jan 2020, assessed by
        # Mon 30 Mar 2020: 12 weeks = 60 working days.
        _child("H2", _ref("2019-04-01", closed="2019-04-30"),
               _ref("2020-01-06", assessments=[_assess("2020-01-06", "2020-03-30")])),
    ], root / HARTLEPOOL / "2020" / "cin.xml")

    # ---- Birmingham, CIN census 2020 outside any LA or year folder: from its header
    write_cin_xml([
        _child("B1", _ref("2019-07-01", s47=[_icpc("2019-07-02", "2019-07-15")])),
        # B2: two s47 records with the same conference date: one conference.
        _child("B2", _ref("2019-07-22", s47=[_icpc("2019-07-23", "2019-08-05"),
                                             _icpc("2019-07-24", "2019-08-05")])),
    ], root / "returns" / "birmingham_cin.xml", lea="330", year=2020)

    # ---- Camden SSDA903: 2019 in the DfE-code folder, 2020 in the ONS-code folder
    _write_903(root / "202" / "2019",
               ["C1,1,01/01/2012,WBRI,A123456789012,,", "K1,2,15/07/2010,WBRI,A123456789013,,"],
               ["C1,04/03/2019,S,C2,N1,U1,PR4,,,,,,",      # C1 enters care 4 Mar 2019 (kinship U1)
                "K1,01/06/2018,S,C2,N1,U4,PR1,,,,,,"])     # K1 in care since 1 Jun 2018 (U4)
    _write_903(root / CAMDEN / "2020",
               ["C1,1,01/01/2012,WBRI,A123456789012,,", "K1,2,15/07/2010,WBRI,A123456789013,,",
                "K2,1,03/03/2015,WBRI,A123456789014,,"],
               ["C1,04/03/2019,S,C2,N1,U1,PR4,15/05/2019,E4A,,,,",
                "C1,01/10/2019,S,C1,N1,U2,PR4,,,,,,",      # C1 re-enters care 1 Oct 2019 (U2)
                "K1,01/06/2018,S,C2,N1,U4,PR1,,,,,,",
                "K2,01/02/2020,S,C1,N1,U5,PR1,,,,,,"])
    return root


#: LA-year values worked out by hand from the records above (see the comments there).
NAN = float("nan")
# Censoring. Camden's returns are 2019 and 2020, so its records cover 1 April 2018 to
# 31 March 2020; Hartlepool's and Birmingham's (2020 only) 1 April 2019 to 31 March 2020.
# A referral dated within 12 months of the first day covered has an unknown history (it
# may follow a referral before the data): it counts as a referral but not in the
# re-referral rate, nor as a re-referral in the escalation rate. A re-referral whose
# 12-month escalation window ends after the last day covered is left out of that rate.
EXPECTED = {
    # Camden 2019: referrals C1 1 May 2018, C1 4 Feb 2019 (re-referral), C2 11 Mar 2019, C3 1 Oct 2018;
    # all are within 12 months of 1 April 2018: no re-referral rate.
    (CAMDEN, 2019): dict(referrals_child=4, rereferrals_child=NAN, rereferral_12m_pct_child=NAN,
                         # assessments authorised in the year: 4 (C1), 39 (C1), 67 (C3) days
                         assessments_completed_child=3, assessments_45wd_pct_child=200 / 3,
                         assessment_days_median=39.0,
                         icpc_count_child=2,               # C2 26 Mar 2019, C3 29 Oct 2018
                         # C1's referral of 4 Feb 2019 follows one of 1 May 2018, but both are
                         # within 12 months of the start of the records: not in the base
                         rereferral_escalation_pct=NAN,
                         # 31 March 2019: C1 in U1, K1 in U4
                         cla_kinship_pct=50.0),
    # Camden 2020: referrals C1 2 Sep 2019 (re-referral across the two folders), C4, C5
    # (C2's referral of 11 Mar 2019 is year 2019, counted there once); all after 1 April
    # 2019, so all have a known history.
    (CAMDEN, 2020): dict(referrals_child=3, rereferrals_child=1, rereferral_12m_pct_child=100 / 3,
                         # 16 (C2), 45 (C1), 64 (C4), 5 (C5) days: 3 of 4 within 45
                         assessments_completed_child=4, assessments_45wd_pct_child=75.0,
                         assessment_days_median=30.5,
                         icpc_count_child=1,               # C4 17 Jun 2019
                         # C1's re-referral of 2 Sep 2019 is followed by its entry to care on
                         # 1 Oct 2019, but its window runs to 2 Sep 2020, after the records end
                         rereferral_escalation_pct=NAN,
                         # 31 March 2020: C1 U2, K1 U4, K2 U5
                         cla_kinship_pct=100 / 3),
    # Hartlepool 2020: referrals H1 13 May 2019 (invalid ReferralSource, still counted), H2 1 Apr
    # 2019, H2 6 Jan 2020 (re-referral), all within 12 months of 1 April 2019: no rate.
    # Assessments 5 and 60 days; conference H1 24 May 2019.
    (HARTLEPOOL, 2020): dict(referrals_child=3, rereferrals_child=NAN, rereferral_12m_pct_child=NAN,
                             assessments_completed_child=2, assessments_45wd_pct_child=50.0,
                             assessment_days_median=32.5, icpc_count_child=1,
                             rereferral_escalation_pct=NAN),
    # Birmingham 2020 (LA from <LEA> 330): two referrals, both of unknown history (no rate);
    # two conferences.
    (BIRMINGHAM, 2020): dict(referrals_child=2, rereferrals_child=NAN, rereferral_12m_pct_child=NAN,
                             icpc_count_child=2),
}


# --------------------------------------------------------------------------- running the stage
def _public_stub():
    """A public build standing in for :func:`analysis.ingest.panel.build_panel`: every register LA
    in every panel year, with one published measure column."""
    from analysis.ingest.geography import la_register
    from analysis.ingest.panel import PANEL_YEARS, PanelBuild

    reg = la_register()
    panel = pd.DataFrame([(c, o, n, y) for c, o, n in zip(reg["la_code"], reg["old_la_code"],
                                                          reg["la_name"]) for y in PANEL_YEARS],
                         columns=["la_code", "old_la_code", "la_name", "year"])
    panel["assessments_45wd_pct"] = np.nan
    measures = pd.DataFrame([dict(name="assessments_45wd_pct", label="Assessments within 45 days",
                                  unit="percent", kind="pct", definition="published", source_ids="cin_c1",
                                  first_year=None, last_year=None, n_years=0)])
    empty = pd.DataFrame()
    build = PanelBuild(panel=panel, long=empty, areas=empty, measures=measures, coverage=empty,
                       releases=empty, validation=empty)
    build.files = {"panel.csv": panel, "measures.csv": measures}
    return build


def _stub_public(mp, calls: list | None = None) -> None:
    """Replace the public build (and the manifest check of the build key) by the stub."""
    def fake_build(progress=False, **kw):
        if calls is not None:
            calls.append("build_panel")
        return _public_stub()

    mp.setattr("analysis.ingest.panel.build_panel", fake_build)
    mp.setattr("analysis.run.build.verified_manifest", lambda: [])


def _cli(*args: str) -> int:
    from analysis.cli.commands import main

    return main(["data", *args])


@pytest.fixture(scope="module")
def returns(tmp_path_factory) -> Path:
    return _write_returns(tmp_path_factory.mktemp("childlevel") / "DIR")


@pytest.fixture(scope="module")
def built(returns, tmp_path_factory):
    """``python -m analysis data --child-level DIR --out OUT`` in-process, public build stubbed."""
    out = tmp_path_factory.mktemp("processed")
    mp = pytest.MonkeyPatch()
    try:
        mp.delenv("SOS_CHILDLEVEL_DIR", raising=False)
        _stub_public(mp)
        assert _cli("--child-level", str(returns), "--out", str(out)) == 0
    finally:
        mp.undo()
    return out


def _panel_values(out: Path) -> pd.DataFrame:
    return pd.read_csv(out / "panel.csv", dtype={"old_la_code": str}).set_index(["la_code", "year"])


def _check_expected(panel: pd.DataFrame) -> None:
    for (la, year), values in EXPECTED.items():
        row = panel.loc[(la, year)]
        for measure, value in values.items():
            # panel.csv holds 10 significant digits; a measure no LA-year has is no column
            got = row[measure] if measure in row.index else float("nan")
            assert got == pytest.approx(value, abs=1e-7, nan_ok=True), (la, year, measure, got)


# --------------------------------------------------------------------------- end to end
def test_cin_measures_in_the_panel_equal_the_hand_counts(built):
    panel = _panel_values(built)
    _check_expected(panel)
    # Nothing under the DfE code: the 202 folders are Camden's rows.
    assert "202" not in set(panel.index.get_level_values(0).astype(str))
    # LA-years without returns have no child-level value.
    assert np.isnan(panel.loc[(CAMDEN, 2021), "referrals_child"])
    assert np.isnan(panel.loc[(HARTLEPOOL, 2019), "icpc_count_child"])
    # The public column is untouched and the definitions are appended.
    assert panel["assessments_45wd_pct"].isna().all()
    measures = pd.read_csv(built / "measures.csv").set_index("name")
    assert measures.loc["rereferral_12m_pct_child", "source_ids"] == "child_level"


def test_validation_lists_the_invalid_cin_record_and_keeps_it(built, returns):
    v = pd.read_csv(built / "childlevel_validation.csv", dtype=str, keep_default_na=False)
    assert list(v.columns[:3]) == ["rule", "child", "field"]
    assert len(v) == 1, v.to_string()                   # every other record is valid
    r = v.iloc[0]
    assert (r["rule"], r["child"], r["field"], r["value"]) == ("code", "H1", "ReferralSource", "ZZ")
    # LA and year from the folders of a file with no <Header>
    assert (r["la"], r["year"]) == (HARTLEPOOL, "2020")
    assert Path(r["file"]) == returns / HARTLEPOOL / "2020" / "cin.xml"
    xml = (returns / HARTLEPOOL / "2020" / "cin.xml").read_text().splitlines()
    assert xml[int(r["row"]) - 1].strip() == "<CINdetails>"       # the row is the record's line
    # not dropped: H1's referral and assessment are among Hartlepool's 3 referrals and 2
    # assessments (see EXPECTED; checked by the test above)
    panel = _panel_values(built)
    assert panel.loc[(HARTLEPOOL, 2020), "referrals_child"] == 3
    assert panel.loc[(HARTLEPOOL, 2020), "assessments_completed_child"] == 2


def test_la_and_year_come_from_folders_else_from_the_header(returns):
    from analysis.childlevel.pipeline import read_inputs

    _, episodes, cin = read_inputs(returns)
    children = cin["children"]
    got = {(Path(f).relative_to(returns).as_posix(), la, int(y))
           for f, la, y in children[["source_file", "la", "year"]].drop_duplicates().itertuples(index=False)}
    assert got == {(f"{CAMDEN}/2019/cin.xml", CAMDEN, 2019), ("202/2020/cin.xml", CAMDEN, 2020),
                   (f"{HARTLEPOOL}/2020/cin.xml", HARTLEPOOL, 2020),
                   ("returns/birmingham_cin.xml", BIRMINGHAM, 2020)}
    assert set(zip(episodes["la"], episodes["year"])) == {(CAMDEN, 2019), (CAMDEN, 2020)}
    # every CIN table carries the LA (the ONS code), so records of one child link across files
    for name in ("referrals", "assessments", "s47", "cpp", "cin_plans"):
        assert set(cin[name]["la"].dropna()) <= {CAMDEN, HARTLEPOOL, BIRMINGHAM}, name
    assert cin["cin_details"] is cin["referrals"]


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("SOS_DATA_MIRROR") and not (ROOT / "data" / "raw").exists(),
                    reason="real public data not available: set SOS_DATA_MIRROR")
def test_command_line_on_the_real_public_build(returns, tmp_path):
    """The same folder through ``python -m analysis data`` in a subprocess, real public panel."""
    env = {k: v for k, v in os.environ.items() if k != "SOS_CHILDLEVEL_DIR"}
    r = subprocess.run([sys.executable, "-m", "analysis", "data", "--child-level", str(returns),
                        "--out", str(tmp_path)], capture_output=True, text=True, env=env, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    panel = _panel_values(tmp_path)
    _check_expected(panel)
    assert panel.loc[(CAMDEN, 2019), "la_name"] == "Camden"
    published = pd.read_csv(tmp_path / "childlevel_published.csv", dtype=str)
    assert {"rereferral_12m_pct_child", "assessments_45wd_pct_child"} <= set(published["measure"])


# --------------------------------------------------------------------------- layout robustness
def _cin(path: Path, lea: str | None = "202", year: int | None = 2019, child: str = "X1") -> Path:
    write_cin_xml([_child(child, _ref(f"{(year or 2019) - 1}-06-03"))], path, lea=lea, year=year)
    return path


def _read(folder: Path):
    from analysis.childlevel.pipeline import read_inputs

    return read_inputs(folder)


def test_two_returns_for_the_same_la_year_and_table_name_both_files(tmp_path):
    a = _cin(tmp_path / CAMDEN / "2019" / "cin.xml")
    b = _cin(tmp_path / "202" / "2019" / "cin.xml", child="X2")    # same LA under its DfE code
    with pytest.raises(DataError) as exc:
        _read(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and "second CIN census return for E09000007 2019" in msg
    assert str(a) in msg and str(b) in msg


def test_a_combined_903_file_and_an_la_folder_for_the_same_la_year(tmp_path):
    _write_903(tmp_path / "202" / "2019", ["C1,1,01/01/2012,WBRI,A123456789012,,"],
               ["C1,04/03/2019,S,C2,N1,U1,PR4,,,,,,"])
    combined = tmp_path / "903"
    combined.mkdir()
    (combined / "episodes.csv").write_text(
        "LA,YEAR," + EPISODE_COLS + "E09000001,2019,Z1,04/03/2019,S,C2,N1,U1,PR4,,,,,,\n"
        f"{CAMDEN},2019,C1,04/03/2019,S,C2,N1,U1,PR4,,,,,,\n")
    with pytest.raises(DataError, match=r"second SSDA903 episodes return for E09000007 2019") as exc:
        _read(tmp_path)
    assert str(tmp_path / "202" / "2019" / "episodes.csv") in str(exc.value)
    assert str(combined / "episodes.csv") in str(exc.value)


@pytest.mark.parametrize("code", ["E09000099", "999"])
def test_an_la_folder_not_in_the_register(tmp_path, code):
    f = _cin(tmp_path / code / "2019" / "cin.xml")
    with pytest.raises(DataError) as exc:
        _read(tmp_path)
    msg = str(exc.value)
    assert "\n" not in msg and str(f) in msg and repr(code) in msg and "LA register" in msg


def test_la_codes_not_in_the_register_from_a_column_or_the_lea_header(tmp_path):
    f = _cin(tmp_path / "returns" / "cin.xml", lea="999")
    with pytest.raises(DataError, match=r"LA code '999' \(<LEA> in the header\) is not in the LA register"):
        _read(tmp_path)
    f.unlink()
    (tmp_path / "903").mkdir()
    (tmp_path / "903" / "header.csv").write_text("LA,YEAR," + HEADER_COLS +
                                                 f"{CAMDEN},2019,C1,1,01/01/2012,WBRI,A1,,\n"
                                                 "E09999999,2019,C2,1,01/01/2012,WBRI,A2,,\n")
    with pytest.raises(DataError, match=r"903/header.csv, column 'LA', row 3: LA code 'E09999999'"):
        _read(tmp_path)


def test_no_la_anywhere(tmp_path):
    _cin(tmp_path / "returns" / "2019" / "cin.xml", lea=None, year=None)
    with pytest.raises(DataError, match=r"cin.xml: no LA for this CIN census file"):
        _read(tmp_path)


def test_folders_naming_two_las_or_two_years(tmp_path):
    _cin(tmp_path / CAMDEN / HARTLEPOOL / "2019" / "cin.xml")
    with pytest.raises(DataError, match=r"the folders name two LAs \(E09000007, E06000001\)"):
        _read(tmp_path)
    (tmp_path / CAMDEN / HARTLEPOOL / "2019" / "cin.xml").unlink()
    _cin(tmp_path / CAMDEN / "2019" / "2020" / "cin.xml")
    with pytest.raises(DataError, match=r"the folders name two years \(2019, 2020\)"):
        _read(tmp_path)


def test_the_same_la_under_both_codes_is_one_la(tmp_path):
    # also the former ONS code of an LA whose code changed (Buckinghamshire E10000002)
    _cin(tmp_path / "202" / "2019" / "cin.xml")
    _cin(tmp_path / CAMDEN / "2020" / "cin.xml", year=2020)
    _cin(tmp_path / "E10000002" / "2019" / "cin.xml", lea=None)
    _, _, cin = _read(tmp_path)
    assert set(cin["referrals"]["la"]) == {CAMDEN, "E06000060"}


def test_a_year_folder_after_the_panel(tmp_path):
    from analysis.ingest.panel import PANEL_YEARS

    late = max(PANEL_YEARS) + 1
    f = _cin(tmp_path / CAMDEN / str(late) / "cin.xml", year=late)
    with pytest.raises(DataError) as exc:
        _read(tmp_path)
    msg = str(exc.value)
    assert str(f) in msg and f"reporting year {late} (from the folder name) is after the panel's " \
        f"last year {max(PANEL_YEARS)}" in msg


def test_a_year_folder_before_the_panel_is_history(tmp_path):
    """Documented: a return for a year before the panel is read, so its referrals count as
    the history of later ones; its own LA-year measures find no panel row."""
    from analysis.childlevel.aggregate import tidy_measures
    from analysis.ingest.panel import PANEL_YEARS

    first = min(PANEL_YEARS)
    write_cin_xml([_child("X1", _ref(f"{first - 1}-02-01"))], tmp_path / CAMDEN / str(first - 1) / "cin.xml",
                  lea="202", year=first - 1)
    write_cin_xml([_child("X1", _ref(f"{first - 1}-06-01"))], tmp_path / CAMDEN / str(first) / "cin.xml",
                  lea="202", year=first)
    _, _, cin = _read(tmp_path)
    tidy = tidy_measures(None, cin).set_index(["measure", "la_code", "year"])["value"]
    assert tidy[("rereferral_12m_pct_child", CAMDEN, first)] == 100.0


def test_a_903_file_without_la_or_year(tmp_path):
    _write_903(tmp_path / "returns", ["C1,1,01/01/2012,WBRI,A1,,"], ["C1,04/03/2019,S,C2,N1,U1,PR4,,,,,,"])
    with pytest.raises(DataError, match=r"returns/episodes.csv: no LA for this SSDA903 file: put it under "
                                        r"DIR/<LA code>/<year>/"):
        _read(tmp_path)
    for name in ("header.csv", "episodes.csv"):
        (tmp_path / "returns" / name).rename(tmp_path / "returns" / f"{CAMDEN}_{name}")
    with pytest.raises(DataError, match=r"no reporting year for this SSDA903 file"):
        _read(tmp_path)


def test_a_column_missing_from_one_of_several_903_files_is_reported(tmp_path):
    """pd.concat drops the readers' per-file attrs; the stacked tables keep them."""
    from analysis.childlevel.pipeline import validate_inputs

    for year in (2019, 2020):
        _write_903(tmp_path / CAMDEN / str(year), ["C1,1,01/01/2012,WBRI,A123456789012,,"],
                   ["C1,04/03/2019,S,C2,N1,U1,PR4,,,,,,"])
    f = tmp_path / CAMDEN / "2019" / "episodes.csv"
    f.write_text(f.read_text().replace(",RNE,", ",").replace(",S,C2,", ",C2,")
                 .replace(",URN\n", "\n").replace(",,,,,,\n", ",,,,,\n"))
    h, e, cin = _read(tmp_path)
    v = validate_inputs(h, e, cin)
    got = set(zip(v["rule"], v["field"], v["file"], v["row"]))
    assert got == {("missing_column", "RNE", str(f), 1), ("missing_column", "URN", str(f), 1)}, v.to_string()


# --------------------------------------------------------------------------- strict
@pytest.fixture
def bad_folder(tmp_path) -> Path:
    folder = _write_returns(tmp_path / "DIR")
    # one invalid 903 record too, in a later file than the CIN one: the first in file order fails
    (folder / CAMDEN / "2020" / "episodes.csv").write_text(
        (folder / CAMDEN / "2020" / "episodes.csv").read_text().replace("K2,01/02/2020,S,C1,N1,U5",
                                                                        "K2,01/02/2020,S,C1,N1,QQ"))
    return folder


def _existing_out(tmp_path: Path) -> tuple[Path, dict[str, bytes]]:
    out = tmp_path / "processed"
    out.mkdir()
    for name, text in {"panel.csv": "la_code,year\nE09000007,2019\n", "measures.csv": "name\n",
                       "coverage.csv": "measure\n", ".key": '{"key": "old"}'}.items():
        (out / name).write_text(text)
    return out, {p.name: p.read_bytes() for p in out.iterdir()}


def test_strict_fails_before_the_public_build_with_one_line(bad_folder, tmp_path, monkeypatch, capsys):
    calls: list[str] = []
    _stub_public(monkeypatch, calls)
    monkeypatch.delenv("SOS_CHILDLEVEL_DIR", raising=False)
    out, before = _existing_out(tmp_path)
    t0 = time.perf_counter()
    rc = _cli("--child-level", str(bad_folder), "--strict", "--out", str(out))
    elapsed = time.perf_counter() - t0
    err = capsys.readouterr().err
    assert rc == 2 and calls == [], (rc, calls, err)
    assert err.count("\n") == 1 and "Traceback" not in err
    # the first problem in file order: 202/2020/cin.xml < E06000001/... < E09000007/2020/episodes.csv
    assert f"{HARTLEPOOL}/2020/cin.xml, column 'ReferralSource', row " in err
    assert "'ZZ'" in err and "(child 'H1')" in err and "[rule code]" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before      # nothing replaced
    assert elapsed < 10, elapsed
    # without --strict the same folder builds, both problems listed, nothing dropped
    assert _cli("--child-level", str(bad_folder), "--out", str(out)) == 0
    v = pd.read_csv(out / "childlevel_validation.csv", dtype=str, keep_default_na=False)
    assert set(zip(v["rule"], v["child"], v["field"], v["value"])) == {
        ("code", "H1", "ReferralSource", "ZZ"), ("code", "K2", "PLACE", "QQ")}
    assert calls == ["build_panel"]


def test_layout_errors_also_stop_before_the_public_build(tmp_path, monkeypatch, capsys):
    calls: list[str] = []
    _stub_public(monkeypatch, calls)
    _cin(tmp_path / "DIR" / "E09000099" / "2019" / "cin.xml")
    out, before = _existing_out(tmp_path)
    assert _cli("--child-level", str(tmp_path / "DIR"), "--out", str(out)) == 2
    err = capsys.readouterr().err
    assert calls == [] and err.count("\n") == 1 and "'E09000099'" in err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.skipif(not os.environ.get("SOS_DATA_MIRROR") and not (ROOT / "data" / "raw").exists(),
                    reason="the build key verifies the public data: set SOS_DATA_MIRROR")
def test_strict_command_line_exits_2_in_seconds(bad_folder, tmp_path):
    """The real command in a subprocess (no stub): the time is printed (pytest -s) and bounded
    generously; the public build alone takes longer than the bound."""
    out, before = _existing_out(tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "SOS_CHILDLEVEL_DIR"}
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "analysis", "data", "--strict", "--child-level",
                        str(bad_folder), "--out", str(out)], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    elapsed = time.perf_counter() - t0
    print(f"\nstrict failure in {elapsed:.2f} s: {r.stderr.strip()}")
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "[rule code]" in r.stderr, r.stderr
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert elapsed < 10, elapsed
