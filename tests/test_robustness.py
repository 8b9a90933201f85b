"""The robustness pages' tables and figures show the results they claim to show.

On small synthetic results tables (the real design's outcome ids and pilots,
made-up numbers), with :mod:`analysis.book.robustness` reading them instead of
``results/``:

- sensitivity: every matched DiD row carries the wild bootstrap interval (never
  the cluster-robust one), the synthetic DiD its placebo interval; each row names
  its onset (the wave-two row wave 2); the leave-one-out row spans its runs; the
  counts of runs are those of ``estimates.csv``; a figure draws one line per row;
- every donor: the pre-period fit computed from the panel and ``sdid_weights.csv``
  equals the ``pre_rmse`` the synthetic DiD estimator reports for one onset; the
  top weights are the largest, named;
- each pilot alone: its table holds ``pilot_effects.csv``'s numbers, a pilot
  without an estimate is explained, and the placebo figure marks its estimate
  among the donors' placebo estimates.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest

from analysis.book import robustness as R
from analysis.book.chapters import design
from analysis.methods.sdid import sdid

OUTCOME = "rereferrals"       # onset wave 1 in the design; its wave-two run is a sensitivity


def _estimates() -> pd.DataFrame:
    d = design()
    rows = []
    rng = np.random.default_rng(1)
    specs = ["main", "exclude_similar_models", "wave2_onset", "k1", "transition_year",
             "pilots_new_to_sos", "pilots_experienced", "all_donors"]
    specs += [f"leave_one_out:{p.la_code}" for p in d.pilots[:4]]
    for spec in specs:
        est = float(rng.normal(1.0, 0.5)) if spec != "wave2_onset" else -1.0
        for inf, half in (("cluster", 1.0), ("wild_bootstrap", 2.0), ("randomization", 3.0)):
            rows.append(dict(outcome=OUTCOME, specification=spec, estimator="twfe", inference=inf,
                             estimate=est, std_error=0.5, ci_low=est - half, ci_high=est + half,
                             p_value=0.4, n_treated=10, n_comparison=20, pre_years="2013-2014",
                             post_years="2015-2025"))
    rows.append(dict(outcome=OUTCOME, specification="main", estimator="sdid", inference="placebo",
                     estimate=0.7, std_error=0.4, ci_low=-5.0, ci_high=6.0, p_value=0.5, n_treated=10,
                     n_comparison=100, pre_years="2013-2014", post_years="2015-2025"))
    return pd.DataFrame(rows)


def _evidence(est: pd.DataFrame) -> pd.DataFrame:
    m = est[(est["specification"] == "main") & (est["estimator"] == "twfe")
            & (est["inference"] == "wild_bootstrap")].iloc[0]
    return pd.DataFrame([dict(outcome=OUTCOME, onset="wave1", estimate=m["estimate"], ci_low=m["ci_low"],
                              ci_high=m["ci_high"], n_sensitivity=9, grade="no")])


@pytest.fixture
def fake_results(monkeypatch):
    """``robustness.result`` returns synthetic tables; returns the dict to add tables to."""
    est = _estimates()
    tables = {"estimates": est, "evidence": _evidence(est),
              "notes": pd.DataFrame(columns=["outcome", "specification", "note"]),
              "contrasts": pd.DataFrame([dict(outcome=OUTCOME, contrast="prior_use", first="pilots_new_to_sos",
                                              second="pilots_experienced", estimate_first=1.0, estimate_second=0.5,
                                              difference=0.5, std_error=1.0, ci_low=-1.5, ci_high=2.5,
                                              p_value=0.6, grows=None)])}

    def result(name):
        if name not in tables:
            raise KeyError(f"no synthetic {name}")
        return tables[name]

    monkeypatch.setattr(R, "result", result)
    return tables


# --------------------------------------------------------------------------- sensitivity

def test_spec_rows_carry_the_primary_interval_and_their_onset(fake_results):
    est = fake_results["estimates"]
    rows = R.spec_rows(OUTCOME).set_index("key")
    wb = est[(est["estimator"] == "twfe") & (est["inference"] == "wild_bootstrap")].set_index("specification")
    for key in ("main", "exclude_similar_models", "wave2_onset", "k1", "transition_year", "all_donors"):
        assert rows.loc[key, "interval"] == "wild_bootstrap"
        assert rows.loc[key, "ci_low"] == pytest.approx(wb.loc[key, "ci_low"])   # not the cluster one
        assert rows.loc[key, "ci_high"] == pytest.approx(wb.loc[key, "ci_high"])
    assert rows.loc["sdid", "interval"] == "placebo"
    assert (rows.loc["sdid", "ci_low"], rows.loc["sdid", "ci_high"]) == (-5.0, 6.0)
    # onsets: the main analysis's (evidence.csv), wave 2 for the wave-two run
    assert rows.loc["main", "onset"] == "wave1"
    assert rows.loc["wave2_onset", "onset"] == "wave2"
    assert rows.loc["exclude_similar_models", "onset"] == "wave1"
    # leave one out: one row spanning its runs
    loo = wb[wb.index.str.startswith("leave_one_out:")]["estimate"]
    assert rows.loc["leave_one_out", "ci_low"] == pytest.approx(loo.min())
    assert rows.loc["leave_one_out", "ci_high"] == pytest.approx(loo.max())
    assert len(rows.loc["leave_one_out", "runs"]) == len(loo)
    # the main analysis comes first
    assert R.spec_rows(OUTCOME)["key"].iloc[0] == "main"


def test_forest_names_onsets_when_rows_mix_them(fake_results):
    rows = R.spec_rows(OUTCOME)
    fig = R.spec_forest(rows, unit="percentage points", title="Re-referrals")
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert "Onset" in texts
    assert texts.count("wave 2") == 1 and texts.count("wave 1") == len(rows) - 1
    drawn = {ln.get_gid() for ln in fig.axes[0].lines if ln.get_gid()}
    assert drawn == {f"row:{k}" for k in rows["key"]}
    # without the wave-two run the rows share one onset: the heading names it, no column
    one = R.spec_forest(rows[rows["key"] != "wave2_onset"], title="Re-referrals")
    assert "Onset" not in [t.get_text() for t in one.axes[0].texts]
    assert "Every row: wave 1 onset" in [t.get_text() for t in one.axes[0].texts]


def test_runs_are_counted_from_the_estimates(fake_results):
    n = R.specs_run(OUTCOME)
    assert n == {"named": 7, "leave_one_out": 4, "total": 11, "not_run": 0}
    text = R.spec_counts_sentence()
    assert "eleven times besides its main analysis" in text
    assert "seven named alternatives" in text and "four runs leaving out one pilot" in text


def test_tables_use_the_wild_bootstrap_and_label_the_cluster_interval(fake_results):
    summary = R.sensitivity_summary()
    assert "Main estimate (95% wild bootstrap interval)" in summary.columns
    main = fake_results["estimates"].query("specification == 'main' and inference == 'wild_bootstrap'").iloc[0]
    assert R._interval(main["ci_low"], main["ci_high"]) in summary.iloc[0][
        "Main estimate (95% wild bootstrap interval)"]
    prior = R.prior_use_table()
    assert any("cluster-robust" in c for c in prior.columns)
    assert prior.iloc[0]["Difference, new minus prior use (95% cluster-robust interval)"] == "+0.5 (−1.5 to 2.5)"


# --------------------------------------------------------------------------- every donor

def test_pre_fit_equals_the_estimators_pre_rmse_for_one_onset(fake_results, monkeypatch):
    d = design()
    o = d.outcome(OUTCOME)
    treated = {c: 2015 for c in d.treated(o)}           # one onset: every pilot from 2015
    rng = np.random.default_rng(7)
    years = list(range(2013, 2026))
    donors = [f"E9{k:07d}" for k in range(30)]
    rows = []
    for c in list(treated) + donors:
        level, slope = rng.normal(20, 2), rng.normal(0, 0.3)
        for y in years:
            rows.append(dict(la_code=c, la_name=c, year=y, **{o.measure: level + slope * (y - 2013)
                                                              + rng.normal(0, 0.5)}))
    panel = pd.DataFrame(rows)
    df = panel.assign(first_treated=panel["la_code"].map(treated).fillna(0).astype("int64"))
    res = sdid(df, outcome=o.measure, unit="la_code", time="year", first_treated="first_treated",
               estimator="sdid", inference="none")
    w = res.unit_weights
    fake_results["sdid_weights"] = pd.DataFrame({"outcome": OUTCOME, "la_code": w.index, "weight": w.values})
    means = panel.assign(group=np.where(panel["la_code"].isin(list(treated)), "pilots", "comparators"))
    fake_results["trends"] = (means.groupby(["year", "group"])[o.measure].mean().rename("mean").reset_index()
                              .assign(outcome=OUTCOME, n_las=1))
    monkeypatch.setattr(R, "processed", lambda name: panel)
    monkeypatch.setattr(R, "design", lambda: d)
    # the design's treated pilots start in different years; the synthetic panel has one onset
    monkeypatch.setattr(type(d), "treated", lambda self, outcome, spec=None: treated)
    fit = R.pre_fit(OUTCOME)
    assert fit["sdid_rmse"] == pytest.approx(res.pre_rmse, rel=1e-9)
    # matched: the RMSE of pilots minus comparators around its pre-period mean
    tr = fake_results["trends"].pivot(index="year", columns="group", values="mean")
    gap = (tr["pilots"] - tr["comparators"]).loc[[2013, 2014]]
    assert fit["matched_rmse"] == pytest.approx(float(np.sqrt(((gap - gap.mean()) ** 2).mean())))
    top = R.sdid_top_weights(OUTCOME, n=5)
    assert len(top) == 5
    assert list(top["Donor LA"]) == list(w.sort_values(ascending=False).index[:5])   # names: codes here


# --------------------------------------------------------------------------- each pilot alone

def _pilot_effects() -> pd.DataFrame:
    d = design()
    prim = [o for o in d.outcomes if o.primary]
    code = d.pilots[0].la_code
    plac = np.linspace(-3, 3, 40)
    return pd.DataFrame([dict(outcome=prim[0].id, la_code=code, la_name="x", estimate=4.2, ci_low=1.0,
                              ci_high=7.5, p_value=1 / 41, pre_rmse=0.31, onset=2015, n_placebo=40,
                              placebo_estimates=";".join(f"{x:.6g}" for x in plac))]), code, prim


def test_pilot_table_and_figure_show_its_own_estimate(fake_results):
    pe, code, prim = _pilot_effects()
    fake_results["pilot_effects"] = pe
    ev = fake_results["evidence"]
    fake_results["evidence"] = pd.concat([ev, pd.DataFrame([dict(outcome=prim[0].id, onset="wave1", estimate=1.0,
                                                                 ci_low=-1.0, ci_high=2.0, n_sensitivity=9,
                                                                 grade="no")])])
    table = R.pilot_estimates_table(code)
    assert list(table["Outcome"]) == [o.label for o in prim]
    row = table.iloc[0]
    assert row["Estimate"] == "+4.2" and row["95% placebo interval"] == "1.0 to 7.5"
    assert row["Interval width (pooled)"] == "6.5 (3.0)"
    assert row["Pre-period RMSE"] == "0.31"
    # the other primary outcomes have no estimate here, and say why
    assert all(r["95% placebo interval"] == "" and r["Estimate"] for _, r in table.iloc[1:].iterrows())
    fig = R.placebo_plot(code)
    ax = fig.axes[0]
    line = [ln for ln in ax.lines if ln.get_gid() == f"estimate:{prim[0].id}"]
    assert len(line) == 1 and line[0].get_xdata()[0] == pytest.approx(4.2)
    assert sum(p.get_height() for p in ax.patches) == 40          # every donor's placebo counted
    text = R.pilot_noise_markdown(code)
    assert "noisy" in text and "6.5" in text and "no of 40" not in text
    assert re.search(r"none of the 40 donors", text)                  # p = 1/41: none as far from zero
