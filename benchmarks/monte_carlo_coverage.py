"""Monte Carlo coverage of nominal 95% intervals for the TWFE DiD estimate.

Design (as in the evaluation): 150 units, of which 10 treated (5 from the 4th
and 5 from the 8th of 13 years, units drawn at random each replication), unit
effects N(0, 1), AR(1) errors with rho = 0.5 (stationary, innovation sd 1), a
constant treatment effect of 1. Each replication reports whether three
intervals cover the true effect:

* cluster-robust: CR1 by unit, t(G-1) (the conventional interval);
* wild cluster bootstrap: WCR, Rademacher, 999 draws (not the 9,999 default,
  to keep the run to a few minutes), interval by test inversion;
* randomization inference: 999 random placebo assignments (not the 5,000
  default, same reason), interval by inverting a constant additive effect.

Usage: python benchmarks/monte_carlo_coverage.py [--reps 500] [--draws 999]
       [--workers 2] [--seed 1]
Prints coverage with Monte Carlo standard errors and the run time. Target:
wild bootstrap and randomization coverage between 93% and 97%.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # one BLAS thread per worker

import argparse
import math
import sys
import time
from multiprocessing import Pool
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.methods.estimation import prepare_panel, simulate_panel  # noqa: E402
from analysis.methods.inference import randomization_inference, wild_cluster_bootstrap  # noqa: E402

N_UNITS, N_YEARS, EFFECT, RHO = 150, 13, 1.0, 0.5
COHORTS = {2016: 5, 2020: 5}
_BASE = None


def _base():
    global _BASE
    if _BASE is None:
        d = simulate_panel(N_UNITS, N_YEARS, cohorts=COHORTS, seed=0)
        _BASE = prepare_panel(d, outcome="y", unit="unit", time="year",
                              first_treated="first_treated")
        _BASE.fe_basis  # computed once per worker, shared by every replication
    return _BASE


def replicate(args: tuple[int, int]) -> tuple[int, int, int, float, float, float]:
    """One replication: (covered cluster, covered WB, covered RI, widths...)."""
    seed, draws = args
    rng = np.random.default_rng(seed)
    base = _base()
    g = rng.permutation(base.first_treated)            # new treated units and timing
    p = base.with_first_treated(g)
    u = np.empty((N_UNITS, N_YEARS))
    u[:, 0] = rng.normal(0, 1 / math.sqrt(1 - RHO ** 2), N_UNITS)
    e = rng.normal(size=(N_UNITS, N_YEARS))
    for t in range(1, N_YEARS):
        u[:, t] = RHO * u[:, t - 1] + e[:, t]
    y = (rng.normal(size=N_UNITS)[p.unit_index] + u[p.unit_index, p.time_index]
         + 0.1 * p.time_index + EFFECT * p.treatment)
    p = p.with_outcome(y)
    from scipy import stats

    from analysis.methods.estimation import FWLDesign
    d = FWLDesign.build(p, p.treatment[:, None], ["D"])
    b, se = d.beta[0], math.sqrt(d.vcov[0, 0])
    c = stats.t(N_UNITS - 1).ppf(0.975)
    cl = (b - c * se <= EFFECT <= b + c * se)
    wb = wild_cluster_bootstrap(p, draws=draws, seed=seed)
    ri = randomization_inference(p, draws=draws, seed=seed)
    return (int(cl), int(wb.ci_low <= EFFECT <= wb.ci_high),
            int(ri.ci_low <= EFFECT <= ri.ci_high), 2 * c * se, wb.ci_high - wb.ci_low,
            ri.ci_high - ri.ci_low)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=500)
    ap.add_argument("--draws", type=int, default=999)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    t0 = time.perf_counter()
    seeds = [(a.seed * 1_000_003 + r, a.draws) for r in range(a.reps)]
    if a.workers > 1:
        with Pool(a.workers) as pool:
            out = pool.map(replicate, seeds, chunksize=10)
    else:
        out = [replicate(s) for s in seeds]
    res = np.array(out, float)
    dt = time.perf_counter() - t0
    print("Monte Carlo coverage of nominal 95% intervals, TWFE DiD")
    print(f"  {a.reps} replications; {N_UNITS} units ({sum(COHORTS.values())} treated: "
          f"cohorts {COHORTS}), {N_YEARS} years, unit effects + AR(1) errors rho={RHO}, "
          f"effect {EFFECT}")
    print(f"  wild bootstrap and randomization with {a.draws} draws each (defaults "
          "9,999 and 5,000; fewer here for run time)")
    names = ["cluster-robust (CR1, t(G-1))", "wild cluster bootstrap (WCR, Rademacher)",
             "randomization inference"]
    for j, name in enumerate(names):
        cov = res[:, j].mean()
        mcse = math.sqrt(cov * (1 - cov) / a.reps)
        print(f"  {name:<42} coverage {100 * cov:5.1f}%  (MC s.e. {100 * mcse:.1f})  "
              f"mean width {res[:, 3 + j].mean():.3f}")
    ok = all(0.93 <= res[:, j].mean() <= 0.97 for j in (1, 2))
    print(f"  target 93-97% for wild bootstrap and randomization: {'met' if ok else 'NOT met'}")
    print(f"  run time {dt:.0f} s with {a.workers} worker(s)")


if __name__ == "__main__":
    main()
