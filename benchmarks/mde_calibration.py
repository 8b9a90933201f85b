"""Check that the reported minimum detectable effect (MDE) is found 80% of the time (issue 13).

The study finds each MDE by simulation (:mod:`analysis.methods.mde`): panels shaped
like the real matched sample, one wild bootstrap per panel, the whole power curve from
the p-value's affine form. This script checks it the slow, direct way, on fresh panels
with a different seed. For each primary outcome, the main specification's estimation
sample is rebuilt from the real panel (its LAs, years, cohorts, matching weights and
missing cells); each simulated panel keeps the real LA and year effects, draws AR(1)
noise with each LA's own SD and the real serial correlation (the noise model of the
study), plants the MDE reported in ``results/evidence.csv`` on the pilots' treated
years, and runs the primary inference (restricted wild cluster bootstrap, the design's
weights, its own draws per panel) at 5%, two-sided. The share of panels in which the
effect is found should be 80% (goal: 80% +/- 5).

    python benchmarks/mde_calibration.py [--panels 500] [--draws 999] [--outcome ID ...] [--grid]

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
from analysis.methods.estimation import FWLDesign, Panel, prepare_panel
from analysis.methods.inference import WildClusterBootstrap
from analysis.methods.mde import NoiseModel, noise_model
from analysis.run.study import MAIN, Run, run_one

#: Added to the design's seed, so the panels and draws here are not the study's.
SEED_OFFSET = 7_000_003


def simulate(panel: Panel, model: NoiseModel, effect: float, panels: int, draws: int, weight: str,
             seed: int) -> float:
    """Share of simulated panels in which the planted effect is found at 5%, two-sided."""
    rng = np.random.default_rng(seed)
    li, ti = panel.unit_index, panel.time_index
    base = model.unit_effects[li] + model.period_effects[ti]
    treated = np.asarray(panel.treatment, float)
    sd, rho, T = model.unit_sd, model.rho, panel.n_periods
    found = 0
    for s in range(panels):
        e = np.empty((panel.n_units, T))
        e[:, 0] = rng.normal(0, 1, panel.n_units) * sd
        for t in range(1, T):  # stationary AR(1): each LA's own SD, the real correlation
            e[:, t] = rho * e[:, t - 1] + rng.normal(0, 1, panel.n_units) * sd * math.sqrt(1 - rho ** 2)
        sim = panel.with_outcome(base + e[li, ti] + effect * treated)
        design = FWLDesign.build(sim, sim.treatment[:, None], ["treated"])
        wb = WildClusterBootstrap(design, np.ones((1, 1)), draws=draws, weight_type=weight, seed=seed + 1 + s)
        found += wb.pvalue(0.0) <= 0.05
    return found / panels


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
        est = prepare_panel(sample, outcome=o.measure, unit="la_code", time="year",
                            first_treated="first_treated", weights="weight")
        model = noise_model(est)
        seed = design.inference.seed + SEED_OFFSET
        t0 = time.perf_counter()
        share = simulate(est, model, mde, args.panels, args.draws, weight, seed)
        secs = time.perf_counter() - t0
        sd, rho = model.rms_sd, model.rho
        ok &= abs(share - 0.8) <= 0.05 + 1e-9
        print(f"{oid:<24}{mde:>9.3f}{sd:>10.3f}{rho:>8.2f}{100 * share:>8.1f}%{secs:>9.1f}")
        if args.grid:
            mult = [0.6, 0.7, 0.8, 0.9, 1.0, 1.1, 1.2, 1.3, 1.4]
            found = [share if m == 1.0 else simulate(est, model, m * mde, args.panels, args.draws, weight, seed)
                     for m in mult]
            at80 = float(np.interp(0.8, found, [m * mde for m in mult])) if found[0] < 0.8 < found[-1] else math.nan
            print("    found at " + ", ".join(f"{m:.1f}x {100 * f:.0f}%" for m, f in zip(mult, found))
                  + f"; 80% at about {at80:.3f} ({at80 / mde:.2f} x the reported MDE)")
    print("all within 80% +/- 5" if ok else "NOT all within 80% +/- 5")
    return 0


if __name__ == "__main__":
    sys.exit(main())
