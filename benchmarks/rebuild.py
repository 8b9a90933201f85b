"""Time `make report`: clean, warm with nothing changed, and after a one-value data change.

Usage: SOS_DATA_MIRROR=../shared/data/sources python benchmarks/rebuild.py [--warm 5] [--changes 2]

Targets (issue 5): warm with nothing changed under 20 s; after a one-value data
change, under the clean-build time.

Everything runs in a scratch copy of the project (``--workdir``, default a
temporary folder; deleted afterwards unless ``--keep``), so the checkout's
``_build/``, ``results/`` and ``data/`` are not touched and nobody working in it
is disturbed. The copy shares this checkout's ``.venv`` (a link) and imports its
own ``analysis/`` (``PYTHONPATH``, also for the chapters' kernels). Its data
come from a scratch mirror of links to the verified files, a copy of the
manifest and an empty cache (``SOS_DATA_MIRROR``, ``SOS_DATA_MANIFEST``,
``SOS_DATA_CACHE``).

1. **clean**: no ``_build/``, no ``data/processed/``, no computed results (the
   committed published edition is kept), an empty data cache: ``make report``.
2. **warm**: ``make report`` again, ``--warm`` times, nothing changed.
3. **one-value change**: Brent's 2015 re-referral percentage in the C1 file is
   set to another value in the mirror and the manifest copy records the new
   sha256 (a data update is one manifest edit), then ``make report``;
   ``--changes`` times, alternating between two values, so each run is a real
   change from the previous one.

Prints each run's wall time with what the build said it did, then the medians.
"""
from __future__ import annotations

import argparse
import csv
import io
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

COPY_SKIP = {".venv", "_build", ".git", ".pytest_cache", "__pycache__", "raw", "processed",
             "sos_evaluation.egg-info", ".ipynb_checkpoints"}
WARM_TARGET_S = 20.0
BRENT, YEAR, COLUMN = "E09000005", "2015", "rereferral_percent"


def copy_project(dest: Path) -> None:
    def ignore(folder: str, names: list[str]) -> set[str]:
        skip = {n for n in names if n in COPY_SKIP}
        if Path(folder).resolve() == (ROOT / "results").resolve():
            skip |= {n for n in names if n != "published"}
        return skip

    shutil.copytree(ROOT, dest, ignore=ignore, symlinks=True)
    (dest / ".venv").symlink_to(ROOT / ".venv")


def scratch_data(work: Path):
    from analysis.ingest.sources import MANIFEST_COLUMNS, fetch, load_manifest

    sources = load_manifest(ROOT / "data" / "manifest.csv")
    mirror, cache = work / "mirror", work / "cache"
    for sid, s in sources.items():
        dest = mirror / s.path
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(fetch(s))  # the verified file (fetched into data/raw if needed)
    cache.mkdir()
    manifest = work / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=MANIFEST_COLUMNS)
        w.writeheader()
        for s in sources.values():
            w.writerow({c: getattr(s, c) for c in MANIFEST_COLUMNS})
    return sources, mirror, cache, manifest


def set_c1_value(sources, mirror: Path, manifest: Path, value: str) -> str:
    """Write the C1 file with Brent's value changed into the mirror and record it in the manifest."""
    from analysis.ingest.sources import sha256_of

    src = sources["cin_c1"]
    path = mirror / src.path
    original = Path(os.path.realpath(path)) if path.is_symlink() else None
    text = (original or path).read_text(encoding="utf-8")
    rows = list(csv.reader(io.StringIO(text)))
    head = rows[0]
    iy, ic, il, iv = (head.index("time_period"), head.index("new_la_code"),
                      head.index("geographic_level"), head.index(COLUMN))
    (row,) = [r for r in rows[1:] if r and r[iy] == YEAR and r[ic] == BRENT and r[il] == "Local authority"]
    old, row[iv] = row[iv], value
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    path.unlink()
    path.write_text(out.getvalue(), encoding="utf-8")
    # the one edit of a data update: the manifest row's sha256 and size
    lines = list(csv.DictReader(open(manifest, newline="", encoding="utf-8")))
    for r in lines:
        if r["id"] == "cin_c1":
            r["sha256"], r["bytes"] = sha256_of(path), str(path.stat().st_size)
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(lines[0]))
        w.writeheader()
        w.writerows(lines)
    return old


def make_report(project: Path, env: dict[str, str], label: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(["make", "report"], cwd=project, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - t0
    said = [ln.strip() for ln in proc.stdout.splitlines()
            if re.search(r"up to date|inputs changed|panel built|runs unchanged|estimates in|book built|FAILED", ln)]
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit(f"{label}: make report failed (exit {proc.returncode})")
    print(f"{label}: {elapsed:.1f} s", flush=True)
    for ln in said:
        print(f"    {ln[:150]}", flush=True)
    return elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--warm", type=int, default=5, help="warm runs with nothing changed (default 5)")
    parser.add_argument("--changes", type=int, default=2, help="one-value-change runs (default 2)")
    parser.add_argument("--workdir", type=Path, default=None, help="scratch folder (default: a temporary one)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="sos-rebuild-"))
    work.mkdir(parents=True, exist_ok=True)
    project = work / "project"
    try:
        copy_project(project)
        sources, mirror, cache, manifest = scratch_data(work)
        env = {**os.environ, "SOS_DATA_MIRROR": str(mirror), "SOS_DATA_CACHE": str(cache),
               "SOS_DATA_MANIFEST": str(manifest),
               "PYTHONPATH": os.pathsep.join([str(project), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        print(f"scratch copy: {project} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})", flush=True)

        clean = make_report(project, env, "clean build")
        warm = [make_report(project, env, f"warm, nothing changed ({i + 1})") for i in range(args.warm)]
        original = None
        change = []
        for i in range(args.changes):
            value = "35.5" if i % 2 == 0 else original
            old = set_c1_value(sources, mirror, manifest, value)
            original = original or old
            change.append(make_report(project, env, f"one value changed ({old} -> {value})"))

        print()
        w = statistics.median(warm) if warm else float("nan")
        c = statistics.median(change) if change else float("nan")
        print(f"clean build:                       {clean:6.1f} s")
        print(f"warm, nothing changed (median of {len(warm)}): {w:6.1f} s  "
              f"({'within' if w < WARM_TARGET_S else 'OVER'} the {WARM_TARGET_S:.0f} s target)")
        print(f"one value changed (median of {len(change)}):    {c:6.1f} s  "
              f"({'under' if c < clean else 'NOT under'} the clean build, {100 * c / clean:.0f}% of it)")
    finally:
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
