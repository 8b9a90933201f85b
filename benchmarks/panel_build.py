"""Time `python -m analysis data` from a clean cache with the mirror (issue target: < 30 s).

Usage: SOS_DATA_MIRROR=../shared/data/sources python benchmarks/panel_build.py [--runs 3]

Each run uses a new empty cache folder (so every file is copied from the mirror
and its sha256 checked) and a new output folder, in a fresh Python process.
Prints each run's wall time and the median.
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if not os.environ.get("SOS_DATA_MIRROR"):
        print("set SOS_DATA_MIRROR to the data mirror", file=sys.stderr)
        return 2
    times = []
    for i in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp:
            env = {**os.environ, "SOS_DATA_CACHE": str(Path(tmp) / "cache")}
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "analysis", "data", "--out", str(Path(tmp) / "out")],
                                  cwd=ROOT, env=env, capture_output=True, text=True)
            elapsed = time.perf_counter() - t0
            if proc.returncode != 0:
                print(proc.stderr, file=sys.stderr)
                return proc.returncode
            times.append(elapsed)
            print(f"run {i + 1}: {elapsed:.1f} s (clean cache, mirror)")
    print(f"median of {len(times)} runs: {statistics.median(times):.1f} s  (target < 30 s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
