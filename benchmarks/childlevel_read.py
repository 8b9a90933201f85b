"""Scale check for child-level SSDA903 extracts (issue 6, item 5).

Generates at least 5 million synthetic episode rows (plus their header rows) for 152
LAs and the reporting years 2013-2024, written in chunks to one combined CSV
with LA and YEAR columns (as a national or liia-tools combined extract), then
times: reading both files with :mod:`analysis.childlevel.readers` (pyarrow CSV),
validating them against the year's code lists (:func:`validate_903`), and the
data stage's own aggregation: one copy of each episode repeated across
returns (:func:`analysis.childlevel.returns.combine_returns`), then every
SSDA903 outcome by LA and year (:func:`analysis.childlevel.aggregate.tidy_measures`:
kinship at 31 March, kinship in periods of care, with censoring at the end
of the records). Five invalid records are planted so validation has something
to find.

Reports wall time per step and peak resident memory (``ru_maxrss`` of this
process; the generation step runs in a child process so its memory is not
counted). Target: read + validate + aggregate under 60 s and 4 GB.

    .venv/bin/python benchmarks/childlevel_read.py [--rows 5000000] [--keep DIR]
"""
from __future__ import annotations

import argparse
import multiprocessing as mp
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _generate(ep_path: str, hd_path: str, rows: int) -> int:
    import pyarrow.csv as pacsv

    from analysis.childlevel import synthetic

    las = [f"E{6000001 + i:08d}" for i in range(152)]
    years = range(2013, 2025)
    written, chunk = 0, 0
    ep_writer = hd_writer = None
    while written < rows:
        h, e = synthetic.generate_903(min(40_000, max(1000, (rows - written) // 12)), las, years,
                                      seed=1000 + chunk, id_start=chunk * 1_000_000)
        if chunk == 0:   # plant five invalid records
            e["place"] = e["place"].cat.add_categories(["Q9"])
            e.loc[10, "place"] = "Q9"
            e.loc[20, "child"] = None
            e.loc[30, "dec"] = e.loc[30, "decom"] - __import__("pandas").Timedelta(days=5)
        ep_t = synthetic.to_return_table(e, with_la_year=True)
        hd_t = synthetic.to_return_table(h, with_la_year=True)
        if chunk == 0:
            import pyarrow as pa
            import pyarrow.compute as pc
            dec = ep_t.column("DECOM").to_pylist()
            dec[40] = "31/02/2016"
            ep_t = ep_t.set_column(1 + 2, "DECOM", pa.array(dec))   # LA, YEAR, CHILD, DECOM
            rne = ep_t.column("RNE").to_pylist()
            rne[50] = "Z"
            ep_t = ep_t.set_column(4, "RNE", pa.array(rne))
            del pc
            ep_writer = pacsv.CSVWriter(ep_path, ep_t.schema)
            hd_writer = pacsv.CSVWriter(hd_path, hd_t.schema)
        ep_writer.write_table(ep_t)
        hd_writer.write_table(hd_t)
        written += len(e)
        chunk += 1
    ep_writer.close()
    hd_writer.close()
    return written


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=5_000_000)
    ap.add_argument("--keep", help="folder to keep the generated CSVs in")
    args = ap.parse_args()
    folder = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="sos_903_"))
    folder.mkdir(parents=True, exist_ok=True)
    ep_path, hd_path = folder / "episodes_all.csv", folder / "header_all.csv"

    t0 = time.perf_counter()
    with mp.get_context("spawn").Pool(1) as pool:
        n_rows = pool.apply(_generate, (str(ep_path), str(hd_path), args.rows))
    gen = time.perf_counter() - t0
    print(f"generated {n_rows:,} episode rows in {gen:.1f} s "
          f"({ep_path.stat().st_size / 1e6:.0f} MB episodes, {hd_path.stat().st_size / 1e6:.0f} MB header)")

    import numpy as np

    from analysis.childlevel import read_903_episodes, read_903_header, validate_903

    times = {}
    t = time.perf_counter()
    episodes = read_903_episodes(ep_path)
    header = read_903_header(hd_path)
    times["read"] = time.perf_counter() - t

    t = time.perf_counter()
    report = validate_903(header, episodes)
    times["validate"] = time.perf_counter() - t

    t = time.perf_counter()
    # The data stage's own path (analysis.childlevel.pipeline.add_child_level): one copy
    # of each episode repeated across returns, then every 903 outcome by LA and year.
    from analysis.childlevel.aggregate import tidy_measures
    from analysis.childlevel.returns import combine_returns, records_coverage

    once, _ = combine_returns(episodes, None)
    cover = records_coverage(episodes, None).set_index("la")
    tidy = tidy_measures(once, None, data_start=cover["data_start"], data_end=cover["data_end"])
    table = tidy.pivot_table(index=["la_code", "year"], columns="measure", values="value")
    table = table.rename(columns={"cla_kinship_pct": "kinship_share"})
    table["kinship_share"] = table["kinship_share"] / 100
    times["aggregate"] = time.perf_counter() - t

    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 ** 2
    total = sum(times.values())
    print(f"episodes read: {len(episodes):,} rows, header {len(header):,} rows, "
          f"{episodes['la'].nunique()} LAs x {episodes['year'].nunique()} years")
    print(f"problems found: {len(report)} -> " +
          ", ".join(f"{k}={v}" for k, v in report.groupby(['rule', 'field']).size().items()))
    print(f"distinct episodes (repeats across returns merged): {len(once):,}")
    print(f"LA-year table: {len(table)} rows x {table.shape[1]} measures; kinship share at "
          f"31 March: median {table['kinship_share'].median():.3f}")
    for k, v in times.items():
        print(f"  {k:<10}{v:6.1f} s")
    print(f"read + validate + aggregate: {total:.1f} s (target < 60 s); "
          f"peak RSS {peak_gb:.2f} GB (target < 4 GB)")
    if not args.keep:
        ep_path.unlink()
        hd_path.unlink()
        folder.rmdir()
    if total >= 60 or peak_gb >= 4:
        raise SystemExit("over target")
    del np


if __name__ == "__main__":
    main()
