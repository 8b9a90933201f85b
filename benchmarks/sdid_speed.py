"""Speed of our synthetic DiD against synthdid-py (the port of the reference R package).

Panel shaped like the study: 140 local authorities x 13 years, 10 treated from
one onset, outcomes from unit and year effects, two interactive factors and
AR(1) noise. Each side is timed from the long panel to the estimate and its
placebo standard error (200 draws, same seed): ours is ``sdid``;
synthdid-py's is ``panel_matrices`` + ``synthdid_estimate`` + ``placebo_se``.
Both draw the same permutations from ``numpy.random.default_rng(seed)``, so
the two standard errors agree to rounding; the script checks it. The median
of ``--runs`` runs each is reported.

Then ``per_unit_placebo`` for 11 pilots (10 from one onset, 1 from a later
one) against 130 never-treated donors: every pilot's estimate and the 130
donor placebos of each onset (SDID and SC), median of ``--runs`` runs.

Usage: python benchmarks/sdid_speed.py [--runs 5] [--ref-runs 5] [--draws 200]
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.methods.sdid import per_unit_placebo, sdid  # noqa: E402

COLS = dict(outcome="y", unit="unit", time="year", first_treated="first_treated")


def simulate(n_units: int, onsets: dict[int, int], n_years: int = 13, start: int = 2011,
             effect: float = 0.5, seed: int = 1) -> pd.DataFrame:
    """Long panel: the last units are treated, ``onsets`` = {first treated year: count}."""
    rng = np.random.default_rng(seed)
    T = n_years
    u = np.empty((n_units, T))
    u[:, 0] = rng.normal(0, 1, n_units)
    for t in range(1, T):
        u[:, t] = 0.5 * u[:, t - 1] + rng.normal(0, np.sqrt(0.75), n_units)
    y = (rng.normal(50, 10, (n_units, 1)) + np.cumsum(rng.normal(0, 1, T))[None]
         + 2 * rng.normal(0, 1, (n_units, 2)) @ rng.normal(0, 1, (2, T)) + 1.5 * u)
    first = np.full(n_units, np.nan)
    k = n_units
    for year, m in sorted(onsets.items(), reverse=True):
        first[k - m:k] = year
        k -= m
    years = np.arange(start, start + T)
    y = y + effect * (years[None] >= first[:, None])
    return pd.DataFrame({"unit": np.repeat([f"LA{i:03d}" for i in range(n_units)], T),
                         "year": np.tile(years, n_units), "y": y.ravel(),
                         "first_treated": np.repeat(first, T)})


def timed(fn, runs: int):
    """Median seconds over ``runs`` calls and the last result."""
    times, out = [], None
    for _ in range(runs):
        t = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--ref-runs", type=int, default=None,
                    help="runs of synthdid-py (default --runs; each takes about a minute)")
    ap.add_argument("--draws", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    import synthdid

    df = simulate(140, {2017: 10})
    print(f"panel: 140 units x 13 years, 10 treated from 2017; placebo SE with {a.draws} draws")

    def ours():
        return sdid(df, **COLS, draws=a.draws, seed=a.seed)

    def reference():
        d = df.assign(treated=(df.year >= df.first_treated).astype(int))
        p = synthdid.panel_matrices(d, unit="unit", time="year", outcome="y",
                                    treatment="treated")
        est = synthdid.synthdid_estimate(p.Y, p.N0, p.T0)
        return float(est), synthdid.placebo_se(est, a.draws, random_state=a.seed)

    t_ours, res = timed(ours, a.runs)
    t_ref, (ref_est, ref_se) = timed(reference, a.ref_runs or a.runs)
    print(f"ours         median {t_ours:8.2f} s   estimate {res.estimate:.6f}  "
          f"se {res.std_error:.6f}")
    print(f"synthdid-py  median {t_ref:8.2f} s   estimate {ref_est:.6f}  se {ref_se:.6f}")
    print(f"ratio synthdid-py / ours: {t_ref / t_ours:.1f}x   |diff| estimate "
          f"{abs(res.estimate - ref_est):.1e}, se {abs(res.std_error - ref_se):.1e}")

    pilots = simulate(141, {2015: 10, 2018: 1}, seed=2)
    print("\nper_unit_placebo: 11 pilots (10 from 2015, 1 from 2018) x 130 donors")
    for est in ("sdid", "sc"):
        t, out = timed(lambda: per_unit_placebo(pilots, **COLS, estimator=est), a.runs)
        print(f"  {est:4s} median {t:6.2f} s per outcome ({int(out.n_placebo.iloc[0])} placebos "
              f"per pilot, {out.onset.nunique()} onsets); x 4 outcomes = {4 * t:.1f} s")


if __name__ == "__main__":
    main()
