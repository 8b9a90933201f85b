"""Child-level outcome definitions on small hand-made records, answers worked out here."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from dateutil.easter import easter

from analysis.childlevel import aggregate as A
from analysis.childlevel import outcomes as O
from analysis.core.errors import DataError
from analysis.ingest.panel import DEFINITIONS_PATH

FIXTURES = Path(__file__).parent / "fixtures"

T = pd.Timestamp
LA, LB = "E09000005", "E06000023"


def episodes(rows):
    """rows: (la, child, decom, dec, rne, ls, place, rec)."""
    df = pd.DataFrame(rows, columns=["la", "child", "decom", "dec", "rne", "ls", "place", "rec"])
    df["decom"] = pd.to_datetime(df["decom"])
    df["dec"] = pd.to_datetime(df["dec"])
    return df


def referrals(rows):
    """rows: (la, child, referral_id, referral date, closure date, nfa)."""
    df = pd.DataFrame(rows, columns=["la", "child", "referral_id", "cin_referral_date",
                                     "cin_closure_date", "referral_nfa"])
    df["reason_for_closure"] = None
    for c in ("cin_referral_date", "cin_closure_date"):
        df[c] = pd.to_datetime(df[c])
    return df


# --------------------------------------------------------------------------- bank holidays

#: The list typed by hand from gov.uk (2012-2026) that the analysis used before the
#: ``holidays`` package: an independent source to check the package against.
HAND_TYPED = FIXTURES / "bank_holidays_england_2012_2026.csv"


def test_bank_holidays_follow_the_rules_and_known_dates():
    hol = set(O.bank_holidays(years=range(2012, 2031)).dt.date)
    assert all(d.weekday() < 5 for d in hol)
    assert {d.year for d in hol} == set(range(2012, 2031))
    for y in range(2012, 2031):
        e = easter(y)
        assert e - dt.timedelta(days=2) in hol and e + dt.timedelta(days=1) in hol, y
        # last Monday in August
        aug = max(dt.date(y, 8, d) for d in range(25, 32) if dt.date(y, 8, d).weekday() == 0)
        assert aug in hol
        # Christmas and Boxing Day, or their substitutes
        xmas = [d for d in hol if d.year == y and d.month == 12]
        assert len(xmas) == 2 and all(d.day in (25, 26, 27, 28) for d in xmas)
    assert dt.date(2019, 4, 22) in hol                     # Easter Monday 2019
    assert dt.date(2019, 12, 25) in hol and dt.date(2015, 12, 28) in hol


def test_one_off_bank_holidays_and_substitute_days():
    hol = set(O.bank_holidays(years=range(2011, 2024)).dt.date)
    assert dt.date(2011, 4, 29) in hol                                       # royal wedding
    assert {dt.date(2012, 6, 4), dt.date(2012, 6, 5)} <= hol                 # Diamond Jubilee
    assert dt.date(2012, 5, 28) not in hol                                   # spring moved to 4 June
    assert dt.date(2020, 5, 8) in hol and dt.date(2020, 5, 4) not in hol     # VE day move
    assert {dt.date(2022, 6, 2), dt.date(2022, 6, 3)} <= hol                 # Platinum Jubilee
    assert dt.date(2022, 5, 30) not in hol                                   # spring moved to 2 June
    assert dt.date(2022, 9, 19) in hol                                       # state funeral
    assert dt.date(2023, 5, 8) in hol                                        # coronation
    # Christmas 2021 and 2022 on weekends: substitutes on the Monday and Tuesday after
    assert {d for d in hol if d.year == 2021 and d.month == 12} == {dt.date(2021, 12, 27),
                                                                    dt.date(2021, 12, 28)}
    assert {d for d in hol if d.year == 2022 and d.month == 12} == {dt.date(2022, 12, 26),
                                                                    dt.date(2022, 12, 27)}
    assert dt.date(2022, 1, 3) in hol                                        # New Year substitute


def test_package_agrees_with_the_hand_typed_gov_uk_list():
    # the list typed from gov.uk (2012-2026) and the holidays package: date for date
    typed = set(O.bank_holidays(HAND_TYPED).dt.date)
    package = set(O.bank_holidays(years=range(2012, 2027)).dt.date)
    assert len(typed) == 124
    assert sorted(typed ^ package) == []


def test_working_days_across_bank_holidays():
    # Fri 2019-04-12 to Fri 2019-06-21 is exactly 10 weeks: 50 weekdays in [start, end).
    # Bank holidays inside: Good Friday 19 Apr, Easter Monday 22 Apr, early May 6 May,
    # spring 27 May -> 50 - 4 = 46 working days.
    assert O.working_days([T("2019-04-12")], [T("2019-06-21")])[0] == 46
    # one day less: Thursday 2019-06-20 -> 45
    assert O.working_days([T("2019-04-12")], [T("2019-06-20")])[0] == 45
    # Tue 24 Dec 2019 to Fri 27 Dec: 24 counts, 25 and 26 are bank holidays -> 1
    assert O.working_days([T("2019-12-24")], [T("2019-12-27")])[0] == 1
    # Thu 7 May 2020 to Mon 11 May: 7 counts, Fri 8 (VE day) and the weekend do not -> 1
    assert O.working_days([T("2020-05-07")], [T("2020-05-11")])[0] == 1
    # Wed 1 June 2022 to Mon 6 June: 1 counts; Thu 2 and Fri 3 (spring bank holiday and
    # Platinum Jubilee) and the weekend do not -> 1
    assert O.working_days([T("2022-06-01")], [T("2022-06-06")])[0] == 1
    # Fri 24 Dec 2021 to Wed 29 Dec: 24 counts; Mon 27 and Tue 28 are the Christmas and
    # Boxing Day substitutes -> 1. Likewise Fri 23 Dec 2022 to Wed 28 Dec (26 and 27 off).
    assert O.working_days([T("2021-12-24"), T("2022-12-23")],
                          [T("2021-12-29"), T("2022-12-28")]).tolist() == [1, 1]
    # Fri 16 Sep 2022 to Tue 20 Sep: 16 counts, Mon 19 (state funeral) does not -> 1
    assert O.working_days([T("2022-09-16")], [T("2022-09-20")])[0] == 1
    # Friday referral authorised the next Monday: 1; same day: 0; missing: NaN
    out = O.working_days([T("2019-03-01"), T("2019-03-01"), pd.NaT],
                         [T("2019-03-04"), T("2019-03-01"), T("2019-03-04")])
    assert out[0] == 1 and out[1] == 0 and np.isnan(out[2])


def test_working_days_beyond_2026_and_before_2012():
    # years the hand-typed list never held: Fri 24 Dec 2027 to Wed 29 Dec, Christmas and
    # Boxing Day on the weekend, substitutes Mon 27 and Tue 28 -> 1 (24 Dec); Easter 2030
    # is 21 April: Thu 18 to Tue 23, Good Friday 19 and Easter Monday 22 off -> 1 (18 Apr)
    assert O.working_days([T("2027-12-24")], [T("2027-12-29")])[0] == 1
    assert O.working_days([T("2030-04-18")], [T("2030-04-23")])[0] == 1
    # 2010: early May 3 May -> Fri 30 Apr to Tue 4 May is 1 working day
    assert O.working_days([T("2010-04-30")], [T("2010-05-04")])[0] == 1
    # a span across many years: 2024-01-01 to 2034-01-01 less 8 bank holidays a year
    n = O.working_days([T("2024-01-01")], [T("2034-01-01")])[0]
    weekdays = np.busday_count(np.datetime64("2024-01-01"), np.datetime64("2034-01-01"))
    assert n == weekdays - len(O.bank_holidays(years=range(2024, 2034)))
    # with a list of dates instead, dates outside it are refused
    with pytest.raises(DataError, match="outside the bank holidays"):
        O.working_days([T("2010-05-01")], [T("2010-06-01")], holidays_path=HAND_TYPED)
    assert O.working_days([T("2022-06-01")], [T("2022-06-06")], holidays_path=HAND_TYPED)[0] == 1


def test_assessment_duration_and_45_day_rule():
    cin = {
        "referrals": referrals([(LA, "a", "r1", "2019-04-12", None, False),
                                (LA, "b", "r2", "2019-04-12", None, False),
                                (LA, "c", "r3", "2019-05-01", None, False)]),
        "assessments": pd.DataFrame({
            "la": [LA, LA, LA, LA], "child": ["a", "b", "c", "c"],
            "referral_id": ["r1", "r2", "r3", "r3"],
            "assessment_actual_start_date": pd.to_datetime(
                ["2019-04-15", "2019-04-15", "2019-05-02", "2019-05-02"]),
            "assessment_authorisation_date": pd.to_datetime(
                ["2019-06-21", "2019-06-20", "2019-05-10", None])}),
    }
    d = O.assessment_durations(cin).set_index("child")
    assert len(d) == 3                                  # the open assessment is left out
    assert d.loc["a", "working_days"] == 46 and d.loc["a", "within_45wd"] == 0
    assert d.loc["b", "working_days"] == 45 and d.loc["b", "within_45wd"] == 1
    # Wed 1 May 2019 to Fri 10 May: 1,2,3 | 6 is a bank holiday | 7,8,9 -> 6
    assert d.loc["c", "working_days"] == 6
    assert set(d["year"]) == {2020}                     # authorised April 2019-March 2020
    # from the assessment's own start, Mon 15 Apr 2019, to Fri 21 Jun: Fri 12 Apr is no
    # longer counted (19 and 22 Apr are still inside) -> 46 - 1 = 45
    s = O.assessment_durations(cin, start="assessment").set_index("child")
    assert s.loc["a", "working_days"] == 45
    t = O.assessment_la_year(d.reset_index()).set_index("measure")
    assert t.loc["assessments_45wd_pct_child", "numerator"] == 2
    assert t.loc["assessments_45wd_pct_child", "denominator"] == 3
    assert t.loc["assessments_45wd_pct_child", "value"] == pytest.approx(200 / 3)
    assert t.loc["assessment_days_median", "value"] == 45


# --------------------------------------------------------------------------- kinship

def kinship_records():
    return episodes([
        # child a: earlier U4 episode ended in October, now U2 across 31 March 2019
        (LA, "a", "2018-01-10", "2018-10-01", "S", "C2", "U4", "E11"),
        (LA, "a", "2018-10-01", None, "P", "C2", "U2", None),
        # child b: U5 across 31 March 2019 (ceases in April)
        (LA, "b", "2018-06-01", "2019-04-15", "S", "C2", "U5", "E13"),
        # child c: placed with parents across 31 March 2019
        (LA, "c", "2019-01-02", None, "S", "C2", "P1", None),
        # child d: ceased on 31 March 2019 itself: not looked after on 31 March
        (LA, "d", "2018-05-01", "2019-03-31", "S", "V2", "U1", "E45"),
        # child e: starts on 1 April 2019: not looked after on 31 March 2019
        (LA, "e", "2019-04-01", None, "S", "V2", "U1", None),
    ])


def test_kinship_share_among_cla_and_among_foster():
    snap = O.kinship_snapshot(kinship_records(), years=[2019])
    assert sorted(snap["child"]) == ["a", "b", "c"]     # one row per child
    s = snap.set_index("child")
    assert s.loc["a", "place"] == "U2" and s.loc["a", "kinship_cla"] == 1
    assert s.loc["b", "kinship_foster"] == 0 and np.isnan(s.loc["c", "kinship_foster"])
    t = O.kinship_la_year(snap).set_index("measure")["value"]
    assert t["cla_31mar_child"] == 3 and t["cla_foster_child"] == 2 and t["cla_kinship"] == 1
    assert t["cla_kinship_pct"] == pytest.approx(100 / 3)   # 1 of 3 looked after
    assert t["foster_kinship_pct"] == pytest.approx(50.0)   # 1 of 2 in foster care


def test_kinship_snapshot_default_years():
    snap = O.kinship_snapshot(kinship_records())
    # 31 March 2018: only a (U4) -> 0 kinship; 31 March 2020: a (U2), c (P1), e (U1)
    by = snap.groupby("year")["child"].apply(lambda s: sorted(s)).to_dict()
    assert by == {2018: ["a"], 2019: ["a", "b", "c"], 2020: ["a", "c", "e"]}


def test_kinship_periods_of_care_as_the_evaluation():
    p = O.kinship_periods_of_care(kinship_records()).set_index("child")
    # d and e were under s20 (V2) only: outside the C1/C2 population
    assert sorted(p.index) == ["a", "b", "c"]
    assert p.loc["a", "kinship_poc"] == 1      # U2 episode started within 365 days of 2018-01-10
    # U5, then left care on 2019-04-15 by E13 (to live with parents or relatives), 318 days
    # after the period began on 2018-06-01: the evaluation's exit codes count it
    assert p.loc["b", "kinship_poc"] == 1
    assert p.loc["c", "kinship_poc"] == 1      # placed with parents counts, as in the evaluation
    q = O.kinship_periods_of_care(kinship_records(), include_parents=False,
                                  legal_statuses=None).set_index("child")
    assert q.loc["c", "kinship_poc"] == 0
    assert q.loc["d", "kinship_poc"] == 1 and q.loc["e", "kinship_poc"] == 1
    r = O.kinship_periods_of_care(kinship_records(), data_end="2019-06-30").set_index("child")
    assert np.isnan(r.loc["c", "kinship_poc"]) and r.loc["a", "kinship_poc"] == 1
    # the same E13 exit 424 days after the start is outside the 365-day window: not kinship
    late = episodes([(LA, "f", "2017-01-01", "2018-03-01", "S", "C2", "U5", "E13")])
    assert O.kinship_periods_of_care(late)["kinship_poc"].tolist() == [0]
    assert O.kinship_periods_of_care(late, window_days=500)["kinship_poc"].tolist() == [1]


# --------------------------------------------------------------------------- re-referrals

def test_rereferral_within_12_months():
    cin = {"referrals": referrals([
        (LA, "x", "1", "2017-01-15", None, False),
        (LA, "x", "2", "2017-12-15", None, False),   # 11 months after: re-referral
        (LA, "x", "2b", "2017-12-15", None, False),  # same day again: counted once
        (LA, "x", "3", "2019-01-20", None, False),   # 13 months after: not
        (LA, "x", "4", "2020-01-20", None, False),   # exactly 12 months after: re-referral
        (LB, "x", "5", "2019-06-01", None, False),   # same id, other LA: a different child
    ])}
    r = O.rereferrals(cin).set_index("referral_id")
    assert len(r) == 5                                 # "2b" merged into "2"
    assert r["rereferral_12m"].to_dict() == {"1": 0, "2": 1, "3": 0, "4": 1, "5": 0}
    assert r.loc["2", "year"] == 2018 and r.loc["4", "year"] == 2020
    t = O.rereferral_la_year(r.reset_index())
    row = t[(t.measure == "rereferral_12m_pct_child") & (t.la_code == LA) & (t.year == 2018)]
    assert row["numerator"].item() == 1 and row["denominator"].item() == 1
    # with the data starting 2017-01-01 the first referral's history is unseen
    c = O.rereferrals(cin, data_start="2017-01-01").set_index("referral_id")
    assert np.isnan(c.loc["1", "rereferral_12m"]) and c.loc["3", "rereferral_12m"] == 0


def test_rereferral_after_no_further_action():
    cin = {"referrals": referrals([
        (LA, "y", "1", "2018-01-10", "2018-01-20", True),
        (LA, "y", "2", "2018-06-20", None, False),   # 5 months after the NFA closure: yes
        (LA, "z", "3", "2018-01-10", "2018-01-20", True),
        (LA, "z", "4", "2018-08-20", None, False),   # 7 months after: no
        (LA, "w", "5", "2018-03-01", None, True),    # NFA, no closure date: referral date used
        (LA, "w", "6", "2018-03-01", None, False),   # same day as the reference date: not later
        (LA, "v", "7", "2018-02-01", "2018-02-01", False),  # not NFA: not in the base
    ])}
    n = O.rereferral_after_nfa(cin).set_index("child")
    assert sorted(n.index) == ["w", "y", "z"]
    assert n.loc["y", "rereferral_6m"] == 1 and n.loc["z", "rereferral_6m"] == 0
    assert n.loc["w", "rereferral_6m"] == 0 and n.loc["w", "nfa_date"] == T("2018-03-01")
    assert n.loc["y", "nfa_date"] == T("2018-01-20") and n.loc["y", "year"] == 2018
    t = O.rereferral_nfa_la_year(n.reset_index())
    assert t["value"].item() == pytest.approx(100 / 3)
    c = O.rereferral_after_nfa(cin, data_end="2018-08-15").set_index("child")
    assert c.loc["y", "rereferral_6m"] == 1 and np.isnan(c.loc["w", "rereferral_6m"])


def test_rereferral_followed_by_escalation():
    cin = {
        "referrals": referrals([
            (LA, "p", "1", "2017-01-10", None, False), (LA, "p", "2", "2017-06-10", None, False),
            (LA, "q", "3", "2017-01-10", None, False), (LA, "q", "4", "2017-06-10", None, False),
            (LA, "s", "5", "2017-01-10", None, False), (LA, "s", "6", "2017-06-10", None, False),
            (LA, "u", "7", "2017-01-10", None, False), (LA, "u", "8", "2017-06-10", None, False),
            (LA, "n", "9", "2017-01-10", None, False),      # no re-referral: not in base
        ]),
        "cpp": pd.DataFrame({"la": [LA, LA, LA, LA], "child": ["p", "s", "u", "n"],
                             "cpp_start_date": pd.to_datetime(
                                 ["2017-09-10", "2018-07-10", "2017-03-01", "2017-02-01"]),
                             "cpp_end_date": pd.NaT}),
    }
    eps = episodes([(LA, "q", "2018-05-10", None, "S", "C2", "U4", None),   # entry 11 months on
                    (LA, "u", "2017-04-01", None, "S", "C2", "U4", None)])  # before re-referral
    e = O.rereferral_escalation(cin, eps).set_index("child")
    assert sorted(e.index) == ["p", "q", "s", "u"]
    assert e.loc["p", "escalated"] == 1       # CPP 3 months after the re-referral
    assert e.loc["q", "escalated"] == 1       # entry to care 11 months after
    assert e.loc["s", "escalated"] == 0       # CPP 13 months after
    assert e.loc["u", "escalated"] == 0       # CPP and care entry both before it
    six = O.rereferral_escalation(cin, eps, window_months=6).set_index("child")
    assert six.loc["q", "escalated"] == 0 and six.loc["p", "escalated"] == 1
    no903 = O.rereferral_escalation(cin).set_index("child")
    assert no903.loc["q", "escalated"] == 0
    t = O.escalation_la_year(e.reset_index())
    assert (t["numerator"].item(), t["denominator"].item(), t["value"].item()) == (2, 4, 50.0)


def test_icpc_count_and_rate():
    cin = {"s47": pd.DataFrame({
        "la": [LA, LA, LA, LB], "child": ["a", "a", "b", "c"],
        "s47_actual_start_date": pd.to_datetime(["2018-05-01"] * 4),
        "icpc_date": pd.to_datetime(["2018-05-20", "2018-05-20", "2019-03-31", None])})}
    conf = O.icpcs(cin)
    assert len(conf) == 2 and set(conf["year"]) == {2019}
    pop = pd.DataFrame({"la_code": [LA], "year": [2019], "pop_0_17": [40000]})
    t = O.icpc_la_year(conf, pop).set_index("measure")["value"]
    assert t["icpc_count_child"] == 2 and t["icpc_rate_per10k_child"] == pytest.approx(0.5)


# --------------------------------------------------------------------------- aggregation

def test_panel_measures_layout_and_definitions():
    cin = {"referrals": referrals([(LA, "x", "1", "2017-01-15", None, False),
                                   (LA, "x", "2", "2017-12-15", None, False)])}
    wide = A.to_panel_measures(kinship_records(), cin)
    assert list(wide.columns[:2]) == ["la_code", "year"]
    assert not wide.duplicated(["la_code", "year"]).any()
    r = wide.set_index(["la_code", "year"])
    assert r.loc[(LA, 2019), "cla_kinship_pct"] == pytest.approx(100 / 3)
    assert r.loc[(LA, 2018), "rereferral_12m_pct_child"] == 100
    defs = A.measure_definitions()
    csv = pd.read_csv(DEFINITIONS_PATH, dtype=str, keep_default_na=False)
    assert list(defs.columns) == list(csv.columns)
    assert not set(defs["name"]) & set(csv["name"])       # never overwrites a published measure
    assert set(wide.columns[2:]) <= set(defs["name"])
    assert set(defs["kind"]) <= set(csv["kind"])
    assert defs["definition"].str.len().min() > 40
