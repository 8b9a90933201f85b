"""Speed of our wild cluster bootstrap against pyfixest's ``wildboottest``.

Same TWFE model (outcome on the treatment indicator with unit and period fixed
effects, clustered by unit), same test (coefficient = 0, WCR, Rademacher
weights, 9,999 draws). Each side is timed from a fitted model to the p-value:
ours builds the fixed-effects projection and the bootstrap from a prepared
panel; pyfixest's starts from its ``feols`` fit. One warm-up call each (numba
compiles pyfixest's kernels on first use) is excluded; the median of the
following runs is reported. The p-values use different random draws, so they
agree up to Monte Carlo error (sd about sqrt(p(1-p)/9999) each).

Usage: python benchmarks/wild_bootstrap_speed.py [--panel PANEL.csv --outcome COL
       --unit COL --time COL --first-treated COL] [--runs 5] [--draws 9999]
Default panel: simulated, 150 units x 13 years, 10 treated.
"""
from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import argparse
import math
import statistics
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analysis.methods.estimation import prepare_panel, simulate_panel  # noqa: E402
from analysis.methods.inference import wild_cluster_bootstrap  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--panel", default=None, help="long panel CSV (default: simulated)")
    ap.add_argument("--outcome", default="y")
    ap.add_argument("--unit", default="unit")
    ap.add_argument("--time", default="year")
    ap.add_argument("--first-treated", dest="first_treated", default="first_treated")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--draws", type=int, default=9999)
    a = ap.parse_args()
    import pyfixest as pf

    if a.panel:
        df = pd.read_csv(a.panel)
        source = a.panel
    else:
        df = simulate_panel(150, 13, cohorts={2016: 5, 2020: 5}, effect=0.3, seed=1)
        source = "simulated panel"
    cols = dict(outcome=a.outcome, unit=a.unit, time=a.time, first_treated=a.first_treated)
    panel = prepare_panel(df, **cols)
    # pyfixest on exactly the rows we use (missing outcomes dropped)
    d = pd.DataFrame({"y": panel.y, "uid": panel.unit_index.astype(np.int64),
                      "tid": panel.time_index.astype(np.int64), "D": panel.treatment})
    fit = pf.feols("y ~ D | uid + tid", data=d, vcov={"CRV1": "uid"})

    def ours(seed: int):
        p = panel.with_outcome(panel.y)      # fresh copy; the FE basis is rebuilt below
        p.__dict__.pop("fe_basis", None)
        p.__dict__.pop("cluster_matrix", None)
        return wild_cluster_bootstrap(p, draws=a.draws, seed=seed, ci=False).p_value

    def theirs(seed: int):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return float(fit.wildboottest(param="D", reps=a.draws, seed=seed)["Pr(>|t|)"])

    def timed(f, seed):
        t0 = time.perf_counter()
        pv = f(seed)
        return time.perf_counter() - t0, pv

    timed(ours, 0), timed(theirs, 0)             # warm-up
    t_ours, p_ours, t_theirs, p_theirs = [], [], [], []
    for r in range(1, a.runs + 1):
        t, pv = timed(ours, r)
        t_ours.append(t)
        p_ours.append(pv)
        t, pv = timed(theirs, r)
        t_theirs.append(t)
        p_theirs.append(pv)
    mo, mt = statistics.median(t_ours), statistics.median(t_theirs)
    po, pt = float(np.mean(p_ours)), float(np.mean(p_theirs))
    mcse = math.sqrt(max(po * (1 - po), 1e-4) / (a.draws * a.runs)) * math.sqrt(2)
    print(f"Wild cluster bootstrap (WCR, Rademacher, {a.draws} draws), {source}: "
          f"{panel.n_units} units ({panel.n_treated} treated), {panel.n_obs} observations")
    print(f"  ours (analysis.methods.inference):     median {mo:.3f} s over {a.runs} runs, "
          f"p-value mean {po:.4f}")
    print(f"  pyfixest wildboottest:         median {mt:.3f} s over {a.runs} runs, "
          f"p-value mean {pt:.4f}")
    print(f"  speed ratio pyfixest / ours:   {mt / mo:.1f}x "
          f"({'ours at least as fast' if mo <= mt else 'ours SLOWER'})")
    agree = abs(po - pt) <= 4 * mcse + 1e-9
    print(f"  p-values differ by {abs(po - pt):.4f} (4 MC s.e. = {4 * mcse:.4f}): "
          f"{'agree' if agree else 'DISAGREE'}")
    t_ci = timed(lambda s: wild_cluster_bootstrap(panel, draws=a.draws, seed=s), 1)[0]
    print(f"  ours with the interval by test inversion as well: {t_ci:.3f} s")


if __name__ == "__main__":
    main()
