"""Child-level linear probability DiD: recovery, coverage, agreement with pyfixest and with
the LA-level TWFE on weighted LA-year shares."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.childlevel.did import cell_means, child_lpm_did, child_lpm_from_counts
from analysis.core.errors import DataError
from analysis.methods.estimation import twfe_did


def simulate(effect: float, *, seed: int = 7, n_las: int = 40, n_treated: int = 10,
             years=range(2012, 2021), first_treated: int = 2016, mean_children: int = 80,
             shock_sd: float = 0.02, balanced_sizes: bool = False) -> pd.DataFrame:
    """Children looked after, one row per child-year: kinship 0/1 with probability
    LA level + year trend + LA-year shock + ``effect`` in treated LAs from ``first_treated``."""
    rng = np.random.default_rng(seed)
    la_level = rng.uniform(0.15, 0.35, n_las)
    year_eff = {y: 0.01 * (y - 2012) for y in years}
    rows = []
    for j in range(n_las):
        g = first_treated if j < n_treated else 0
        for y in years:
            n = mean_children if balanced_sizes else int(rng.poisson(mean_children)) + 5
            p = la_level[j] + year_eff[y] + rng.normal(0, shock_sd)
            if g and y >= g:
                p += effect
            kin = (rng.random(n) < np.clip(p, 0, 1)).astype(float)
            rows.append(pd.DataFrame({"la": f"LA{j:02d}", "year": y, "first_treated": g,
                                      "kinship": kin, "w": rng.uniform(0.5, 1.5, n)}))
    return pd.concat(rows, ignore_index=True)


def test_recovers_a_planted_kinship_effect():
    df = simulate(-0.13)
    r = child_lpm_did(df, "kinship", "la", "year", "first_treated")
    assert abs(r.estimate + 0.13) < 0.03
    assert r.ci[0] < -0.13 < r.ci[1] and r.ci[1] < 0 and r.p < 0.01
    assert (r.n_children, r.n_las, r.n_treated_las, r.n_cells) == (len(df), 40, 10, 360)


def test_zero_effect_interval_covers_zero():
    r = child_lpm_did(simulate(0.0, seed=11), "kinship", "la", "year", "first_treated")
    assert r.ci[0] < 0 < r.ci[1] and r.p > 0.05


@pytest.mark.filterwarnings("ignore:The inplace keyword")
@pytest.mark.parametrize("weighted", [False, True])
def test_agrees_with_pyfixest(weighted):
    pf = pytest.importorskip("pyfixest")
    df = simulate(-0.13, seed=3, n_las=16, n_treated=5, mean_children=25)
    # make it unbalanced: drop some LA-years and a share of children
    rng = np.random.default_rng(0)
    df = df[~((df["la"] == "LA09") & (df["year"] == 2014))]
    df = df[rng.random(len(df)) > 0.1].reset_index(drop=True)
    df["d"] = ((df["first_treated"] > 0) & (df["year"] >= df["first_treated"])).astype(float)
    w = "w" if weighted else None
    fit = pf.feols("kinship ~ d | la + year", data=df, vcov={"CRV1": "la"}, weights=w)
    r = child_lpm_did(df, "kinship", "la", "year", "first_treated", weights=w)
    assert r.estimate == pytest.approx(float(fit.coef()["d"]), abs=1e-6)
    assert r.se == pytest.approx(float(fit.se()["d"]), abs=1e-6)


def test_weighted_la_year_twfe_gives_the_child_level_estimate():
    df = simulate(-0.13, seed=5)
    r = child_lpm_did(df, "kinship", "la", "year", "first_treated")
    cells = cell_means(df, "kinship", "la", "year", "first_treated")
    assert len(cells) == 40 * 9                       # balanced panel of LA-years
    la = twfe_did(cells, outcome="y", unit="la", time="year", first_treated="first_treated",
                  weights="n")
    assert la.estimate == pytest.approx(r.estimate, abs=1e-10)
    # same cluster scores, different CR1 factor: N cells against N children
    K = 1 + 8 + 1  # the G/(G-1) part (G = 40 LAs) is common to both and cancels
    ratio = ((len(df) - 1) / (len(df) - K)) / ((len(cells) - 1) / (len(cells) - K))
    assert r.se == pytest.approx(la.std_error * np.sqrt(ratio), rel=1e-8)
    # unweighted shares give a different estimate when LA-years differ in size
    un = twfe_did(cells, outcome="y", unit="la", time="year", first_treated="first_treated")
    assert abs(un.estimate - r.estimate) > 1e-6
    # ...and the same one when every LA-year has the same number of children
    eq = simulate(-0.13, seed=5, balanced_sizes=True)
    c2 = cell_means(eq, "kinship", "la", "year", "first_treated")
    un2 = twfe_did(c2, outcome="y", unit="la", time="year", first_treated="first_treated")
    assert un2.estimate == pytest.approx(
        child_lpm_did(eq, "kinship", "la", "year", "first_treated").estimate, abs=1e-10)


def test_refuses_bad_designs():
    df = simulate(-0.13, n_las=6, n_treated=2, mean_children=10)
    with pytest.raises(DataError, match="no pre-period"):
        child_lpm_did(df.assign(first_treated=np.where(df["first_treated"] > 0, 2012, 0)),
                      "kinship", "la", "year", "first_treated")
    bad = df.copy()
    bad.loc[bad.index[0], "first_treated"] = 2017
    with pytest.raises(DataError, match="varies within LA"):
        child_lpm_did(bad, "kinship", "la", "year", "first_treated")
    with pytest.raises(DataError, match="lacks column"):
        child_lpm_did(df, "nope", "la", "year", "first_treated")


def _counts(df: pd.DataFrame) -> pd.DataFrame:
    """LA-year counts of the 0/1 outcome, as the data stage keeps them."""
    return (df.groupby(["la", "year"], as_index=False)
              .agg(numerator=("kinship", "sum"), denominator=("kinship", "size"),
                   first_treated=("first_treated", "first")))


@pytest.mark.parametrize("weighted", [False, True])
def test_counts_give_exactly_the_child_level_fit(weighted):
    df = simulate(-0.13, seed=5, n_las=18, n_treated=6, mean_children=30)
    df = df[~((df["la"] == "LA03") & (df["year"] == 2015))].reset_index(drop=True)
    counts = _counts(df)
    if weighted:
        # one analytic weight per LA (a matching weight), the same for each of its children
        la_w = {la: 0.5 + (i % 3) / 2 for i, la in enumerate(sorted(df["la"].unique()))}
        df["mw"] = df["la"].map(la_w)
        counts["mw"] = counts["la"].map(la_w)
    w = "mw" if weighted else None
    rows = child_lpm_did(df, "kinship", "la", "year", "first_treated", weights=w)
    cnt = child_lpm_from_counts(counts, la_col="la", weights=w, scale=100)
    assert cnt.estimate == pytest.approx(100 * rows.estimate, abs=1e-9)
    assert cnt.se == pytest.approx(100 * rows.se, abs=1e-9)
    assert cnt.p == pytest.approx(rows.p, abs=1e-12)
    assert (cnt.n_children, cnt.n_las, cnt.n_cells) == (len(df), 18, rows.n_cells)


def test_counts_refuse_a_numerator_above_its_denominator():
    counts = _counts(simulate(0.0, seed=2, n_las=6, n_treated=2, mean_children=10))
    counts.loc[4, "numerator"] = counts.loc[4, "denominator"] + 1
    with pytest.raises(DataError, match="numerator outside") as e:
        child_lpm_from_counts(counts, la_col="la")
    assert e.value.row == 4 and e.value.column == "numerator"


@pytest.mark.parametrize("corrupt, message", [
    (lambda t: t.drop(columns="denominator"), "column 'denominator' missing"),
    (lambda t: t.assign(numerator=t["numerator"].astype(object).where(t.index != 3, "x")),
     "column 'numerator', row 5: not a number: 'x'"),
])
def test_a_corrupt_counts_file_is_one_clear_error(tmp_path, corrupt, message):
    """The study's child-level model reads childlevel_counts.csv: a bad file names file,
    column and row instead of a traceback."""
    from analysis.design import load_design
    from analysis.run.study import Run, RunOutput, child_lpm_estimates

    design = load_design()
    counts = pd.DataFrame({"measure": "poc_kinship_pct", "la_code": "E09000007",
                           "year": range(2013, 2019), "numerator": 5, "denominator": 20})
    corrupt(counts).to_csv(tmp_path / "childlevel_counts.csv", index=False)
    run = Run("kinship_care", "main")
    out = RunOutput(sample=pd.DataFrame({"la_code": ["E09000007"], "year": [2013],
                                         "first_treated": [0], "weight": [1.0]}))
    with pytest.raises(DataError) as e:
        child_lpm_estimates(design, [run], {run: out}, tmp_path)
    assert message in str(e.value) and "childlevel_counts.csv" in str(e.value)
