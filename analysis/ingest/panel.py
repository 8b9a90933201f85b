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
5. :func:`validate_panel` applies the soft rules (published rates consistent with
   counts, every expected LA present in every year a source covers, no implausible
   value: :func:`anomalies`, thresholds in ``data/validation.yaml``) and returns a
   report; these are reported, never silently fixed.
6. :func:`definition_check` sets the two definitions of every derived rate and
   share side by side, year by year (``definitions.csv``).

One definition per measure: a rate or share with ``derived_from`` in
``data/measure_definitions.csv`` is computed one way in every year, as its
``series`` column says (``derived``: from the counts and ONS population, the
published figure kept as a check in ``<name>_published`` and used only where a
count is missing; ``published``: the reverse). Newest revision wins everywhere:
the back series of the 2018 and 2019 SFR files are read
(:func:`analysis.ingest.readers.sfr_cla.read_back_series`).
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
import yaml

from analysis.core.errors import DataError
from analysis.core.paths import DATA_DIR, DEFINITIONS_PATH, PROCESSED_DIR
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

#: Thresholds of the soft rule ``anomaly`` (with the reason for each).
VALIDATION_PATH = DATA_DIR / "validation.yaml"

#: Columns of ``validation.csv`` (``value`` and ``reference``: the figure judged and what
#: it was judged against, where the rule has them).
VALIDATION_COLUMNS = ["rule", "severity", "la_code", "year", "measure", "value", "reference",
                      "detail"]


# --------------------------------------------------------------------------- readers
ReaderFn = Callable[[Callable[[str], Path]], pd.DataFrame]
#: A store of the readers' tidy tables (:class:`analysis.run.build.ReaderCache`):
#: ``cache(name, fn, get)`` returns what ``fn(get)`` returns, from the store when the
#: reader's files and code are unchanged.
ReaderCacheFn = Callable[[str, ReaderFn, Callable[[str], Path]], pd.DataFrame]


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
        ("looked after children 2014-2018 as revised (SFR 2018 and 2019 back series)",
         lambda f: sfr_cla.read_back_series(f)),
        ("density (MYE5)", lambda f: context.read_density(f)),
        ("deprivation (IMD/IDACI 2019)", lambda f: context.read_deprivation(f)),
        ("Ofsted judgements", lambda f: ofsted.read_ofsted_overall(f)),
    ]
    readers.append(("looked after children by placement 2021-2025",
                        lambda f: cla_characteristics.read_all(f)))
    return readers


def collect_tidy(progress: bool = False, reader_cache: ReaderCacheFn | None = None) -> pd.DataFrame:
    """Run every reader on its verified source file; returns one tidy table.

    With ``reader_cache``, a reader whose files and code are unchanged since the
    cache last saw it is not run again (a data update re-reads the changed files only).
    """
    manifest = load_manifest()

    def get(sid: str) -> Path:
        if sid not in manifest:
            raise DataError(f"source id '{sid}' is not in the manifest", file="data/manifest.csv")
        return fetch(manifest[sid])

    parts = []
    for name, fn in _readers():
        if progress:
            print(f"  reading {name}", flush=True)
        parts.append(fn(get) if reader_cache is None else reader_cache(name, fn, get))
    return tidy_frame(parts)


# --------------------------------------------------------------------------- rules
def _definitions() -> pd.DataFrame:
    return pd.read_csv(DEFINITIONS_PATH, dtype=str, keep_default_na=False)


#: ``series`` values of ``data/measure_definitions.csv`` for a measure with ``derived_from``:
#: ``derived`` = computed from the counts in every year (published figure kept as a check,
#: used only where a count is missing); ``published`` = the published figure (derived
#: from the counts only where none is published).
SERIES = ("derived", "published")


def _series(definition: pd.Series) -> str:
    """The ``series`` rule of one definition row (``published`` when the column is blank)."""
    value = str(definition.get("series", "") or "").strip() or "published"
    if value not in SERIES:
        raise DataError(f"series {value!r} of measure {definition['name']} is not one of "
                        f"{', '.join(SERIES)}", file="data/measure_definitions.csv", column="series")
    return value


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
        name = d["name"]
        scale = 100.0 if d["kind"] == "pct" else 10000.0
        derived = (panel[num] / panel[den] * scale).where(panel[den] > 0)
        published = panel[name] if name in panel else pd.Series(np.nan, index=panel.index)
        panel[f"{name}_derived"] = derived
        panel[f"{name}_published"] = published
        # One definition in every year: the `series` of data/measure_definitions.csv says
        # which; the other fills only LA-years where the chosen one cannot be had.
        if _series(d) == "derived":
            panel[name] = derived.fillna(published)
        else:
            panel[name] = published.fillna(derived)

    supp = la[la["suppressed"]].groupby(["area_code", "year"])["measure"].agg(
        lambda s: ";".join(sorted(s)))
    supp.index = supp.index.set_names(["la_code", "year"])
    panel = panel.merge(supp.rename("suppressed").reset_index(), on=["la_code", "year"], how="left")
    panel["suppressed"] = panel["suppressed"].fillna("")

    ids = reg[["la_code", "old_la_code", "la_name", "region_code", "region_name", "boundary_changed"]]
    panel = ids.merge(panel, on="la_code", how="right")
    measure_cols = [c for c in defs["name"] if c in panel.columns]
    extra = [c for c in panel.columns if c.endswith(("_derived", "_published"))]
    front = ["la_code", "old_la_code", "la_name", "region_code", "region_name", "year", "boundary_changed"]
    return (panel[front + measure_cols + ["suppressed"] + extra]
            .sort_values(["la_code", "year"]).reset_index(drop=True))


def validate_panel(panel: pd.DataFrame, resolved: pd.DataFrame,
                   settings: AnomalySettings | None = None) -> pd.DataFrame:
    """Soft rules; one row per finding (:data:`VALIDATION_COLUMNS`).

    - ``unique_la_year``: exactly one panel row per LA and year (error);
    - ``rate_consistent``: where DfE publishes a rate or share that the panel also
      derives from counts, the two agree within :data:`RATE_TOLERANCE` per 10,000
      (1 percentage point for shares) (warning: DfE rounds counts, and its rates use
      the population estimates of their day);
    - ``la_present``: every LA that existed in a year appears (value or suppression
      mark) in every source that covers that year (warning);
    - ``anomaly``: an implausible value, far from the LA's own neighbouring years and
      from other LAs that year (:func:`anomalies`; warning).
    """
    findings: list[dict] = []
    dup = panel.duplicated(["la_code", "year"], keep=False)
    for _, r in panel[dup].iterrows():
        findings.append(dict(rule="unique_la_year", severity="error", la_code=r["la_code"],
                             year=int(r["year"]), measure="", detail="more than one row"))
    for col in [c for c in panel.columns if c.endswith("_derived")]:
        name = col[: -len("_derived")]
        pub = f"{name}_published"
        if pub not in panel:
            continue
        both = panel[["la_code", "year", col, pub]].dropna()
        tol = RATE_TOLERANCE if "rate" in name else 1.0
        bad = both[(both[pub] - both[col]).abs() > tol]
        for _, r in bad.iterrows():
            findings.append(dict(rule="rate_consistent", severity="warning", la_code=r["la_code"],
                                 year=int(r["year"]), measure=name, value=r[pub], reference=r[col],
                                 detail=f"published {r[pub]:g}, from counts {r[col]:.1f}"))
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
    flags = anomalies(panel, settings)
    for _, r in flags.iterrows():
        findings.append(dict(rule="anomaly", severity="warning", la_code=r["la_code"],
                             year=int(r["year"]), measure=r["measure"], value=r["value"],
                             reference=r["reference"], detail=r["detail"]))
    return pd.DataFrame(findings, columns=VALIDATION_COLUMNS)


# --------------------------------------------------------------------------- anomalies
@dataclass(frozen=True)
class AnomalySettings:
    """Thresholds of the ``anomaly`` rule (``data/validation.yaml``, which says why each).

    Attributes
    ----------
    neighbours, min_neighbours
        The LA's own reference is the median of its ``neighbours`` nearest other years
        with a value; fewer than ``min_neighbours`` such years: not judged.
    z_own, z_national
        Flag when both robust z-scores reach these (in absolute value) with one sign.
    transforms
        Scale of the z-scores by measure kind (``pct``, ``rate``): ``arcsine_sqrt``,
        ``log`` or ``identity``.
    min_population
        LAs with fewer children aged 0-17 in the year are not judged.
    measures
        Panel columns screened.
    """

    neighbours: int
    min_neighbours: int
    z_own: float
    z_national: float
    transforms: dict[str, str]
    min_population: float
    measures: tuple[str, ...]


_TRANSFORMS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "identity": (lambda x: x, lambda x: x),
    "log": (lambda x: np.log(np.maximum(x, 0.5)), np.exp),
    "arcsine_sqrt": (lambda x: np.arcsin(np.sqrt(np.clip(x, 0.0, 100.0) / 100.0)),
                     lambda x: 100.0 * np.sin(x) ** 2),
}


def anomaly_settings(path: Path | str = VALIDATION_PATH) -> AnomalySettings:
    """Read and check the ``anomaly`` block of ``data/validation.yaml``.

    Raises
    ------
    DataError
        Unreadable file, a missing or unknown key, a value of the wrong type, an
        unknown transform or measure.
    """
    path = Path(path)
    where = str(path.relative_to(DATA_DIR.parent)) if path.is_relative_to(DATA_DIR.parent) else str(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as e:
        raise DataError(f"cannot read the validation settings: {e}", file=where) from None
    keys = {"neighbours", "min_neighbours", "z_own", "z_national", "transforms",
            "min_population", "measures"}
    block = doc.get("anomaly") if isinstance(doc, dict) else None
    if not isinstance(block, dict) or set(block) != keys:
        got = sorted(block) if isinstance(block, dict) else block
        raise DataError(f"'anomaly' must have exactly the keys {', '.join(sorted(keys))} (has {got})",
                        file=where)
    for k in ("neighbours", "min_neighbours"):
        if not (isinstance(block[k], int) and block[k] > 0):
            raise DataError(f"anomaly.{k} must be a positive whole number, not {block[k]!r}", file=where)
    for k in ("z_own", "z_national", "min_population"):
        if not (isinstance(block[k], (int, float)) and block[k] >= 0):
            raise DataError(f"anomaly.{k} must be a number >= 0, not {block[k]!r}", file=where)
    tr = block["transforms"]
    if not (isinstance(tr, dict) and set(tr) == {"pct", "rate"} and set(tr.values()) <= set(_TRANSFORMS)):
        raise DataError(f"anomaly.transforms must map pct and rate to one of {', '.join(_TRANSFORMS)}, "
                        f"not {tr!r}", file=where)
    names = set(_definitions()["name"])
    ms = block["measures"]
    if not (isinstance(ms, list) and ms):
        raise DataError("anomaly.measures must be a list of panel measures", file=where)
    for m in ms:
        if m not in names:
            raise DataError(f"anomaly.measures: {m!r} is not in data/measure_definitions.csv", file=where)
    return AnomalySettings(neighbours=block["neighbours"], min_neighbours=block["min_neighbours"],
                           z_own=float(block["z_own"]), z_national=float(block["z_national"]),
                           transforms=dict(tr), min_population=float(block["min_population"]),
                           measures=tuple(ms))


def _own_reference(years: np.ndarray, x: np.ndarray, k: int, min_k: int) -> tuple[np.ndarray, list]:
    """Per position: median of ``x`` over the ``k`` nearest other years (earlier first on ties).

    One LA's series: a position's reference is missing when the LA has fewer than
    ``min_k`` other years. Also returns, per position, those years (an array; empty
    when the reference is missing).
    """
    n = len(x)
    take = min(k, n - 1)
    if n == 0 or take < min_k:
        return np.full(n, np.nan), [np.array([], dtype=int)] * n
    years = np.asarray(years)
    # distance to every other year; later years a hair farther (earlier first on ties);
    # the year itself last, so the first `take` columns are the nearest others
    dist = np.abs(years[None, :] - years[:, None]) + 0.001 * (years[None, :] > years[:, None])
    np.fill_diagonal(dist, np.inf)
    nearest = np.argsort(dist, axis=1, kind="stable")[:, :take]
    return np.median(x[nearest], axis=1), list(years[nearest])


def anomalies(panel: pd.DataFrame, settings: AnomalySettings | None = None) -> pd.DataFrame:
    """Implausible LA-year values: far from the LA's own neighbouring years and from other LAs.

    The rule and its thresholds are in ``data/validation.yaml`` (:func:`anomaly_settings`).
    Nothing is changed: the panel keeps the published values; the flags go to
    ``validation.csv`` (rule ``anomaly``) and the data chapter, and a sensitivity
    specification can drop the flagged LA-years.

    Returns
    -------
    pandas.DataFrame
        One row per flagged value: ``la_code, year, measure, value, reference`` (median
        of the LA's own neighbouring years, in the measure's unit), ``reference_years``,
        ``z_own``, ``national_median`` (median over LAs that year), ``z_national``,
        ``detail`` (one sentence); sorted by measure, LA and year.
    """
    st = settings or anomaly_settings()
    cols = ["la_code", "year", "measure", "value", "reference", "reference_years", "z_own",
            "national_median", "z_national", "detail"]
    kinds = _definitions().set_index("name")["kind"]
    out = []
    for m in st.measures:
        if m not in panel:
            continue
        d = panel[["la_code", "year", m] + (["pop_0_17"] if "pop_0_17" in panel else [])]
        d = d[d[m].notna()]
        if "pop_0_17" in d:
            d = d[~(d["pop_0_17"] < st.min_population)]
        if not len(d):
            continue
        fwd, back = _TRANSFORMS[st.transforms.get(kinds.get(m, ""), "identity")]
        d = d.sort_values(["la_code", "year"]).reset_index(drop=True)
        x = fwd(d[m].to_numpy(dtype=float))
        ref = np.full(len(d), np.nan)
        used: list = [None] * len(d)
        years = d["year"].to_numpy()
        for _, idx in d.groupby("la_code").indices.items():
            r, u = _own_reference(years[idx], x[idx], st.neighbours, st.min_neighbours)
            ref[idx] = r
            for i, j in enumerate(idx):
                used[j] = u[i]
        res = x - ref
        scale_own = 1.4826 * np.nanmedian(np.abs(res)) if np.isfinite(res).any() else np.nan
        z_own = res / scale_own if scale_own and scale_own > 0 else np.full(len(d), np.nan)
        xs = pd.Series(x)
        med = xs.groupby(d["year"]).transform("median").to_numpy()
        mad = xs.groupby(d["year"]).transform(lambda s: 1.4826 * (s - s.median()).abs().median()).to_numpy()
        with np.errstate(divide="ignore", invalid="ignore"):
            z_nat = np.where(mad > 0, (x - med) / mad, np.nan)
        hit = ((np.abs(z_own) >= st.z_own) & (np.abs(z_nat) >= st.z_national)
               & (np.sign(z_own) == np.sign(z_nat)))
        for i in np.flatnonzero(hit):
            value, reference, nat = float(d[m].iloc[i]), float(back(ref[i])), float(back(med[i]))
            used[i] = ",".join(str(int(y)) for y in sorted(used[i]))
            out.append(dict(
                la_code=d["la_code"].iloc[i], year=int(d["year"].iloc[i]), measure=m, value=value,
                reference=reference, reference_years=used[i], z_own=float(z_own[i]),
                national_median=nat, z_national=float(z_nat[i]),
                detail=(f"{value:g} against {reference:.3g} in the LA's own years {used[i]} "
                        f"(robust z {z_own[i]:+.1f}) and {nat:.3g} across LAs that year "
                        f"(robust z {z_nat[i]:+.1f})")))
    if not out:
        return pd.DataFrame(columns=cols)
    return pd.DataFrame(out, columns=cols).sort_values(["measure", "la_code", "year"]).reset_index(drop=True)


# --------------------------------------------------------------------------- definitions
def definition_check(panel: pd.DataFrame) -> pd.DataFrame:
    """Both definitions of every derived rate and share, year by year.

    For each measure with ``derived_from`` and each year: how many LA-years have the
    figure derived from counts, the published figure, both; which one the panel used
    (``series`` in ``data/measure_definitions.csv``: the other only fills gaps); and,
    where both exist, the difference derived minus published (mean, largest in
    absolute value, and the LA it belongs to).

    Returns
    -------
    pandas.DataFrame
        ``measure, series, year, n_derived, n_published, n_both, n_used_derived,
        n_used_published, mean_diff, max_abs_diff, max_diff, max_diff_la``.
    """
    defs = _definitions()
    rows = []
    for _, d in defs[defs["derived_from"] != ""].iterrows():
        name = d["name"]
        dc, pc = f"{name}_derived", f"{name}_published"
        if dc not in panel or pc not in panel:
            continue
        series = _series(d)
        for year, g in panel.groupby("year"):
            der, pub = g[dc], g[pc]
            both = der.notna() & pub.notna()
            diff = (der - pub)[both]
            used_der = der.notna() if series == "derived" else der.notna() & pub.isna()
            used_pub = pub.notna() & ~used_der
            row = dict(measure=name, series=series, year=int(year), n_derived=int(der.notna().sum()),
                       n_published=int(pub.notna().sum()), n_both=int(both.sum()),
                       n_used_derived=int(used_der.sum()), n_used_published=int(used_pub.sum()),
                       mean_diff=np.nan, max_abs_diff=np.nan, max_diff=np.nan, max_diff_la="")
            if both.any():
                i = diff.abs().idxmax()
                row.update(mean_diff=float(diff.mean()), max_abs_diff=float(abs(diff[i])),
                           max_diff=float(diff[i]), max_diff_la=str(g.loc[i, "la_code"]))
            rows.append(row)
    return pd.DataFrame(rows, columns=["measure", "series", "year", "n_derived", "n_published",
                                       "n_both", "n_used_derived", "n_used_published", "mean_diff",
                                       "max_abs_diff", "max_diff", "max_diff_la"])


# --------------------------------------------------------------------------- suppression
def needed_cells(measure: str) -> list[str]:
    """The published cells a measure needs: its own, and a derived one's counts.

    The counts are the numerator and denominator of ``derived_from`` in
    ``data/measure_definitions.csv``.
    """
    defs = _definitions().set_index("name")
    cells = [measure]
    if measure in defs.index and defs.loc[measure, "derived_from"]:
        cells += defs.loc[measure, "derived_from"].split("/")
    return cells


def suppression_needs(panel: pd.DataFrame, groups: dict[str, str] | None = None,
                      measures: list[str] | None = None) -> pd.DataFrame:
    """LA-years missing because a cell the measure needs is suppressed, by year and group.

    A derived share needs its numerator and denominator (:func:`needed_cells`): the
    share of special guardianship exits is missing wherever the count of SGO exits is
    suppressed, although the share's own cell is rarely marked.

    Parameters
    ----------
    panel
        The wide panel (with its ``suppressed`` column: the measures suppressed in each
        LA-year).
    groups
        ``{la_code: group}`` (e.g. pilots); LAs not in it are ``comparator``.
    measures
        Measures to report (default: every measure with a value in the panel).

    Returns
    -------
    pandas.DataFrame
        ``measure, year, group, n_las, n_value, n_suppressed, pct_suppressed`` where
        ``n_las`` counts LAs in the panel that year, ``n_suppressed`` the LA-years with
        no value and a needed cell suppressed.
    """
    groups = groups or {}
    measures = measures or [c for c in _definitions()["name"] if c in panel and panel[c].notna().any()]
    marks = panel["suppressed"].fillna("").str.split(";").apply(set)
    group = panel["la_code"].map(lambda code: groups.get(code, "comparator"))
    rows = []
    for m in measures:
        cells = set(needed_cells(m))
        hit = marks.apply(lambda s: bool(s & cells)) & panel[m].isna()
        frame = pd.DataFrame({"year": panel["year"], "group": group, "value": panel[m].notna(),
                              "supp": hit})
        g = frame.groupby(["year", "group"]).agg(n_las=("value", "size"), n_value=("value", "sum"),
                                                  n_suppressed=("supp", "sum")).reset_index()
        g.insert(0, "measure", m)
        rows.append(g)
    out = pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(
        columns=["measure", "year", "group", "n_las", "n_value", "n_suppressed"])
    out["pct_suppressed"] = 100.0 * out["n_suppressed"] / out["n_las"]
    return out


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


def _years_text(years: pd.Series) -> str:
    """``2013–2025``, ``2019`` or ``2011–2019, 2021–2025`` (runs of consecutive years)."""
    ys = sorted({int(y) for y in years})
    runs: list[list[int]] = []
    for y in ys:
        if runs and y == runs[-1][-1] + 1:
            runs[-1].append(y)
        else:
            runs.append([y])
    return ", ".join(f"{r[0]}–{r[-1]}" if len(r) > 1 else str(r[0]) for r in runs)


def measures_table(panel: pd.DataFrame, resolved: pd.DataFrame) -> pd.DataFrame:
    """The data dictionary: name, label, unit, definition, source ids, years covered.

    ``years`` says in words which years the panel has (never empty: a measure
    published only before the panel's first year says so); ``series`` is the rule of
    a derived rate or share (``derived`` or ``published``, blank otherwise).
    """
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
        if len(years):
            text = _years_text(years)
        else:
            published = la.loc[(la["measure"] == d["name"]) & la["value"].notna(), "year"]
            text = (f"none in the panel (published for {_years_text(published)}, before "
                    f"{PANEL_YEARS[0]})" if len(published) else "none published")
        rows.append(dict(name=d["name"], label=d["label"], unit=d["unit"], kind=d["kind"],
                         definition=d["definition"], source_ids=";".join(srcs),
                         first_year=int(years.min()) if len(years) else None,
                         last_year=int(years.max()) if len(years) else None,
                         n_years=int(years.nunique()), years=text,
                         series=_series(d) if d["derived_from"] else ""))
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
    definitions: pd.DataFrame = field(default_factory=pd.DataFrame)
    files: dict[str, pd.DataFrame] = field(default_factory=dict)


def build_panel(progress: bool = False, reader_cache: ReaderCacheFn | None = None) -> PanelBuild:
    """Read, check, resolve, pivot and validate: the whole data stage in memory.

    ``reader_cache``: see :func:`collect_tidy`.
    """
    manifest = load_manifest()
    tidy = collect_tidy(progress=progress, reader_cache=reader_cache)
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
                       validation=validation, definitions=definition_check(panel))
    build.files = {
        "panel.csv": panel, "measures.csv": build.measures, "panel_long.csv": la,
        "national_regional.csv": areas, "coverage.csv": build.coverage,
        "release_choices.csv": releases, "validation.csv": validation,
        "definitions.csv": build.definitions,
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
