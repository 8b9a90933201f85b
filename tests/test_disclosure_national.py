"""England rows in the child-level published tables: DfE's rounding, and attacks that use them.

DfE's practice in its looked-after children and children in need releases
(checked on the published files, see ``data/disclosure.yaml``): national and
regional counts rounded to the nearest 10, LA counts unrounded (small ones
withheld), percentages on the unrounded counts. :func:`protect_counts` adds an
England row per year to every child-level table, declared as the total of that
year's LA rows, so secondary suppression and the attacker
(:func:`recover_suppressed`) account for it. All records here are hand-made;
every expected number is worked out in the comments.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.childlevel.disclosure import (
    DisclosureSettings,
    Structure,
    TableSpec,
    check_disclosure,
    protect_tables,
    protected,
    recover_suppressed,
)
from analysis.childlevel.pipeline import PUBLISHED_COLUMNS, protect_counts, published_table, results_problems

ENGLAND = "E92000001"
A, B, C = "E09000001", "E09000002", "E09000003"
DFE = DisclosureSettings()                       # national and regional to 10, LAs unrounded
EXACT = DisclosureSettings(rounding=None)        # no rounding anywhere


def tidy(rows, measure="cla_kinship_pct", year=2019, scale=100.0):
    """Tidy rows (la, numerator, denominator) as analysis.childlevel.outcomes makes them."""
    return pd.DataFrame([dict(la_code=la, year=year, measure=measure, numerator=n, denominator=d,
                              value=scale * n / d if d else np.nan) for la, n, d in rows])


def kinship(rows, year=2019):
    """Both kinship tables from (la, children in U1-U3, all looked after, in foster care)."""
    return pd.concat([tidy([(la, k, n) for la, k, n, _ in rows], "cla_kinship_pct", year),
                      tidy([(la, k, f) for la, k, _, f in rows], "foster_kinship_pct", year)],
                     ignore_index=True)


def row(pub, measure, la, year=2019):
    r = pub[(pub["measure"] == measure) & (pub["la_code"] == la) & (pub["year"] == year)]
    assert len(r) == 1, (measure, la, year)
    return r.iloc[0][["numerator", "rest", "denominator", "value"]].tolist()


# LA numerators 7, 23, 41 (sum 71) of denominators 30, 40, 70 (sum 140); rests 23, 17, 29 (69).
THREE = tidy([(A, 7, 30), (B, 23, 40), (C, 41, 70)])


# ----------------------------------------------------------------- the England row's values

def test_england_row_is_the_rounded_sum_with_the_percentage_on_unrounded_counts():
    p = protect_counts(THREE, settings=DFE)
    pub = published_table(p)
    assert list(pub.columns) == PUBLISHED_COLUMNS           # layout unchanged: England is a row
    # 71 -> 70, 69 -> 70, 140 -> 140; percentage 100 * 71 / 140 = 50.7 -> "51"
    # (the rounded counts would give 70 / 140 = 50 -> "50")
    assert row(pub, "cla_kinship_pct", ENGLAND) == ["70", "70", "140", "51"]
    # LA rows unrounded: C shows 41 (not 40), 29 (not 30); its percentage 58.6 -> "59"
    assert row(pub, "cla_kinship_pct", C) == ["41", "29", "70", "59"]
    # A's 7 is withheld, and with it a second cell of every line it is in
    assert row(pub, "cla_kinship_pct", A)[0] == "c" and row(pub, "cla_kinship_pct", A)[3] == "c"
    assert pub["la_code"].tolist()[0] == ENGLAND              # England first, as DfE's tables
    # the England row is declared the total of the year's LA rows
    spec = p.structure.spec("cla_kinship_pct")
    assert dict(spec.row_groups) == {(ENGLAND, 2019): [(A, 2019), (B, 2019), (C, 2019)]}
    assert spec.rate_cols["value"] == ("numerator", "denominator", 100.0)
    assert check_disclosure(p) == []


def test_rounding_is_half_up_and_per_year():
    # 2019: numerators 7 + 27 + 41 = 75 -> 80 (half up); rests 23 + 13 + 29 = 65 -> 70.
    # 2020: numerators 7 + 26 + 41 = 74 -> 70; denominators 30 + 40 + 75 = 145 -> 150.
    t = pd.concat([tidy([(A, 7, 30), (B, 27, 40), (C, 41, 70)], year=2019),
                   tidy([(A, 7, 30), (B, 26, 40), (C, 41, 75)], year=2020)], ignore_index=True)
    pub = published_table(protect_counts(t, settings=DFE))
    assert row(pub, "cla_kinship_pct", ENGLAND, 2019)[:3] == ["80", "70", "140"]
    assert row(pub, "cla_kinship_pct", ENGLAND, 2020)[:3] == ["70", "70", "150"]
    # percentages on the unrounded sums: 75 / 140 = 53.6 -> 54; 74 / 145 = 51.0 -> 51
    assert row(pub, "cla_kinship_pct", ENGLAND, 2019)[3] == "54"
    assert row(pub, "cla_kinship_pct", ENGLAND, 2020)[3] == "51"
    # with rounding off the England row shows the exact sums
    exact = published_table(protect_counts(t, settings=EXACT))
    assert row(exact, "cla_kinship_pct", ENGLAND, 2019)[:3] == ["75", "65", "140"]


def test_rate_per_10000_keeps_its_scale():
    # conferences 30 and 45 per 20,000 and 30,000 children: 15 per 10,000 each; England
    # 75 / 50,000 -> 15.0. (Percentages would show 0.15 -> "0".)
    t = tidy([(A, 30, 20000), (B, 45, 30000)], "icpc_rate_per10k_child", scale=10000.0)
    pub = published_table(protect_counts(t, settings=DFE))
    assert row(pub, "icpc_rate_per10k_child", A) == ["30", "19970", "20000", "15"]
    assert row(pub, "icpc_rate_per10k_child", ENGLAND) == ["80", "49930", "50000", "15"]


def test_published_file_with_england_rows_passes_the_book_gate(tmp_path):
    pub = published_table(protect_counts(THREE, settings=DFE))
    proc, res = tmp_path / "processed", tmp_path / "results"
    proc.mkdir()
    res.mkdir()
    pub.to_csv(proc / "childlevel_published.csv", index=False)
    pd.DataFrame({"la_code": [A, B, C], "year": [2019] * 3,
                  "cla_kinship_pct": [23.3, 57.5, 58.6]}).to_csv(proc / "panel.csv", index=False)
    pd.DataFrame({"name": ["cla_kinship_pct"], "source_ids": ["child_level"]}
                 ).to_csv(proc / "measures.csv", index=False)
    assert results_problems(res, proc) == []


# ----------------------------------------------------------------- attacks through the England row

def test_exact_england_total_without_secondary_suppression_gives_the_la_away():
    # A's whole row is small (7 of 9: numerator 7, rest 2, denominator 9, all withheld), so
    # A's row alone says nothing; the England row does: 71 - 23 - 41 = 7.
    t = tidy([(A, 7, 9), (B, 23, 40), (C, 41, 70)])
    naive = protect_counts(t, settings=EXACT, secondary=False)
    pub = published_table(naive)
    assert row(pub, "cla_kinship_pct", A) == ["c", "c", "c", "c"]
    assert row(pub, "cla_kinship_pct", ENGLAND)[:3] == ["71", "48", "119"]
    bounds = recover_suppressed(naive)
    assert bounds[("cla_kinship_pct", (A, 2019), "numerator")] == (7.0, 7.0)
    assert bounds[("cla_kinship_pct", (A, 2019), "rest")] == (2.0, 2.0)
    assert bounds[("cla_kinship_pct", (A, 2019), "denominator")] == (9.0, 9.0)
    assert any("withheld count can be narrowed to 7..7" in p for p in check_disclosure(naive))


def test_rounded_england_total_alone_does_not_protect_but_hides_the_exact_value():
    # England shown as 70 (71): the attacker knows it only as 65..74, so A's numerator is
    # 65-64 .. 74-64 = 1..10, narrowed further by the England percentage (60, so the
    # numerator is 59.5% to 60.5% of the denominator, itself 115..124): not exact, but
    # narrower than the protection level, so rounding alone is not enough.
    t = tidy([(A, 7, 9), (B, 23, 40), (C, 41, 70)])
    rounded = protect_counts(t, settings=DFE, secondary=False)
    assert row(published_table(rounded), "cla_kinship_pct", ENGLAND) == ["70", "50", "120", "60"]
    lo, hi = recover_suppressed(rounded)[("cla_kinship_pct", (A, 2019), "numerator")]
    assert 1 <= lo < 7 < hi <= 10
    assert not protected((lo, hi), DFE)
    assert check_disclosure(rounded) != []


@pytest.mark.parametrize("settings", [DFE, EXACT], ids=["rounded", "exact"])
def test_protected_tables_resist_the_attack_through_the_england_row(settings):
    t = tidy([(A, 7, 9), (B, 23, 40), (C, 41, 70)])
    p = protect_counts(t, settings=settings)
    bounds = recover_suppressed(p)
    assert bounds[("cla_kinship_pct", (A, 2019), "numerator")]       # A is withheld ...
    for cell, b in bounds.items():                                      # ... and safe
        assert protected(b, settings), (cell, b)
    assert check_disclosure(p) == []


# ----------------------------------------------------------------- the two kinship tables

# LA: children in U1-U3 (shared numerator), all looked after, in foster care.
#   A: 20 of 25 looked after (rest 5, small) and of 60 in foster care
#   B: 30 of 100 looked after and of 33 in foster care (rest 3, small)
#   C: 40 of 100 and of 100
KIN = kinship([(A, 20, 25, 60), (B, 30, 100, 33), (C, 40, 100, 100)])


def test_kinship_tables_share_their_numerator():
    p = protect_counts(KIN, settings=DFE)
    links = [ln for ln in p.structure.links if set(ln.tables) == {"cla_kinship_pct", "foster_kinship_pct"}]
    assert len(links) == 1 and links[0].cols == (("numerator", "numerator"),)
    assert set(links[0].rows) == {(ENGLAND, 2019), (A, 2019), (B, 2019), (C, 2019)}
    cla = p["cla_kinship_pct"].mask["numerator"].tolist()
    assert cla == p["foster_kinship_pct"].mask["numerator"].tolist()   # withheld in both or neither
    assert any(cla)
    pub = published_table(p)
    assert row(pub, "cla_kinship_pct", ENGLAND)[0] == row(pub, "foster_kinship_pct", ENGLAND)[0] == "90"


@pytest.mark.parametrize("settings", [DFE, EXACT], ids=["rounded", "exact"])
def test_tables_protected_apart_leak_by_difference_linked_ones_do_not(settings):
    # Protected one at a time, each table picks its own complements:
    #   cla_kinship_pct withholds A (rest 5) and C, and shows B's numerator 30;
    #   foster_kinship_pct withholds B (rest 3) and A, and shows C's numerator 40.
    # The numerator is the same count in both, so the attacker reads B's 30 from the first
    # table: foster rest B = 33 - 30 = 3 exactly. And A's numerator is England's 90 (85..94
    # when rounded) less 30 and 40, so cla rest A = 25 - 20 = 5, exactly or nearly.
    joint = protect_counts(KIN, settings=settings)
    apart = {m: protect_counts(KIN[KIN["measure"] == m], settings=settings)[m].published
             for m in ("cla_kinship_pct", "foster_kinship_pct")}
    assert apart["cla_kinship_pct"].set_index("la_code").loc[B, "numerator"] == "30"
    assert apart["foster_kinship_pct"].set_index("la_code").loc[B, "rest"] == "c"
    leak = recover_suppressed(apart, joint.structure)
    assert leak[("foster_kinship_pct", (B, 2019), "rest")] == (3.0, 3.0)
    lo, hi = leak[("cla_kinship_pct", (A, 2019), "rest")]
    assert lo == 5.0 and hi < 10 and not protected((lo, hi), settings)
    assert check_disclosure(apart, joint.structure) != []
    # protected together (the link), nothing can be narrowed
    for cell, b in recover_suppressed(joint).items():
        assert protected(b, settings), (cell, b)
    assert check_disclosure(joint) == []


def test_rereferrals_are_the_numerator_of_one_table_and_the_denominator_of_another():
    # re-referrals within 12 months: numerator of rereferral_12m_pct_child, denominator of
    # rereferral_escalation_pct; B's 6 re-referrals are withheld in both tables.
    t = pd.concat([tidy([(A, 40, 200), (B, 6, 150), (C, 50, 300)], "rereferral_12m_pct_child"),
                   tidy([(A, 12, 40), (B, 2, 6), (C, 20, 50)], "rereferral_escalation_pct")],
                  ignore_index=True)
    p = protect_counts(t, settings=DFE)
    (link,) = p.structure.links
    assert link.tables == ("rereferral_12m_pct_child", "rereferral_escalation_pct")
    assert link.cols == (("numerator", "denominator"),)
    assert (p["rereferral_12m_pct_child"].mask["numerator"].tolist()
            == p["rereferral_escalation_pct"].mask["denominator"].tolist())
    assert check_disclosure(p) == []
    # censored (data_end): C's escalation denominator 45 differs, so C and England are not tied
    t.loc[(t["measure"] == "rereferral_escalation_pct") & (t["la_code"] == C), "denominator"] = 45
    (link,) = protect_counts(t, settings=DFE).structure.links
    assert set(link.rows) == {(A, 2019), (B, 2019)}


# ----------------------------------------------------------------- the attacker's use of the rate

def test_attacker_uses_a_published_rate_when_its_scale_is_declared():
    # England 66 of 140 (rest 74), shown rounded as 70, 70, 140 with its percentage on the
    # unrounded counts, 47.1 -> "47". A (7, rest 2, of 9) and B (18 of 61) withheld, C (41
    # of 70) shown. Counts alone: England's numerator N is 65..74, so A + B = N - 41 is
    # 24..33 and, with B >= 1, A is 1..32. The rate says N <= 47.5% of N + R, R (the rest)
    # <= 74, so N <= 0.475 * 74 / 0.525 = 66.95 and A <= 66.95 - 41 - 1 = 24.95.
    pub = pd.DataFrame({"la": ["E", "A", "B", "C"],
                        "level": ["national"] + ["local_authority"] * 3,
                        "num": ["70", "c", "c", "41"], "rest": ["70", "c", "c", "29"],
                        "den": ["140", "c", "c", "70"], "pct": ["47", "c", "c", "59"]})

    def attack(rate):
        spec = TableSpec("t", ("num", "rest", "den"), "la", total_row="E", total_col="den",
                         rate_cols={"pct": rate}, level_col="level")
        return recover_suppressed({"t": pub}, Structure((spec,), settings=DFE))[("t", "A", "num")]

    assert attack(("num", "den")) == (1.0, 32.0)                  # the rate unused
    lo, hi = attack(("num", "den", 100))
    assert lo == 1.0 and hi == pytest.approx(0.475 * 74 / 0.525 - 42)
    # protection uses the same attacker: the true tables, protected, pass it
    true = pd.DataFrame({"la": ["E", "A", "B", "C"], "level": ["national"] + ["local_authority"] * 3,
                         "num": [66, 7, 18, 41], "rest": [74, 2, 43, 29], "den": [140, 9, 61, 70]})
    true["pct"] = 100 * true["num"] / true["den"]
    spec = TableSpec("t", ("num", "rest", "den"), "la", total_row="E", total_col="den",
                     rate_cols={"pct": ("num", "den", 100)}, level_col="level")
    pt = protect_tables({"t": true}, [spec], settings=DFE)["t"]
    assert pt.published.set_index("la").loc["E", ["num", "rest", "den", "pct"]].tolist() == \
        ["70", "70", "140", "47"]
    assert check_disclosure(pt) == []
