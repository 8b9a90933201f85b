"""What the data chapter shows: measures, revisions, both definitions, anomalies, suppression.

Each function reads the tables ``python -m analysis data`` wrote (``measures.csv``,
``release_choices.csv``, ``definitions.csv``, ``validation.csv``, ``panel.csv``) and
returns a display table; nothing is recomputed from raw files. Pilots come from the
study design (``data/study_design.yaml``); every other LA is a comparator here.
"""
from __future__ import annotations

from pathlib import Path

import pandas as pd

from analysis.core.errors import DataError
from analysis.core.paths import PROCESSED_DIR
from analysis.design import load_design
from analysis.ingest.panel import suppression_needs

__all__ = ["anomalies_table", "definitions_table", "measures_display", "revisions_summary",
           "revisions_table", "suppression_table", "anomaly_counts"]


def _processed(name: str, folder: Path | None = None) -> pd.DataFrame:
    path = Path(folder or PROCESSED_DIR) / f"{name}.csv"
    if not path.exists():
        raise DataError("not built yet: run `python -m analysis data`", file=str(path))
    return pd.read_csv(path, dtype={"la_code": str, "old_la_code": str}, keep_default_na=True)


def _labels(folder: Path | None = None) -> dict[str, str]:
    return _processed("measures", folder).set_index("name")["label"].to_dict()


def _la_names(folder: Path | None = None) -> dict[str, str]:
    p = _processed("panel", folder)
    return dict(zip(p["la_code"], p["la_name"]))


def _years(row: pd.Series) -> str:
    """The ``years`` text of a measures row; child-level rows (no text) from first/last year."""
    text = row.get("years")
    if isinstance(text, str) and text.strip():
        return text
    first, last = row.get("first_year"), row.get("last_year")
    if pd.isna(first) or pd.isna(last):
        return "none in the panel"
    return f"{int(first)}–{int(last)}" if int(first) != int(last) else str(int(first))


def measures_display(folder: Path | None = None) -> pd.DataFrame:
    """The data dictionary: measure, column, unit, years (never "nan"), definition."""
    m = _processed("measures", folder)
    out = pd.DataFrame({"Measure": m["label"], "Column": m["name"], "Unit": m["unit"],
                        "Years": m.apply(_years, axis=1), "Definition": m["definition"]})
    return out.fillna("")


# --------------------------------------------------------------------------- revisions
def revisions_table(folder: Path | None = None) -> pd.DataFrame:
    """Values revised by a later release: per measure and year, LAs compared and revised.

    From ``release_choices.csv``: each row where the newer release differs from the
    one set aside, with the largest revision.
    """
    ch = _processed("release_choices", folder)
    labels = _labels(folder)
    ch = ch[ch["n_differ"] > 0].copy()
    ch["Measure"] = ch["measure"].map(lambda m: labels.get(m, m))
    out = ch.rename(columns={"year": "Year", "kept_source": "Release used",
                             "dropped_source": "Release set aside", "n_overlap": "LAs in both",
                             "n_differ": "LAs revised", "max_abs_diff": "Largest revision"})
    return out[["Measure", "Year", "Release used", "Release set aside", "LAs in both", "LAs revised",
                "Largest revision"]].reset_index(drop=True)


def revisions_summary(folder: Path | None = None) -> dict[str, int]:
    """Numbers for the text: LA-year values taken from the SFR back series, by measure.

    ``{"<measure>_<year>": LAs revised}`` for the first publications set aside in favour
    of the 2018 back series (2014), plus ``"back_series_total"``.
    """
    ch = _processed("release_choices", folder)
    back = ch[ch["kept_source"].str.match(r"^cla_sfr_(2018|2019)_") & (ch["dropped_source"].str.match(
        r"^cla_sfr_20\d\d_")) & (ch["kept_source"].str[8:12] != ch["dropped_source"].str[8:12])]
    out = {f"{r.measure}_{int(r.year)}": int(r.n_differ) for r in back.itertuples()}
    out["back_series_total"] = int(back["n_differ"].sum())
    return out


# --------------------------------------------------------------------------- definitions
def definitions_table(folder: Path | None = None) -> pd.DataFrame:
    """Both definitions of each derived rate or share, in the years both exist.

    One row per measure whose published figure exists in some year: the years both
    exist, LA-years compared, mean and largest difference (derived minus published)
    and its LA and year, and the LA-years where the published figure had to be used
    (no count).
    """
    d = _processed("definitions", folder)
    labels, names = _labels(folder), _la_names(folder)
    rows = []
    for m, g in d.groupby("measure", sort=False):
        both = g[g["n_both"] > 0]
        if both.empty:
            continue
        worst = both.loc[both["max_abs_diff"].idxmax()]
        yrs = both["year"].astype(int)
        mean = (both["mean_diff"] * both["n_both"]).sum() / both["n_both"].sum()
        rows.append({
            "Measure": labels.get(m, m), "Rule": g["series"].iloc[0],
            "Years with both": f"{yrs.min()}–{yrs.max()}" if yrs.min() != yrs.max() else str(yrs.min()),
            "LA-years compared": int(both["n_both"].sum()),
            "Mean difference": round(float(mean), 2),
            "Largest difference": round(float(worst["max_diff"]), 2),
            "Where": f"{names.get(worst['max_diff_la'], worst['max_diff_la'])} {int(worst['year'])}",
            "LA-years with the published figure": int(g["n_used_published"].sum())})
    return pd.DataFrame(rows)


def definitions_by_year(measure: str, folder: Path | None = None) -> pd.DataFrame:
    """One measure's two definitions year by year: mean and largest difference, and where."""
    d = _processed("definitions", folder)
    names = _la_names(folder)
    g = d[(d["measure"] == measure) & (d["n_both"] > 0)]
    return pd.DataFrame({"Year": g["year"].astype(int), "LA-years with both": g["n_both"].astype(int),
                         "Mean difference": g["mean_diff"].round(2),
                         "Largest difference": g["max_diff"].round(2),
                         "LA": g["max_diff_la"].map(lambda c: names.get(c, c))}).reset_index(drop=True)


def definitions_grid(folder: Path | None = None) -> pd.DataFrame:
    """The splice, by measure and year: the largest difference, derived minus published.

    One row per measure with a published figure in some year, one column per year in
    which both definitions exist for some measure; a blank cell: no year with both.
    Values in the measure's unit, signed (the LA-year with the largest absolute gap).
    """
    d = _processed("definitions", folder)
    d = d[d["n_both"] > 0]
    labels = _labels(folder)
    grid = d.pivot_table(index="measure", columns="year", values="max_diff", aggfunc="first", sort=False)
    grid.columns = [str(int(y)) for y in grid.columns]
    grid.index = [labels.get(m, m) for m in grid.index]
    return grid.round(2).rename_axis("Measure").reset_index()


# --------------------------------------------------------------------------- anomalies
def anomalies_table(folder: Path | None = None) -> pd.DataFrame:
    """Every value flagged by the rule ``anomaly`` (``validation.csv``), with its references."""
    v = _processed("validation", folder)
    a = v[v["rule"] == "anomaly"].copy()
    labels, names = _labels(folder), _la_names(folder)
    return pd.DataFrame({
        "LA": a["la_code"].map(lambda c: names.get(c, c)), "Year": a["year"].astype(int),
        "Measure": a["measure"].map(lambda m: labels.get(m, m)),
        "Value": a["value"].round(1), "Own years (median)": a["reference"].round(1),
        "Judged against": a["detail"]}).sort_values(["LA", "Year", "Measure"]).reset_index(drop=True)


def anomaly_counts(folder: Path | None = None) -> dict[str, int]:
    """Numbers for the text: values flagged, LA-years, LAs, and flags in pilot LAs."""
    v = _processed("validation", folder)
    a = v[v["rule"] == "anomaly"]
    pilots = set(load_design().all_pilot_codes())
    return {"n_flags": len(a), "n_la_years": int(len(a[["la_code", "year"]].drop_duplicates())),
            "n_las": int(a["la_code"].nunique()), "n_pilot_flags": int(a["la_code"].isin(pilots).sum())}


# --------------------------------------------------------------------------- suppression
def suppression_table(folder: Path | None = None, measures: list[str] | None = None) -> pd.DataFrame:
    """Suppression by outcome, pilots and comparators, year by year.

    Each cell is the % of LAs whose value is missing because a cell the measure needs
    (its own, or a derived share's numerator or denominator) is suppressed; blank
    where no LA of the group has the measure that year. Measures default to the
    study's LA-level outcomes; rows with no suppression in any year are left out.
    Pilots are the design's; every other LA is a comparator.
    """
    panel = _processed("panel", folder)
    design = load_design()
    if measures is None:
        measures = list(dict.fromkeys(o.measure for o in design.outcomes if o.measure in panel))
    groups = {c: "pilots" for c in design.all_pilot_codes()}
    s = suppression_needs(panel, groups, measures)
    labels = _labels(folder)
    rows = []
    for (m, grp), g in s.groupby(["measure", "group"], sort=False):
        if g["n_suppressed"].sum() == 0:
            continue
        row = {"Measure": labels.get(m, m), "LAs": "Pilots" if grp == "pilots" else "Comparators",
               "All years": round(100 * g["n_suppressed"].sum() / g["n_las"].sum(), 1)}
        row.update({int(r.year): (round(r.pct_suppressed, 1) if r.n_value + r.n_suppressed else None)
                    for r in g.itertuples()})
        rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return out
    order = {m: i for i, m in enumerate(measures)}
    inv = {labels.get(m, m): m for m in measures}
    out["_o"] = out["Measure"].map(lambda x: order.get(inv.get(x, x), 0))
    out = out.sort_values(["_o", "LAs"], ascending=[True, False]).drop(columns="_o").reset_index(drop=True)
    years = [c for c in out.columns if isinstance(c, int)]
    out[years] = out[years].astype(object).where(out[years].notna(), "")
    return out


#: Groups of measures for the coverage figures (one figure each, so each prints on a page).
COVERAGE_GROUPS = {
    "activity": "Referrals, children in need and child protection",
    "looked_after": "Children looked after",
    "context": "Workforce and context",
}


def coverage_group(name: str) -> str:
    """The :data:`COVERAGE_GROUPS` key of a panel measure, from its name."""
    if name.startswith(("cla_", "sgo_")):
        return "looked_after"
    if name.startswith(("referral", "rereferral", "nfa_", "cin_", "cpp_", "assessments", "s47_", "icpc_",
                        "care_applications")):
        return "activity"
    return "context"


def coverage_measures(group: str, folder: Path | None = None) -> list[str]:
    """The measures of ``measures.csv`` in one coverage group, in the panel's order."""
    if group not in COVERAGE_GROUPS:
        raise ValueError(f"unknown coverage group {group!r}: one of {', '.join(COVERAGE_GROUPS)}")
    return [m for m in _processed("measures", folder)["name"] if coverage_group(m) == group]
