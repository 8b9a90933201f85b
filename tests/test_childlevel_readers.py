"""Child-level readers, validation, code lists and the synthetic generator.

Counts of the fake files were checked by hand, e.g.
``grep -c ',E4[5-8],' episodes.csv`` (226), ``grep -c ',CUSTOD,' episodes.csv``
(216), ``grep -c ',01/04/2018,' episodes.csv`` (12), ``grep -c '<Child>'
fake_CIN_data.xml`` (332), ``grep -c '<CINdetails>'`` (402),
``grep -c '<CINclosureDate>'`` (252).
"""
from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import pytest

from analysis.childlevel import codes, synthetic
from analysis.childlevel.readers import (
    la_from_name,
    read_903_episodes,
    read_903_header,
    read_cin_census,
    validate_903,
    validate_cin,
)
from analysis.core.errors import DataError
from analysis.core.paths import ROOT

FIX = Path(__file__).parent / "fixtures" / "childlevel"
LA = "E09000005"


def _mirror() -> Path:
    m = os.environ.get("SOS_DATA_MIRROR")
    if not m:
        pytest.skip("format examples need SOS_DATA_MIRROR=../shared/data/sources")
    p = Path(m)
    p = p if p.is_absolute() else ROOT / p
    if not (p / "data-to-insight__csc-validator-be-903").is_dir():
        pytest.skip(f"no format examples under {p}")
    return p


@pytest.fixture(scope="module")
def fake903():
    d = _mirror() / "data-to-insight__csc-validator-be-903" / "tests" / "fake_data"
    return read_903_header(d / "header.csv", 2018, la=LA), read_903_episodes(d / "episodes.csv", 2018, la=LA)


def by(report, rule, field=None):
    r = report[report["rule"] == rule]
    return r if field is None else r[r["field"] == field]


# ------------------------------------------------------------------ SSDA903

def test_fake_903_counts_and_values(fake903):
    h, e = fake903
    assert len(h) == 2675 and h["child"].nunique() == 2675
    assert len(e) == 5050 and e["child"].nunique() == 2123
    first = e.iloc[0]
    assert (first["child"], first["place"], first["rec"], first["row"]) == ("566910", "T2", "X1", 2)
    assert first["decom"] == pd.Timestamp("2016-02-15") and first["dec"] == pd.Timestamp("2017-08-14")
    assert pd.isna(e.iloc[1]["dec"])                    # open episode
    assert int(e["dec"].isna().sum()) == 1413
    assert int(e["place"].isin(["U1", "U2", "U3"]).sum()) == 176 + 183 + 178
    assert (h["la"] == LA).all() and (e["year"] == 2018).all()
    assert str(e["decom"].dtype) == "datetime64[s]" and isinstance(e["place"].dtype, pd.CategoricalDtype)


def test_fake_903_validation_by_year(fake903):
    h, e = fake903
    r = validate_903(h, e)
    # E45-E48 and CUSTOD enter the code lists with the 2019 spec
    assert len(by(r, "code", "REC")) == 226
    assert set(by(r, "code", "REC")["value"]) == {"E45", "E46", "E47", "E48"}
    assert len(by(r, "code", "REASON_PLACE_CHANGE")) == 216
    assert by(r, "code", "MOTHER")["value"].tolist() == ["1.0"]
    assert len(by(r, "after_year_end", "DEC")) == 12
    assert len(by(r, "overlap")) == 72
    assert len(r) == 226 + 216 + 1 + 12 + 72
    r19 = validate_903(h, e.assign(year=2019), year=2019)
    assert by(r19, "code", "REC").empty and by(r19, "code", "REASON_PLACE_CHANGE").empty


def test_small_fixture_reads_clean():
    h = read_903_header(FIX / "header.csv", 2018, la="202")
    e = read_903_episodes(FIX / "episodes.csv", 2018, la="202")
    assert len(h) == 5 and len(e) == 10
    assert e.loc[9, "rec"] == "E41" and e.loc[9, "dec"] == pd.Timestamp("2018-02-15")
    assert validate_903(h, e).empty


def test_planted_errors_reported_by_rule_child_field_row():
    h = read_903_header(FIX / "header.csv", 2018, la="202")
    e = read_903_episodes(FIX / "episodes_planted.csv", 2018, la="202")
    assert len(e) == 5                                   # nothing dropped
    r = validate_903(h, e)
    got = set(zip(r["rule"], r["child"], r["field"], r["row"], r["value"]))
    assert ("code", "566910", "PLACE", 3, "Q9") in got
    assert ("date", "384923", "DECOM", 4, "31/02/2016") in got
    assert ("dec_before_decom", "709901", "DEC", 5, "22/01/2017") in got
    assert ("required", "", "CHILD", 6, "") in got
    assert len(r) == 4, r.to_string()
    assert r["file"].str.endswith("episodes_planted.csv").all()
    assert pd.isna(e.loc[2, "decom"]) and e.loc[2, "decom_unparsed"] == "31/02/2016"


def test_strict_raises_one_line_error_on_first_problem():
    h = read_903_header(FIX / "header.csv", 2018, la="202")
    e = read_903_episodes(FIX / "episodes_planted.csv", 2018, la="202")
    with pytest.raises(DataError) as exc:
        validate_903(h, e, strict=True)
    msg = str(exc.value)
    assert "\n" not in msg
    assert "episodes_planted.csv" in msg and "column 'PLACE'" in msg and "row 3" in msg and "'Q9'" in msg
    assert exc.value.row == 3 and exc.value.column == "PLACE"


def test_missing_column_and_la(tmp_path):
    p = tmp_path / "E08000025_episodes.csv"
    p.write_text("CHILD,DECOM,PLACE\nA1,01/05/2017,U1\n")
    e = read_903_episodes(p, 2018)
    assert e.loc[0, "la"] == "E08000025" and e.loc[0, "place"] == "U1"
    h = pd.DataFrame({"la": ["E08000025"], "year": [2018], "child": ["A1"], "sex": ["1"],
                      "dob": [pd.Timestamp("2010-01-01")], "source_file": ["h.csv"], "row": [2]})
    r = validate_903(h, e)
    assert set(by(r, "missing_column")["field"]) == {"RNE", "LS", "CIN", "PLACE_PROVIDER", "DEC", "REC",
                                                    "REASON_PLACE_CHANGE", "HOME_POST", "PL_POST", "URN"}
    assert (by(r, "missing_column")["row"] == 1).all() and by(r, "required").empty
    bad = tmp_path / "episodes.csv"
    bad.write_text("CHILD,DECOM,RNE\nA1,01/05/2017,S\n")
    with pytest.raises(DataError, match="column 'PLACE'"):
        read_903_episodes(bad, 2018, la="202")
    with pytest.raises(DataError, match="pass la="):
        read_903_episodes(p.rename(tmp_path / "x_episodes.csv"), 2018)
    assert la_from_name("202_903_header_2019.csv") == "202"
    assert la_from_name("903_header_2019.csv") is None


# ------------------------------------------------------------------ CIN census

def test_fake_cin_counts_and_values():
    d = _mirror() / "data-to-insight__csc-validator-be-cin" / "fake_data"
    t = read_cin_census(d / "fake_CIN_data.xml", 2022)
    assert len(t["children"]) == 332 and len(t["referrals"]) == 402
    assert int(t["referrals"]["cin_closure_date"].notna().sum()) == 252
    assert bool(t["referrals"]["referral_nfa"].all())
    assert (t["children"]["la"] == "975").all()
    c0 = t["children"].iloc[0]
    assert (c0["child"], c0["sex"], c0["dob"]) == ("RND000215205141", "1", pd.Timestamp("2019-12-06"))
    assert t["children"]["sex"].value_counts().to_dict() == {"0": 96, "1": 82, "2": 74, "9": 80}
    second = t["referrals"][t["referrals"]["child"] == "RND000824303014"]
    assert second["cin_referral_date"].tolist() == [pd.Timestamp("2013-10-25"), pd.Timestamp("2017-10-22")]
    assert t["assessments"].empty and t["cpp"].empty


def test_cin_fixture_tables_and_validation():
    t = read_cin_census(FIX / "cin_2024.xml")            # year from ReferenceDate 2024-03-31
    a = t["assessments"]
    assert (len(t["children"]), len(t["referrals"]), len(a), len(t["s47"]), len(t["cpp"])) == (2, 2, 2, 1, 1)
    assert a.loc[0, "factors"] == "1C;RB;6B" and a.loc[0, "referral_id"] == t["referrals"].loc[0, "row"]
    assert t["s47"].loc[0, "icpc_date"] == pd.Timestamp("2022-06-17")
    assert t["cpp"].loc[0, "number_of_previous_cpp"] == 10
    assert t["referrals"]["referral_nfa"].tolist() == [False, False]
    r = validate_cin(t)
    got = set(zip(r["rule"], r["child"], r["field"], r["value"], r["row"]))
    assert ("code", "DfEX0000001", "AssessmentFactors", "RB", 41) in got
    assert ("code", "child_fails_assessments", "GenderCurrent", "M", 73) in got
    assert ("end_before_start", "DfEX0000001", "AssessmentAuthorisationDate", "2020-09-19", 41) in got
    assert ("after_year_end", "DfEX0000001", "AssessmentActualStartDate", "2028-04-28", 41) in got
    assert ("after_year_end", "child_fails_assessments", "CINreferralDate", "2024-10-24", 86) in got
    with pytest.raises(DataError, match=r"cin_2024.xml, column 'AssessmentActualStartDate', row 41"):
        validate_cin(t, strict=True)


def test_cin_planted_bad_values(tmp_path):
    text = (FIX / "cin_2024.xml").read_text()
    text = text.replace("<CINreferralDate>2022-10-06", "<CINreferralDate>2022-13-06")
    text = text.replace("<ReferralNFA>0</ReferralNFA>", "<ReferralNFA>maybe</ReferralNFA>")
    text = text.replace("<LAchildID>child_fails_assessments</LAchildID>", "")
    p = tmp_path / "cin.xml"
    p.write_text(text)
    t = read_cin_census(p, 2024)
    assert len(t["referrals"]) == 2
    r = validate_cin(t)
    got = set(zip(r["rule"], r["child"], r["field"], r["value"]))
    assert ("date", "DfEX0000001", "CINreferralDate", "2022-13-06") in got
    assert ("bool", "DfEX0000001", "ReferralNFA", "maybe") in got
    assert ("required", "", "LAchildID", "") in got
    p.write_text(text.replace("</Children>", ""))
    with pytest.raises(DataError, match="malformed XML"):
        read_cin_census(p, 2024)


# ------------------------------------------------------------------ code lists

def test_spec_years_and_fallback():
    assert codes.spec_year(2015) == 2017 and codes.spec_year(2020) == 2020 and codes.spec_year(2031) == 2024
    old, new = codes.code_lists_903(2018, use_spec=False), codes.code_lists_903(2019, use_spec=False)
    assert "E43" in old.codes("Episodes", "REC") and "E45" not in old.codes("Episodes", "REC")
    assert "E45" in new.codes("Episodes", "REC") and "E43" not in new.codes("Episodes", "REC")
    assert {"U1", "U2", "U3", "U4", "U5", "U6"} <= new.codes("Episodes", "PLACE")
    assert not codes.code_lists_cin(2013, use_spec=False).exact
    assert "RC9" in codes.code_lists_cin(2023, use_spec=False).codes("CINdetails", "ReasonForClosure")
    assert "RC9" not in codes.code_lists_cin(2022, use_spec=False).codes("CINdetails", "ReasonForClosure")


def test_snapshot_matches_spec_files():
    m = _mirror()
    folder = m / codes.MIRROR_SUBDIR
    for y in codes.SPEC_YEARS:
        for fn in (codes.code_lists_903, codes.code_lists_cin):
            spec, snap = fn(y), fn(y, use_spec=False)
            assert spec.source.endswith(("yml", "xsd")) and snap.source.startswith("snapshot")
            assert spec.fields == snap.fields, (fn.__name__, y)
    assert folder.is_dir()


# ------------------------------------------------------------------ generator

def test_generator_is_deterministic_and_valid():
    args = dict(n_children=400, las=["E09000005", "E08000001"], years=range(2015, 2019))
    h1, e1 = synthetic.generate_903(**args, seed=7)
    h2, e2 = synthetic.generate_903(**args, seed=7)
    _, e3 = synthetic.generate_903(**args, seed=8)
    pd.testing.assert_frame_equal(e1, e2)
    pd.testing.assert_frame_equal(h1, h2)
    assert not e1["child"].equals(e3["child"]) or not e1["decom"].equals(e3["decom"])
    assert validate_903(h1, e1).empty
    assert set(e1["place"].unique()) & {"U1", "U2", "U3"} and set(e1["place"].unique()) & {"U4", "U5", "U6"}
    assert e1["dec"].isna().any() and e1["dec"].notna().any()
    assert e1.groupby(["la", "year", "child"]).size().max() > 1


def test_generator_plants_kinship_share():
    h, e = synthetic.generate_903(6000, ["A", "B"], range(2016, 2020), seed=3,
                                  kinship_share_by_la={"A": 0.05, "B": 0.40})
    share = e.groupby("la")["place"].apply(lambda s: s.isin(synthetic.KINSHIP).mean())
    assert abs(share["A"] - 0.05) < 0.02 and abs(share["B"] - 0.40) < 0.03


def test_generated_csv_round_trip(tmp_path):
    h, e = synthetic.generate_903(150, ["E06000001"], [2017, 2018], seed=11)
    one = e[e["year"] == 2018].reset_index(drop=True)
    p = tmp_path / "E06000001_2018_episodes.csv"
    synthetic.write_903_csv(one, p)
    back = read_903_episodes(p, 2018)
    for c in ["child", "decom", "dec", "place", "rec", "row", "la", "year"]:
        assert back[c].astype(object).fillna("NA").tolist() == one[c].astype(object).fillna("NA").tolist(), c
