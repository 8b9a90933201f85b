"""Time a clean `make report` (issue target: under 3 minutes on this machine).

Usage: SOS_DATA_MIRROR=../shared/data/sources python benchmarks/report_build.py [--runs N]

"Clean" means: the downloaded data stay cached (``data/raw/``), but before each
run the book's build folder (``_build/``, with the doctrees and executed
notebooks) and the computed results (``results/``, with its run cache; committed
files such as ``results/published/`` are kept) are deleted, so the results are
computed from scratch and every chapter is executed. Each run is a fresh ``make report``;
the script prints each run's wall time and the median. It deletes ``_build/``
and ``results/`` of the checkout it lives in: run it where nobody is working
(a fresh clone, as ``.ci/run`` is).
"""
from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CLEAN = ("_build", "results")
TARGET_S = 180.0


def _tracked_entries(folder: Path) -> set[str]:
    """Top-level entries of ``folder`` that hold files under version control (kept)."""
    try:
        out = subprocess.run(["git", "ls-files", "-z", "--", str(folder.relative_to(ROOT))],
                             cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return {"published"}  # not a git checkout: keep the published edition
    rel = folder.relative_to(ROOT).parts
    return {Path(f).parts[len(rel)] for f in out.split("\0") if f and len(Path(f).parts) > len(rel)}


def clean() -> None:
    """Delete the build and the computed results, keeping anything committed."""
    for name in CLEAN:
        path = ROOT / name
        if not path.exists():
            continue
        if path.is_file():
            path.unlink()
            continue
        keep = _tracked_entries(path)
        for child in path.iterdir():
            if child.name in keep:
                continue
            if child.is_dir() and not child.is_symlink():
                shutil.rmtree(child)
            else:
                child.unlink()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="number of clean builds (default 1: each takes minutes)")
    parser.add_argument("--make", default="make", help="make program (default: make)")
    args = parser.parse_args()
    times = []
    for i in range(args.runs):
        clean()
        t0 = time.perf_counter()
        proc = subprocess.run([args.make, "report"], cwd=ROOT, capture_output=True, text=True)
        elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
            print(f"run {i + 1}: make report failed (exit {proc.returncode}) after {elapsed:.1f} s", file=sys.stderr)
            return proc.returncode
        times.append(elapsed)
        print(f"run {i + 1}: {elapsed:.1f} s (clean _build/ and results/, data cached)", flush=True)
    med = statistics.median(times)
    verdict = "within" if med < TARGET_S else "OVER"
    print(f"median of {len(times)} run(s): {med:.1f} s  ({verdict} the {TARGET_S:.0f} s target)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
