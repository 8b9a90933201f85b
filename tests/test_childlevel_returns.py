"""Annual returns stacked: a record open across 31 March is in two returns and counts once;
each LA's records cover the years of its own returns."""
from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.childlevel import aggregate as A
from analysis.childlevel.returns import combine_returns, records_coverage

LA, LB = "E09000007", "E06000001"
T = pd.Timestamp


def _episodes(rows):
    """rows: (return year, child, decom, dec, rne, ls, place, rec)."""
    df = pd.DataFrame(rows, columns=["year", "child", "decom", "dec", "rne", "ls", "place", "rec"])
    df.insert(0, "la", LA)
    for c in ("decom", "dec"):
        df[c] = pd.to_datetime(df[c])
    return df


def _cin(referrals, assessments):
    """referrals: (return year, child, line, referral date, closure date);
    assessments: (return year, child, line of its referral, start, authorised)."""
    r = pd.DataFrame(referrals, columns=["year", "child", "referral_id", "cin_referral_date",
                                         "cin_closure_date"])
    a = pd.DataFrame(assessments, columns=["year", "child", "referral_id",
                                           "assessment_actual_start_date",
                                           "assessment_authorisation_date"])
    for t in (r, a):
        t.insert(0, "la", LA)
        t["source_file"] = "cin_" + t["year"].astype(str) + ".xml"
        for c in t.columns:
            if c.endswith("_date"):
                t[c] = pd.to_datetime(t[c])
    r["referral_nfa"] = False
    r["reason_for_closure"] = np.where(r["cin_closure_date"].notna(), "RC1", None)
    return {"referrals": r, "assessments": a}


def test_an_episode_in_two_returns_counts_once_in_its_latest_state():
    ep = _episodes([
        # child A: in care from 1 Jun 2018; open at the 2019 return, left on 1 Aug 2019 (2020 return)
        (2019, "A", "2018-06-01", None, "S", "C2", "U1", None),
        (2020, "A", "2018-06-01", "2019-08-01", "S", "C2", "U1", "E11"),
        # child B: in care from 1 Sep 2019, only in the 2020 return
        (2020, "B", "2019-09-01", None, "S", "C2", "U4", None),
    ])
    stacked = A.tidy_measures(ep, years=[2020]).set_index("measure")["value"]
    assert stacked["cla_31mar_child"] == 2          # A's 2019 copy still looks open: wrong
    combined, _ = combine_returns(ep, None)
    assert len(combined) == 2 and combined.loc[combined["child"] == "A", "year"].tolist() == [2020]
    t = A.tidy_measures(combined, years=[2020]).set_index("measure")["value"]
    assert t["cla_31mar_child"] == 1                # on 31 March 2020 only B is looked after
    assert t["cla_kinship_pct"] == 0.0
    # A's period of care (reporting year 2019) is one period, not two; it is kinship (U1)
    poc = A.tidy_measures(combined).set_index(["measure", "year"])
    assert poc.loc[("poc_kinship_pct", 2019), "denominator"] == 1
    assert poc.loc[("poc_kinship_pct", 2019), "value"] == 100.0


def test_an_assessment_in_two_returns_counts_once():
    # Referral 1 Mar 2019, open across 31 March: in both returns (different lines), with
    # its assessment authorised on Wed 20 Mar 2019: Fri 1, 4-8, 11-15, Mon 18, Tue 19 Mar =
    # 13 working days (day 0 is the referral day).
    cin = _cin([(2019, "X", 7, "2019-03-01", None), (2020, "X", 3, "2019-03-01", "2019-05-01")],
               [(2019, "X", 7, "2019-03-01", "2019-03-20"), (2020, "X", 3, "2019-03-01", "2019-03-20")])
    stacked = A.tidy_measures(cin=cin).set_index(["measure", "year"])["value"]
    assert stacked[("assessments_completed_child", 2019)] == 2          # double-counted
    _, combined = combine_returns(None, cin)
    t = A.tidy_measures(cin=combined).set_index(["measure", "year"])["value"]
    assert t[("assessments_completed_child", 2019)] == 1
    assert t[("assessment_days_median", 2019)] == 13
    assert t[("referrals_child", 2019)] == 1
    # the kept referral is the 2020 copy, with its closure date
    assert combined["referrals"]["cin_closure_date"].tolist() == [T("2019-05-01")]


def test_referral_lines_do_not_join_across_files():
    # The same child at line 5 of two returns, for two different referrals: the readers'
    # referral_id (a line number) is the same, so joining on it pairs each assessment
    # with both referrals. 2019: referred Tue 1 May 2018, assessed Tue 15 May (9 working
    # days: Mon 7 May is a bank holiday). 2020: referred Mon 3 Jun 2019, assessed Mon 10 Jun (5).
    cin = _cin([(2019, "Y", 5, "2018-05-01", "2018-06-01"), (2020, "Y", 5, "2019-06-03", "2019-07-01")],
               [(2019, "Y", 5, "2018-05-01", "2018-05-15"), (2020, "Y", 5, "2019-06-03", "2019-06-10")])
    _, combined = combine_returns(None, cin)
    assert combined["assessments"]["referral_id"].tolist() == [
        f"{LA}|Y|2018-05-01", f"{LA}|Y|2019-06-03"]
    t = A.tidy_measures(cin=combined).set_index(["measure", "year"])["value"]
    assert t[("assessment_days_median", 2019)] == 9
    assert t[("assessment_days_median", 2020)] == 5
    assert t[("assessments_completed_child", 2019)] == t[("assessments_completed_child", 2020)] == 1


def test_records_without_their_date_are_never_merged():
    ep = _episodes([(2019, "A", None, None, "S", "C2", "U1", None),
                    (2020, "A", None, None, "S", "C2", "U4", None)])
    combined, _ = combine_returns(ep, None)
    assert len(combined) == 2


def test_coverage_is_per_la():
    ep = _episodes([(2019, "A", "2018-06-01", None, "S", "C2", "U1", None),
                    (2021, "A", "2018-06-01", None, "S", "C2", "U1", None)])
    other = ep.iloc[:1].assign(la=LB, year=2020)
    cov = records_coverage(pd.concat([ep, other], ignore_index=True), None).set_index("la")
    assert cov.loc[LA, ["first_year", "last_year"]].tolist() == [2019, 2021]
    assert cov.loc[LA, "data_start"] == T("2018-04-01") and cov.loc[LA, "data_end"] == T("2021-03-31")
    assert cov.loc[LB, "data_start"] == T("2019-04-01") and cov.loc[LB, "data_end"] == T("2020-03-31")


def test_censoring_follows_each_las_own_coverage():
    # Both LAs: a referral on 1 Jun 2019 and a re-referral on 1 Dec 2019. LA's records
    # start on 1 April 2019, LB's on 1 April 2018.
    rows = [(2020, "Z", 1, "2019-06-01", "2019-06-30"), (2020, "Z", 2, "2019-12-01", None)]
    a, b = _cin(rows, []), _cin(rows, [])
    b = {k: v.assign(la=LB) for k, v in b.items()}
    cin = {k: pd.concat([a[k], b[k]], ignore_index=True) for k in a}
    start = pd.Series({LA: T("2019-04-01"), LB: T("2018-04-01")})
    t = A.tidy_measures(cin=cin, data_start=start).set_index(["measure", "la_code", "year"])
    # LA: both referrals are within 12 months of 1 April 2019, so a referral before the
    # data could make either a re-referral: no rate (keeping the certain re-referral of
    # 1 Dec 2019 alone would give 100%).
    assert ("rereferral_12m_pct_child", LA, 2020) not in t.index
    # LB: a year of history before 1 Jun 2019 was covered and held no referral: 1 of 2.
    assert t.loc[("rereferral_12m_pct_child", LB, 2020), "denominator"] == 2
    assert t.loc[("rereferral_12m_pct_child", LB, 2020), "value"] == 50.0
    # both count two referrals
    assert t.loc[("referrals_child", LA, 2020), "value"] == t.loc[("referrals_child", LB, 2020), "value"] == 2
