"""Time the whole study run and the wild bootstrap on the real matched panel.

Usage: python benchmarks/results_speed.py [--runs 3]

1. ``python -m analysis results`` with the design's default draws (9,999 wild
   bootstrap, 5,000 randomization), fresh process, median of ``--runs``
   (issue target: under 60 s). Needs ``data/processed/panel.csv``.
2. Our wild cluster bootstrap (9,999 draws) against pyfixest's ``wildboottest``
   on the same TWFE model fitted to the real matched panel of the main
   re-referrals analysis (by ``benchmarks/wild_bootstrap_speed.py --panel``).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def matched_panel_csv(path: Path) -> None:
    """Write the real estimation sample of the main re-referrals analysis (unweighted columns)."""
    from analysis.design import load_design
    from analysis.ingest.panel import load_panel
    from analysis.run.study import MAIN, Run, run_one

    panel = load_panel()
    design = load_design(known_measures=set(panel.columns))
    o = design.outcome("rereferrals")
    sample = run_one(panel, design, Run(o.id, MAIN), full=False).est_sample
    sample[["la_code", "year", o.measure, "first_treated"]].dropna().rename(
        columns={o.measure: "y", "la_code": "unit"}).to_csv(path, index=False)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    times = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "analysis", "results", "--out", tmp],
                                  cwd=ROOT, capture_output=True, text=True)
            if proc.returncode:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            times.append(time.perf_counter() - t0)
            print(f"results run {i + 1}: {times[-1]:.1f} s")
    print(f"python -m analysis results, median of {len(times)}: {statistics.median(times):.1f} s "
          "(target < 60 s)")
    with tempfile.TemporaryDirectory() as tmp:
        csv = Path(tmp) / "matched.csv"
        matched_panel_csv(csv)
        env = {**os.environ, "OPENBLAS_NUM_THREADS": "1"}
        proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "wild_bootstrap_speed.py"),
                               "--panel", str(csv), "--outcome", "y", "--unit", "unit",
                               "--time", "year", "--first-treated", "first_treated"],
                              cwd=ROOT, env=env, capture_output=True, text=True)
        print("wild bootstrap on the real matched panel (re-referrals, main):")
        print(proc.stdout.strip() or proc.stderr.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
