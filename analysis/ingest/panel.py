"""Build the validated LA-by-year panel from the readers' tidy tables.

Steps, each a function so tests can exercise it alone:

1. :func:`collect_tidy` runs every reader in :data:`READERS` on its verified file.
2. :func:`check_values` applies the hard rules (unique rows per source, counts
   non-negative, percentages within 0-100); a breach is a :class:`DataError`
   naming file, measure and row.
3. :func:`resolve_releases` keeps, for each LA, year and measure, the value of the
   newest release (manifest ``release_date``) and records every overlap.
4. :func:`pivot_panel` makes one row per LA and reporting year with one column
   per measure, broadcasts time-invariant context, derives rates from counts
   where DfE did not publish them and adds the register's identifiers.
5. :func:`validate_panel` applies the soft rules (rates consistent with counts,
   every expected LA present in every year a source covers) and returns a
   report; these are reported, never silently fixed.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from analysis.core.errors import DataError
from analysis.core.paths import DEFINITIONS_PATH, PROCESSED_DIR
from analysis.ingest.geography import la_register
from analysis.ingest.readers import cla_characteristics, context, ees, lait, ofsted, sfr_cla
from analysis.ingest.readers.common import tidy_frame
from analysis.ingest.sources import Source, fetch, load_manifest

PANEL_YEARS = range(2011, 2026)
LA_LEVEL = "Local authority"

#: Measures that do not vary by year: read once, repeated in every panel year.
STATIC_MEASURES = ("idaci_score", "imd_score")

#: Tolerance (per 10,000) when comparing a published rate with counts/population:
#: DfE rounds rates to whole numbers and counts to the nearest 10.
RATE_TOLERANCE = 1.5


# --------------------------------------------------------------------------- readers
ReaderFn = Callable[[Callable[[str], Path]], pd.DataFrame]


def _readers() -> list[tuple[str, ReaderFn]]:
    """Every reader of the panel, as ``(name, fn(fetch) -> tidy frame)``."""

    readers: list[tuple[str, ReaderFn]] = [
        ("children in need referrals (C1)", lambda f: ees.read_c1(f("cin_c1"))),
        ("children in need (B1)", lambda f: ees.read_b1(f("cin_b1"))),
        ("child protection plans (D3)", lambda f: ees.read_d3(f("cpp_d3"))),
        ("looked after children 2021-2025", lambda f: ees.read_cla_rates(f("cla_rates_2025"), "cla_rates_2025")),
        ("looked after children 2020-2024", lambda f: ees.read_cla_rates(f("cla_rates_2024"), "cla_rates_2024")),
        ("special guardianship exits", lambda f: ees.read_cla_ceased_sgo(f("cla_ceased_sgo_2024"))),
        ("population aged 0-17", lambda f: ees.read_population(f("ons_pop_0_17"))),
        ("social work workforce", lambda f: ees.read_csww(f("csww_2025"))),
        ("LAIT 2025", lambda f: lait.read_lait(f("lait_2025"), "lait_2025",
                                                dictionary=f("lait_2025_dictionary"))),
        ("LAIT 2024", lambda f: lait.read_lait(f("lait_2024"), "lait_2024",
                                                dictionary=f("lait_2024_dictionary"))),
        ("looked after children 2010-2019 (SFR)", lambda f: sfr_cla.read_all(f)),
        ("density (MYE5)", lambda f: context.read_density(f)),
        ("deprivation (IMD/IDACI 2019)", lambda f: context.read_deprivation(f)),
        ("Ofsted judgements", lambda f: ofsted.read_ofsted_overall(f)),
    ]
    readers.append(("looked after children by placement 2021-2025",
                        lambda f: cla_characteristics.read_all(f)))
    return readers


def collect_tidy(progress: bool = False) -> pd.DataFrame:
    """Run every reader on its verified source file; returns one tidy table."""
    manifest = load_manifest()

    def get(sid: str) -> Path:
        if sid not in manifest:
            raise DataError(f"source id '{sid}' is not in the manifest", file="data/manifest.csv")
        return fetch(manifest[sid])

    parts = []
    for name, fn in _readers():
        if progress:
            print(f"  reading {name}", flush=True)
        parts.append(fn(get))
    return tidy_frame(parts)


# --------------------------------------------------------------------------- rules
def _definitions() -> pd.DataFrame:
    return pd.read_csv(DEFINITIONS_PATH, dtype=str, keep_default_na=False)


def _source_file(source_id: str, manifest: dict[str, Source]) -> str:
    return manifest[source_id].path if source_id in manifest else source_id


def check_values(tidy: pd.DataFrame, manifest: dict[str, Source] | None = None) -> None:
    """Hard rules; raise :class:`DataError` on the first breach.

    - ``unique_rows``: one value per area, year, measure and source file;
    - ``count_non_negative``: counts, rates and context values are >= 0;
    - ``pct_within_0_100``: percentages lie within 0-100.
    """
    manifest = manifest if manifest is not None else load_manifest()
    keys = ["geographic_level", "area_code", "year", "measure", "source_id"]
    dup = tidy.duplicated(keys, keep=False)
    if dup.any():
        first = tidy[dup].iloc[0]
        same = tidy[dup & (tidy[keys] == first[keys]).all(axis=1)]
        rows = ", ".join(str(r) for r in same["row"].tolist())
        raise DataError(f"duplicate rows for {first['area_code']} {first['year']} "
                        f"(measure {first['measure']}, file rows {rows}) [rule unique_rows]",
                        file=_source_file(first["source_id"], manifest), row=int(same["row"].iloc[1]))
    value = tidy["value"]
    is_pct = tidy["measure"].str.endswith("_pct")
    checks = [
        ("pct_within_0_100", is_pct & ((value < 0) | (value > 100)), "percentage outside 0-100"),
        ("count_non_negative", ~is_pct & (value < 0) & ~tidy["measure"].isin(["imd_score", "idaci_score"]),
         "negative value"),
    ]
    for rule, bad, what in checks:
        if bad.any():
            r = tidy[bad].iloc[0]
            raise DataError(f"{what}: {r['value']:g} for {r['area_code']} {r['year']} "
                            f"(measure {r['measure']}) [rule {rule}]",
                            file=_source_file(r["source_id"], manifest),
                            row=int(r["row"]) if r["row"] >= 0 else None)


def _release_rank(manifest: dict[str, Source]) -> dict[str, str]:
    """Sort key per source id: its release date (newest wins), from the manifest."""
    return {sid: getattr(src, "release_date", "") or "" for sid, src in manifest.items()}


def resolve_releases(tidy: pd.DataFrame, manifest: dict[str, Source] | None = None
                     ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Keep the newest release's value per area, year and measure.

    Returns
    -------
    resolved
        The tidy table with one row per area, year and measure.
    choices
        One row per measure, year and pair of releases that overlapped: the
        release kept, the release set aside, how many LAs overlapped and how
        many values differed (and by how much at most).
    """
    manifest = manifest if manifest is not None else load_manifest()
    rank = _release_rank(manifest)
    t = tidy.assign(_rank=tidy["source_id"].map(rank).fillna(""))
    t = t.sort_values(["geographic_level", "area_code", "year", "measure", "_rank", "source_id"],
                      ascending=[True, True, True, True, False, True], kind="mergesort")
    keys = ["geographic_level", "area_code", "year", "measure"]
    first = ~t.duplicated(keys, keep="first")
    kept, dropped = t[first], t[~first]
    choices = pd.DataFrame(columns=["measure", "year", "kept_source", "dropped_source",
                                    "n_overlap", "n_differ", "max_abs_diff"])
    if len(dropped):
        m = dropped.merge(kept[keys + ["source_id", "value"]], on=keys, suffixes=("", "_kept"))
        m = m[m["geographic_level"] == LA_LEVEL]
        diff = (m["value"] - m["value_kept"]).abs()
        differs = ~(np.isclose(m["value"], m["value_kept"]) | (m["value"].isna() & m["value_kept"].isna()))
        choices = (m.assign(diff=diff, differs=differs)
                   .groupby(["measure", "year", "source_id_kept", "source_id"], as_index=False)
                   .agg(n_overlap=("area_code", "size"), n_differ=("differs", "sum"),
                        max_abs_diff=("diff", "max"))
                   .rename(columns={"source_id_kept": "kept_source", "source_id": "dropped_source"}))
    return kept.drop(columns="_rank").reset_index(drop=True), choices


# --------------------------------------------------------------------------- panel
def _expected_las(year: int, reg: pd.DataFrame) -> pd.Series:
    """LAs that existed in a reporting year (register years; data start = existed before)."""
    data_start = reg["first_year"].min()
    started = (reg["first_year"] <= year) | (reg["first_year"] == data_start)
    return started & (reg["last_year"] >= year)


def pivot_panel(resolved: pd.DataFrame) -> pd.DataFrame:
    """One row per LA and reporting year, one column per measure.

    Adds the register's identifiers, repeats static context in every year,
    derives rates and percentages from counts where they are not published
    (see ``derived_from`` in ``data/measure_definitions.csv``), and lists the
    measures suppressed in each LA-year in the ``suppressed`` column.
    """
    reg = la_register()
    la = resolved[resolved["geographic_level"] == LA_LEVEL]
    frames = []
    for year in PANEL_YEARS:
        sel = reg[_expected_las(year, reg)]
        frames.append(pd.DataFrame({"la_code": sel["la_code"].to_numpy(), "year": year}))
    index = pd.concat(frames, ignore_index=True)

    static = la[la["measure"].isin(STATIC_MEASURES)]
    dynamic = la[~la["measure"].isin(STATIC_MEASURES)]
    wide = dynamic.pivot_table(index=["area_code", "year"], columns="measure", values="value",
                               aggfunc="first", dropna=False)
    wide.columns.name = None
    wide = wide.reset_index().rename(columns={"area_code": "la_code"})
    panel = index.merge(wide, on=["la_code", "year"], how="left")
    if len(static):
        s = static.pivot_table(index="area_code", columns="measure", values="value", aggfunc="first")
        s.columns.name = None
        panel = panel.merge(s.reset_index().rename(columns={"area_code": "la_code"}), on="la_code", how="left")

    defs = _definitions()
    for _, d in defs[defs["derived_from"] != ""].iterrows():
        num, den = d["derived_from"].split("/")
        if num not in panel or den not in panel:
            continue
        scale = 100.0 if d["kind"] == "pct" else 10000.0
        derived = panel[num] / panel[den] * scale
        if d["name"] in panel:
            panel[f"{d['name']}_derived"] = derived
            panel[d["name"]] = panel[d["name"]].fillna(derived)
        else:
            panel[d["name"]] = derived

    supp = la[la["suppressed"]].groupby(["area_code", "year"])["measure"].agg(
        lambda s: ";".join(sorted(s)))
    supp.index = supp.index.set_names(["la_code", "year"])
    panel = panel.merge(supp.rename("suppressed").reset_index(), on=["la_code", "year"], how="left")
    panel["suppressed"] = panel["suppressed"].fillna("")

    ids = reg[["la_code", "old_la_code", "la_name", "region_code", "region_name", "boundary_changed"]]
    panel = ids.merge(panel, on="la_code", how="right")
    measure_cols = [c for c in defs["name"] if c in panel.columns]
    extra = [c for c in panel.columns if c.endswith("_derived")]
    front = ["la_code", "old_la_code", "la_name", "region_code", "region_name", "year", "boundary_changed"]
    return (panel[front + measure_cols + ["suppressed"] + extra]
            .sort_values(["la_code", "year"]).reset_index(drop=True))


def validate_panel(panel: pd.DataFrame, resolved: pd.DataFrame) -> pd.DataFrame:
    """Soft rules; returns one row per finding (rule, severity, la_code, year, measure, detail).

    - ``unique_la_year``: exactly one panel row per LA and year (error);
    - ``rate_consistent``: a published rate agrees with count / population within
      :data:`RATE_TOLERANCE` per 10,000 (warning: DfE rounds counts);
    - ``la_present``: every LA that existed in a year appears (value or suppression
      mark) in every source that covers that year (warning).
    """
    findings: list[dict] = []
    dup = panel.duplicated(["la_code", "year"], keep=False)
    for _, r in panel[dup].iterrows():
        findings.append(dict(rule="unique_la_year", severity="error", la_code=r["la_code"],
                             year=int(r["year"]), measure="", detail="more than one row"))
    for col in [c for c in panel.columns if c.endswith("_derived")]:
        name = col[: -len("_derived")]
        published = resolved[(resolved["measure"] == name) & (resolved["geographic_level"] == LA_LEVEL)]
        if published.empty:
            continue
        m = panel[["la_code", "year", col]].merge(
            published[["area_code", "year", "value"]].rename(columns={"area_code": "la_code"}),
            on=["la_code", "year"])
        tol = RATE_TOLERANCE if "rate" in name else 1.0
        bad = m[(m["value"] - m[col]).abs() > tol]
        for _, r in bad.iterrows():
            findings.append(dict(rule="rate_consistent", severity="warning", la_code=r["la_code"],
                                 year=int(r["year"]), measure=name,
                                 detail=f"published {r['value']:g}, from counts {r[col]:.1f}"))
    reg = la_register()
    la = resolved[resolved["geographic_level"] == LA_LEVEL]
    for (sid, measure), grp in la.groupby(["source_id", "measure"]):
        for year, g in grp.groupby("year"):
            if measure in STATIC_MEASURES or year not in PANEL_YEARS:
                continue
            expected = set(reg.loc[_expected_las(year, reg), "la_code"])
            missing = sorted(expected - set(g["area_code"]))
            # Only flag gaps in sources that otherwise cover the year (not stale releases).
            if missing and len(g) >= 0.9 * len(expected):
                findings.append(dict(rule="la_present", severity="warning", la_code=";".join(missing),
                                     year=int(year), measure=measure,
                                     detail=f"{len(missing)} LA(s) absent from {sid}"))
    return pd.DataFrame(findings, columns=["rule", "severity", "la_code", "year", "measure", "detail"])


def coverage_table(panel: pd.DataFrame, resolved: pd.DataFrame) -> pd.DataFrame:
    """Measure x year: LAs expected, LAs with a value, LAs with a suppressed value."""
    la = resolved[resolved["geographic_level"] == LA_LEVEL]
    supp = la[la["suppressed"]].groupby(["measure", "year"]).size()
    rows = []
    defs = _definitions()
    for measure in [c for c in defs["name"] if c in panel.columns]:
        by_year = panel.groupby("year")[measure]
        for year, s in by_year:
            rows.append(dict(measure=measure, year=int(year), las_expected=int(len(s)),
                             las_with_value=int(s.notna().sum()),
                             las_suppressed=int(supp.get((measure, year), 0))))
    return pd.DataFrame(rows)


def measures_table(panel: pd.DataFrame, resolved: pd.DataFrame) -> pd.DataFrame:
    """The data dictionary: name, label, unit, definition, source ids, years covered."""
    defs = _definitions()
    la = resolved[resolved["geographic_level"] == LA_LEVEL]
    rows = []
    for _, d in defs.iterrows():
        if d["name"] not in panel.columns:
            continue
        years = panel.loc[panel[d["name"]].notna(), "year"]
        srcs = sorted(la.loc[la["measure"] == d["name"], "source_id"].unique())
        if d["derived_from"]:
            srcs = srcs + [f"derived: {d['derived_from']}"]
        rows.append(dict(name=d["name"], label=d["label"], unit=d["unit"], kind=d["kind"],
                         definition=d["definition"], source_ids=";".join(srcs),
                         first_year=int(years.min()) if len(years) else None,
                         last_year=int(years.max()) if len(years) else None,
                         n_years=int(years.nunique())))
    return pd.DataFrame(rows)


@dataclass
class PanelBuild:
    """Everything :func:`build_panel` produces."""

    panel: pd.DataFrame
    long: pd.DataFrame
    areas: pd.DataFrame
    measures: pd.DataFrame
    coverage: pd.DataFrame
    releases: pd.DataFrame
    validation: pd.DataFrame
    files: dict[str, pd.DataFrame] = field(default_factory=dict)


def build_panel(progress: bool = False) -> PanelBuild:
    """Read, check, resolve, pivot and validate: the whole data stage in memory."""
    manifest = load_manifest()
    tidy = collect_tidy(progress=progress)
    check_values(tidy, manifest)
    resolved, releases = resolve_releases(tidy, manifest)
    panel = pivot_panel(resolved)
    validation = validate_panel(panel, resolved)
    errors = validation[validation["severity"] == "error"]
    if len(errors):
        r = errors.iloc[0]
        raise DataError(f"{r['detail']} for {r['la_code']} {r['year']} [rule {r['rule']}]",
                        file="data/processed/panel.csv")
    la = resolved[resolved["geographic_level"] == LA_LEVEL].drop(columns=["geographic_level"])
    areas = resolved[resolved["geographic_level"] != LA_LEVEL]
    build = PanelBuild(panel=panel, long=la, areas=areas,
                       measures=measures_table(panel, resolved),
                       coverage=coverage_table(panel, resolved), releases=releases,
                       validation=validation)
    build.files = {
        "panel.csv": panel, "measures.csv": build.measures, "panel_long.csv": la,
        "national_regional.csv": areas, "coverage.csv": build.coverage,
        "release_choices.csv": releases, "validation.csv": validation,
    }
    return build


def write_atomically(files: dict[str, pd.DataFrame], out_dir: Path) -> list[Path]:
    """Write every table to a temporary folder, then move them into ``out_dir``.

    Nothing in ``out_dir`` changes unless every table was written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=out_dir))
    try:
        for name, df in files.items():
            df.to_csv(tmp / name, index=False, float_format="%.10g", lineterminator="\n")
        written = []
        for name in files:
            os.replace(tmp / name, out_dir / name)
            written.append(out_dir / name)
        return written
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def load_panel(path: Path | None = None) -> pd.DataFrame:
    """Read ``data/processed/panel.csv`` (built by ``python -m analysis data``)."""
    path = Path(path) if path else PROCESSED_DIR / "panel.csv"
    if not path.exists():
        raise DataError("panel not built yet: run `python -m analysis data`", file=str(path))
    return pd.read_csv(path, dtype={"old_la_code": str}, keep_default_na=True)
