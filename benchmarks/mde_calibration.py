"""Check that the reported minimum detectable effect (MDE) is found 80% of the time (issue 13).

For each primary outcome, the main specification's matched estimation sample is
rebuilt from the real panel (its LAs, years, cohorts, matching weights and
missing cells). Its noise is estimated from the real data: the residuals of a
two-way fixed effects fit on the untreated cells give the standard deviation and
the first-order serial correlation within an LA. Each simulated panel keeps the
real LA and year effects, draws AR(1) noise with that standard deviation and
correlation, and plants the MDE reported in ``results/evidence.csv`` on the
pilots' treated years. The primary inference (restricted wild cluster bootstrap,
the design's weights) then tests for an effect at 5%, two-sided. The share of
panels in which it is found should be 80% (goal: 80% +/- 5).

    python benchmarks/mde_calibration.py [--panels 500] [--draws 999] [--outcome ID ...]

Reads ``results/evidence.csv`` and ``data/processed/panel.csv`` (or the
``SOS_RESULTS_DIR`` / ``SOS_PROCESSED_DIR`` folders): run ``make report`` first.
"""
from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import pandas as pd

from analysis.core.paths import PROCESSED_DIR, RESULTS_DIR
from analysis.design import load_design
from analysis.ingest.panel import load_panel
from analysis.methods.estimation import FWLDesign, prepare_panel
from analysis.methods.inference import WildClusterBootstrap
from analysis.run.study import MAIN, Run, run_one


def noise_model(sample: pd.DataFrame, measure: str) -> tuple[pd.Series, pd.Series, pd.Series, float]:
    """LA effects, year effects, each LA's residual SD and the AR(1) correlation of the real sample.

    The residuals are those of the difference-in-differences fit itself (LA and year
    effects and the treated cells' average effect) over every cell of the estimation
    sample, so the pilots' post-period departures from their average effect (the
    heterogeneity the wild bootstrap's null distribution carries) count as noise.
    """
    s = sample[sample[measure].notna()]
    y = s[measure].to_numpy(float)
    la, yr = s["la_code"], s["year"]
    d = ((s["first_treated"] > 0) & (s["year"] >= s["first_treated"])).to_numpy(float)
    a, g, tau = pd.Series(0.0, index=la.unique()), pd.Series(0.0, index=yr.unique()), 0.0
    for _ in range(500):  # alternating projections: two-way fixed effects and the DiD effect
        g = pd.Series(y - tau * d - a[la].to_numpy(), index=yr.to_numpy()).groupby(level=0).mean()
        a_new = pd.Series(y - tau * d - g[yr].to_numpy(), index=la.to_numpy()).groupby(level=0).mean()
        tau_new = float(np.sum(d * (y - a_new[la].to_numpy() - g[yr].to_numpy())) / max(d.sum(), 1.0))
        done = np.max(np.abs(a_new - a.reindex(a_new.index))) < 1e-10 and abs(tau_new - tau) < 1e-10
        a, tau = a_new, tau_new
        if done:
            break
    resid = y - tau * d - a[la].to_numpy() - g[yr].to_numpy()
    k = la.nunique() + yr.nunique()
    sd = math.sqrt(np.sum(resid ** 2) / max(len(resid) - k, 1))
    r = s.assign(e=resid).sort_values(["la_code", "year"])
    lagged = r.groupby("la_code")["e"].shift()
    ok = lagged.notna() & (r["year"] - r.groupby("la_code")["year"].shift() == 1)
    rho = float(np.corrcoef(r.loc[ok, "e"], lagged[ok])[0, 1]) if ok.sum() > 2 else 0.0
    years = sorted(sample["year"].unique())
    g = g.reindex(years).fillna(g.mean())
    a = a.reindex(sample["la_code"].unique()).fillna(a.mean())
    # Each LA's own residual SD (small LAs are noisier than large ones), shrunk towards the
    # pooled SD with the weight of two observations so a short series cannot make it zero.
    ss = r.groupby("la_code")["e"].agg(lambda e: float(np.sum(e ** 2)))
    n = r.groupby("la_code")["e"].size()
    sd_la = np.sqrt((ss + 2 * sd ** 2) / (n + 2)).reindex(a.index).fillna(sd)
    return a, g, sd_la, rho


def simulate(sample: pd.DataFrame, measure: str, effect: float, panels: int, draws: int, weight: str,
             seed: int) -> tuple[float, float, float]:
    """Share of simulated panels in which the planted effect is found at 5%, and the noise model."""
    a, g, sd, rho = noise_model(sample, measure)
    rng = np.random.default_rng(seed)
    las = list(a.index)
    years = list(g.index)
    pos_la = {c: i for i, c in enumerate(las)}
    pos_yr = {y: i for i, y in enumerate(years)}
    li = sample["la_code"].map(pos_la).to_numpy()
    ti = sample["year"].map(pos_yr).to_numpy()
    treated_cell = ((sample["first_treated"] > 0) & (sample["year"] >= sample["first_treated"])).to_numpy()
    base = a.to_numpy()[li] + g.to_numpy()[ti]
    found = 0
    for s in range(panels):
        e = np.empty((len(las), len(years)))
        sd_i = sd.to_numpy()
        e[:, 0] = rng.normal(0, 1, len(las)) * sd_i
        for t in range(1, len(years)):  # stationary AR(1): each LA's own SD, the real correlation
            e[:, t] = rho * e[:, t - 1] + rng.normal(0, 1, len(las)) * sd_i * math.sqrt(1 - rho ** 2)
        sim = sample.assign(**{measure: base + e[li, ti] + effect * treated_cell})
        p = prepare_panel(sim, outcome=measure, unit="la_code", time="year", first_treated="first_treated",
                          weights="weight")
        design = FWLDesign.build(p, p.treatment[:, None], ["treated"])
        wb = WildClusterBootstrap(design, np.ones((1, 1)), draws=draws, weight_type=weight, seed=seed + s)
        found += wb.pvalue(0.0) <= 0.05
    return found / panels, float(np.sqrt(np.mean(sd.to_numpy() ** 2))), rho


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--panels", type=int, default=500)
    ap.add_argument("--draws", type=int, default=999)
    ap.add_argument("--outcome", nargs="*", default=None, help="outcome ids (default: the primary outcomes)")
    ap.add_argument("--grid", action="store_true",
                    help="also the share found at 0.6-1.4 x the MDE, and the effect found 80%% of the time")
    args = ap.parse_args(argv)
    evidence = pd.read_csv(RESULTS_DIR / "evidence.csv")
    panel = load_panel(PROCESSED_DIR / "panel.csv")
    design = load_design(known_measures=set(panel.columns))
    ids = args.outcome or [o.id for o in design.outcomes if o.primary and o.id in set(evidence["outcome"])]
    weight = design.inference.wild_bootstrap.weights[0]
    print(f"MDE calibration: {args.panels} simulated panels per outcome, wild bootstrap ({weight}, "
          f"{args.draws} draws), 5% two-sided; goal: the reported MDE found in 80% +/- 5")
    print(f"{'outcome':<24}{'MDE':>9}{'noise SD':>10}{'AR(1)':>8}{'found':>9}{'seconds':>9}")
    ok = True
    for oid in ids:
        o = design.outcome(oid)
        mde = float(evidence.set_index("outcome").loc[oid, "mde"])
        sample = run_one(panel, design, Run(oid, MAIN), full=False).est_sample
        t0 = time.perf_counter()
        share, sd, rho = simulate(sample, o.measure, mde, args.panels, args.draws, weight, design.inference.seed)
        secs = time.perf_counter() - t0
        ok &= abs(share - 0.8) <= 0.05
        print(f"{oid:<24}{mde:>9.3f}{sd:>10.3f}{rho:>8.2f}{100 * share:>8.1f}%{secs:>9.1f}")
        if args.grid:
            mult = [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]
            found = [share if m == 1.0 else simulate(sample, o.measure, m * mde, args.panels, args.draws, weight,
                                                     design.inference.seed)[0] for m in mult]
            at80 = float(np.interp(0.8, found, [m * mde for m in mult])) if found[0] < 0.8 < found[-1] else math.nan
            print("    found at " + ", ".join(f"{m:.1f}x {100 * f:.0f}%" for m, f in zip(mult, found))
                  + f"; 80% at about {at80:.3f} ({at80 / mde:.2f} x the reported MDE)")
    print("all within 80% +/- 5" if ok else "NOT all within 80% +/- 5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
