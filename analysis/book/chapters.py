"""Helpers the book's chapters call: read built outputs, shape tables for display.

Chapters hold prose and short calls into this module; no analysis happens here,
only reading what the pipeline wrote and arranging it for readers.
"""
from __future__ import annotations

import math
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.book import figures
from analysis.childlevel.aggregate import load_outcome_rules
from analysis.childlevel.disclosure import load_settings
from analysis.childlevel.pipeline import _child_measures, _published, mask_suppressed
from analysis.core.errors import DataError
from analysis.core.paths import RESULTS_DIR
from analysis.design import load_design
from analysis.ingest.geography import la_register
from analysis.ingest.panel import PROCESSED_DIR
from analysis.ingest.sources import load_manifest
from analysis.methods.evidence import VERDICTS, describe_rule, sign_agrees
from analysis.run import editions
from analysis.run.settings import CONTRAST_SPECS, DENOMINATORS, MDE_SPEC_PANELS
from analysis.run.slices import (
    measure_slice_path,
    outcome_slice_path,
    read_processed_table,
    read_results_table,
    read_slice,
)


@lru_cache(maxsize=None)
def processed(name: str, folder: Path = PROCESSED_DIR) -> pd.DataFrame:
    """A table written by ``python -m analysis data`` (e.g. ``"coverage"``)."""
    path = Path(folder) / f"{name}.csv"
    if not path.exists():
        raise DataError("not built yet: run `python -m analysis data`", file=str(path))
    df = read_processed_table(path)
    if name == "panel":
        df = _as_shown(df, Path(folder))
    return df


def _as_shown(panel: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The panel (or some of its columns) as the book may show it."""
    if (folder / "childlevel_published.csv").exists():
        # Child-level mode: a per-LA child-level rate whose count is withheld is never shown.
        panel = mask_suppressed(panel, _published(folder), _child_measures(folder))
    return panel


def measure_rows(measure: str, folder: Path | None = None) -> pd.DataFrame:
    """``la_code``, ``year`` and ``measure`` of every row of the panel, as :func:`processed` shows them.

    Read from the measure's own slice (:mod:`analysis.run.slices`) when the data
    step wrote one, so that a chapter reading it depends on this measure only;
    else from the whole panel.
    """
    folder = Path(folder or PROCESSED_DIR)
    df = read_slice(measure_slice_path(folder, measure))
    if df is None:
        return processed("panel", folder)[["la_code", "year", measure]]
    return _as_shown(df, folder)


def sources_table() -> pd.DataFrame:
    """The manifest as readers see it: publisher, title, release, file, sha256 (short)."""
    rows = [dict(Publisher=s.publisher, Title=s.title, Release=s.release,
                 File=s.path.rsplit("/", 1)[-1], **{"sha256 (first 12)": s.sha256[:12]})
            for s in load_manifest().values()]
    return pd.DataFrame(rows)


def measures_display() -> pd.DataFrame:
    """The data dictionary for the data chapter."""
    m = processed("measures")
    out = m[["label", "name", "unit", "first_year", "last_year", "definition"]].copy()
    out["Years"] = out["first_year"].astype("Int64").astype(str) + "–" + out["last_year"].astype("Int64").astype(str)
    return out.rename(columns={"label": "Measure", "name": "Column", "unit": "Unit",
                               "definition": "Definition"})[["Measure", "Column", "Unit", "Years", "Definition"]]


def suppression_summary() -> pd.DataFrame:
    """Per measure: LA-years published, suppressed, and the share suppressed."""
    cov = processed("coverage")
    labels = processed("measures").set_index("name")["label"]
    g = cov.groupby("measure", sort=False).agg(with_value=("las_with_value", "sum"),
                                               suppressed=("las_suppressed", "sum"))
    g = g[g["suppressed"] > 0]
    g["suppressed %"] = (100 * g["suppressed"] / (g["with_value"] + g["suppressed"])).round(1)
    g.index = [labels.get(i, i) for i in g.index]
    return g.rename(columns={"with_value": "LA-years with a value",
                             "suppressed": "LA-years suppressed"})


# --------------------------------------------------------------------------- results
RESULTS_FOLDER = RESULTS_DIR

INFERENCE_LABELS = {
    "cluster": "Cluster-robust (CR1, by LA)",
    "wild_bootstrap": "Wild cluster bootstrap (restricted, Webb weights)",
    "wild_bootstrap_rademacher": "Wild cluster bootstrap (restricted, Rademacher weights)",
    "randomization": "Randomization inference (placebo assignments)",
    "analytic": "Analytic (influence function)",
    "placebo": "Placebo (donors as pseudo-pilots)",
}
ESTIMATOR_LABELS = {"twfe": "Matched DiD (two-way fixed effects)",
                    "staggered": "Staggered adoption (Callaway and Sant'Anna)",
                    "child_lpm": "Child-level linear probability model (LA and year effects)",
                    "sdid": "Synthetic DiD (every eligible donor, weighted)"}
GRADE_WORDS = {"no": "no evidence", "low": "low strength evidence",
               "moderate": "moderate strength evidence", "high": "high strength evidence"}


@lru_cache(maxsize=None)
def result(name: str) -> pd.DataFrame:
    """A table written by ``python -m analysis results`` (e.g. ``"estimates"``)."""
    path = RESULTS_FOLDER / f"{name}.csv"
    if not path.exists():
        raise DataError("not computed yet: run `python -m analysis results`", file=str(path))
    return read_results_table(path)


def outcome_rows(name: str, outcome: str) -> pd.DataFrame:
    """One outcome's rows of a results table, as ``result(name)`` filtered on ``outcome`` gives them.

    Read from the outcome's own slice (:mod:`analysis.run.slices`) when the
    results step wrote one, so that a chapter reading it depends on this
    outcome's numbers only; else from the whole table.
    """
    df = read_slice(outcome_slice_path(RESULTS_FOLDER, outcome, name))
    if df is None:
        table = result(name)
        return table[table["outcome"] == outcome]
    return df


def estimated_outcomes() -> set[str]:
    """The outcomes ``results/`` holds estimates for (``outcomes.csv``; else those of ``evidence.csv``)."""
    try:
        return set(result("outcomes")["outcome"])
    except DataError:
        return set(result("evidence")["outcome"])


@lru_cache(maxsize=1)
def design():
    """The study design (validated), as the book shows it.

    A child-level outcome (``source: child_level``) is shown only when the
    results hold its estimates (the report was built on child-level data);
    otherwise the book is that of the public design.
    """
    import dataclasses

    d = load_design()
    if any(o.source == "child_level" for o in d.outcomes):
        path = RESULTS_FOLDER / "outcomes.csv"
        have = set(pd.read_csv(path)["outcome"]) if path.exists() else set()
        d = dataclasses.replace(d, outcomes=tuple(o for o in d.outcomes
                                                  if o.source == "public" or o.id in have))
    return d


def la_names() -> dict[str, str]:
    """``{la_code: name}`` from the LA register."""
    reg = la_register()
    return dict(zip(reg["la_code"], reg["la_name"]))


SPEC_SHORT = {"main": "main analysis", "exclude_similar_models": "excluding similar practice models",
              "wave2_onset": "wave-two onset", "no_covid": "without the COVID-19 years",
              "programme_period": "programme period only", "k1": "one comparator per pilot",
              "k2": "two comparators per pilot", "k5": "five comparators per pilot",
              "transition_year": "without each pilot's first treated year",
              "years_0_3": "event years 0 to 3 only",
              "no_known_sos": "without donors with known Signs of Safety use",
              "pilots_new_to_sos": "pilots new to Signs of Safety only",
              "pilots_experienced": "pilots experienced in Signs of Safety only",
              "all_donors": "every donor, no matching",
              "main_2026_11": "main analysis as first published",
              "common_comparators": "one comparator set for every outcome",
              "no_anomalies": "flagged LA-years left out"}


def spec_short(spec: str) -> str:
    """A short name of a specification for running text."""
    if spec.startswith("leave_one_out:"):
        return f"leaving out {la_names().get(spec.split(':', 1)[1], spec)}"
    return SPEC_SHORT.get(spec, spec.replace("_", " "))


def spec_label(spec: str) -> str:
    """Readable name of a specification key (``leave_one_out:E09000005`` -> 'Leaving out Brent')."""
    if spec.startswith("leave_one_out:"):
        return f"Leaving out {la_names().get(spec.split(':', 1)[1], spec)}"
    s = design().specifications.get(spec)
    return s.description if s is not None else spec


def unit_of(measure: str) -> str:
    """Unit in which a change in ``measure`` is expressed."""
    if measure.endswith("_pct"):
        return "percentage points"
    if "per10k" in measure:
        return "per 10,000 children"
    if measure.startswith("assessment_days"):
        return "working days"
    return ""


def fmt(x: float, digits: int = 1, signed: bool = False) -> str:
    """A number for prose: fixed digits, proper minus sign, optional plus sign."""
    if x is None or not np.isfinite(x):
        return "not estimable" if x is None or np.isnan(x) else ("∞" if x > 0 else "−∞")
    s = f"{x:+.{digits}f}" if signed else f"{x:.{digits}f}"
    return s.replace("-", "−")


def fmt_p(p: float) -> str:
    """A p-value as readers expect: 'p < 0.001' or 'p = 0.04'."""
    if p is None or not np.isfinite(p):
        return "p not available"
    return "p < 0.001" if p < 0.001 else f"p = {p:.3f}" if p < 0.01 else f"p = {p:.2f}"


def glue_md(key: str, text: str) -> None:
    """Glue a piece of Markdown text for ``{glue:md}`key``` in a chapter."""
    from IPython.display import Markdown
    from myst_nb import glue

    glue(key, Markdown(text), display=False)


def download_link(df: pd.DataFrame, filename: str, text: str = "Download this table (CSV)"):
    """An HTML link carrying the table as a CSV data URI (works offline and in the PDF build)."""
    import base64

    from IPython.display import HTML

    data = base64.b64encode(df.to_csv(index=False).encode("utf-8")).decode("ascii")
    return HTML(f'<p class="csv-download"><a download="{filename}" '
                f'href="data:text/csv;base64,{data}">{text}</a></p>')


def prose_label(label: str) -> str:
    """A measure's label for use inside a sentence: lower-case start, no trailing unit."""
    import re

    text = re.sub(r"\s*\([^)]*\)\s*$", "", label)
    return text[0].lower() + text[1:] if text[:2] != text[:2].upper() else text


def evidence_row(outcome: str) -> pd.Series:
    """The row of ``results/evidence.csv`` for one outcome id, indexed by column."""
    ev = outcome_rows("evidence", outcome)
    return ev.set_index("outcome").loc[outcome]


# --------------------------------------------------------------------------- findings chapters
# Everything a findings chapter shows for an outcome is generated here: the chapter
# holds its own prose (question, measure, the 2021 finding), calls ``Findings(id).glue()``
# and pastes one shared block, ``{glue:md}`<id>_findings``` with ``:format: myst``
# (see :meth:`Findings.sections`). Every glue key carries the outcome id, so several
# outcomes share a page.

#: Short names of outcomes for titles and lists (default: the label in prose form).
SHORT_NAMES = {"assessment_timeliness": "assessment timeliness", "rereferrals": "re-referrals",
               "repeat_plans": "repeat child protection plans",
               "cpp_starts": "child protection plans starting",
               "sgo_exits": "exits from care to special guardians",
               "foster_share": "the share of children in foster care", "cin_rate": "children in need",
               "cla_rate": "children looked after", "cla_starts_rate": "children starting care",
               "s47_rate": "section 47 enquiries", "sw_turnover": "social worker turnover",
               "sw_agency": "agency social workers", "kinship_care": "kinship care",
               "rereferrals_after_nfa": "re-referrals after no further action",
               "escalation_after_rereferral": "escalation after a re-referral",
               "assessment_duration": "assessment duration"}

#: The rows of the headline table: (estimator, inference, specification, estimator label,
#: inference label, role).
HEADLINE_ROWS = (
    ("twfe", "wild_bootstrap", "main", "Matched DiD", "Wild cluster bootstrap (Webb weights)", "Primary"),
    ("twfe", "randomization", "main", "Matched DiD", "Randomization inference", "Secondary check"),
    ("twfe", "wild_bootstrap_rademacher", "main", "Matched DiD", "Wild cluster bootstrap (Rademacher weights)",
     "Check"),
    ("twfe", "cluster", "main", "Matched DiD", "Cluster-robust (CR1)",
     "Comparison only: unreliable with few LAs"),
    ("staggered", "analytic", "main", "Staggered (Callaway and Sant'Anna)", "Analytic", "Other estimator"),
    ("staggered", "randomization", "main", "Staggered (Callaway and Sant'Anna)", "Randomization inference",
     "Other estimator"),
    ("sdid", "placebo", "main", "Synthetic DiD, every donor weighted", "Placebo (donors as pseudo-pilots)",
     "Every donor"),
    ("twfe", "wild_bootstrap", "all_donors", "Unmatched DiD, every donor", "Wild cluster bootstrap (Webb weights)",
     "Every donor"),
    ("child_lpm", "cluster", "main", ESTIMATOR_LABELS["child_lpm"], "Cluster-robust (by LA)",
     "The 2021 evaluation's model"),
)

#: What the denominator of a measure is, in words (column of ``run.study.DENOMINATORS``)
#: and whether it is counted over a year (a flow) or at a date.
DENOMINATOR_WORDS = {"referrals": ("referrals", True), "cpp_starts": ("child protection plans starting", True),
                     "cla_ceased": ("children leaving care", True), "assessments": ("assessments", True),
                     "pop_0_17": ("children aged 0 to 17", False), "cla_31mar": ("children looked after", False)}


def a_or_an(word: str) -> str:
    """'an improvement', 'a deterioration'."""
    return f"{'an' if word[:1].lower() in 'aeiou' else 'a'} {word}"


def _finite(x) -> bool:
    try:
        return x is not None and bool(np.isfinite(float(x)))
    except (TypeError, ValueError):
        return False


def _with_unit(text: str, unit: str) -> str:
    return f"{text} {unit}".strip()


def _p_bare(p: float) -> str:
    """A p-value for a table cell: '0.44', '< 0.001'."""
    return fmt_p(p).replace("p = ", "").replace("p ", "")


def verdict_category(e: pd.Series) -> str:
    """The verdict's category (one of :data:`analysis.methods.evidence.VERDICTS`)."""
    v = str(e.get("verdict", "") or "")
    for cat in VERDICTS:
        if v.startswith(cat):
            return cat
    return "inconclusive"


def verdict_heading(e: pd.Series) -> str:
    """The verdict as a short heading: 'Evidence of an effect (moderate strength)', 'Inconclusive'."""
    v = str(e.get("verdict", "") or verdict_category(e))
    return v[0].upper() + v[1:]


def pretrend_check(e: pd.Series, threshold: float) -> tuple[bool | None, float, str]:
    """(passed, the deciding p-value, the test's name) of the pre-trend check.

    As the verdict rule has it, the check fails when either the wild bootstrap Wald
    test or the cluster-robust F test rejects parallel trends; None without a test.
    """
    tests = [(e.get("pretrend_p"), "the wild bootstrap Wald test"),
             (e.get("pretrend_p_cluster"), "the cluster-robust F test")]
    tests = [(float(p), name) for p, name in tests if _finite(p)]
    if not tests:
        return None, math.nan, ""
    p, name = min(tests)
    return p >= threshold, p, name


def not_assessable_reason(e: pd.Series, thresholds: dict[str, float]) -> str:
    """Why a design check failed, in words (for a 'not assessable' verdict)."""
    parts = []
    ok, p, name = pretrend_check(e, thresholds["pretrend_p_min"])
    if ok is False:
        parts.append(f"the pilots and their comparators were already moving apart before the programme "
                     f"({name} of the pre-period differences gives {fmt_p(p)}, below {thresholds['pretrend_p_min']:g})")
    smd = e.get("max_abs_smd")
    if _finite(smd) and float(smd) >= thresholds["max_smd"] and not bool(e.get("balance_ok_other", True)):
        parts.append(f"no matched comparison group is like the pilots: the largest standardised difference "
                     f"after matching is {fmt(float(smd), 2)} (the rule needs less than {thresholds['max_smd']:g}), "
                     "here and in every other matched specification")
    return "; and ".join(parts) or str(e.get("verdict_reasons", "a design check failed"))


def verdict_sentence(e: pd.Series, what: str, unit: str, thresholds: dict[str, float]) -> str:
    """The plain-English verdict: its category in words, then the headline estimate.

    The estimate, interval and p-value are the primary inference's (wild cluster
    bootstrap); randomization inference follows as the secondary check.
    """
    cat = verdict_category(e)
    sesoi = f"{fmt(float(e['sesoi']))} {unit}".strip() if _finite(e.get("sesoi")) else "not declared"
    if cat == "evidence of an effect":
        lead = (f"There is {GRADE_WORDS.get(str(e['grade']), str(e['grade']))} of an effect of Signs of Safety "
                f"on {what}, in the direction of {a_or_an(str(e['effect']))}.")
    elif cat == "evidence of no effect larger than the SESOI":
        lead = (f"There is evidence of no effect of Signs of Safety on {what} larger than the smallest "
                f"effect that would matter ({sesoi}).")
    elif cat == "not assessable on this design":
        lead = (f"The effect of Signs of Safety on {what} is not assessable on this design: "
                f"{not_assessable_reason(e, thresholds)}. The estimate is shown below but should not be "
                "read as an effect, whatever its p-value.")
    else:
        lead = (f"The evidence on {what} is inconclusive: the estimate leans towards "
                f"{a_or_an(str(e.get('leans') or e.get('effect') or 'no change'))}, but its interval holds both "
                f"no effect and effects larger than the smallest that would matter ({sesoi}).")
    est = _with_unit(fmt(e["estimate"], 1, signed=True), unit)
    text = (f"{lead} Relative to their matched comparators, the pilot LAs' measure moved by {est} "
            f"(95% wild cluster bootstrap interval {fmt(e['ci_low'])} to {fmt(e['ci_high'])}; "
            f"{fmt_p(e['primary_p'])}).")
    if _finite(e.get("ri_ci_low")):
        text += (f" Randomization inference, the secondary check, gives {fmt(e['ri_ci_low'])} to "
                 f"{fmt(e['ri_ci_high'])} ({fmt_p(e['p_randomization'])}).")
    return text


def active_title(e: pd.Series, short: str, thresholds: dict[str, float]) -> str:
    """The trend figure's title: its main message in about ten words, from the verdict."""
    cat = verdict_category(e)
    if cat == "evidence of an effect":
        moved = "rose" if float(e["estimate"]) > 0 else "fell"
        grade = str(e["grade"]).capitalize()
        text = f"{grade} evidence that {short} {moved} after Signs of Safety began"
    elif cat == "evidence of no effect larger than the SESOI":
        text = f"No change in {short} large enough to matter after Signs of Safety"
    elif cat == "not assessable on this design":
        ok, _, _ = pretrend_check(e, thresholds["pretrend_p_min"])
        why = ("trends differed before the start" if ok is False else "comparators too unlike the pilots")
        text = f"Effect on {short} not assessable: {why}"
    else:
        text = f"No clear change in {short} after Signs of Safety began"
    return text[0].upper() + text[1:]


def checklist(e: pd.Series, thresholds: dict[str, float]) -> list[tuple[str, bool | None, str]]:
    """The design checks as (name, passed, what it found): pre-trends, balance, robustness, inference."""
    out = []
    ok, p, name = pretrend_check(e, thresholds["pretrend_p_min"])
    if ok is None:
        out.append(("Pre-trends", None, "there is a single pre-period year, so parallel trends cannot be tested"))
    else:
        other = (f"; the cluster-robust F test gives {fmt_p(float(e['pretrend_p_cluster']))}"
                 if _finite(e.get("pretrend_p_cluster")) else "")
        out.append(("Pre-trends", ok,
                    f"the joint test that pilots and comparators moved in parallel before the start gives "
                    f"{fmt_p(float(e['pretrend_p']))} in the wild bootstrap Wald test{other} "
                    f"(each must be at least {thresholds['pretrend_p_min']:g})"))
    smd = e.get("max_abs_smd")
    if not _finite(smd):
        out.append(("Balance", None, "balance after matching is not available"))
    else:
        ok_b = float(smd) < thresholds["max_smd"]
        text = (f"the largest standardised difference between pilots and comparators after matching is "
                f"{fmt(float(smd), 2)} (the rule needs less than {thresholds['max_smd']:g})")
        if not ok_b:
            text += ("; another matched specification is balanced, so the verdict stands"
                     if bool(e.get("balance_ok_other", False)) else "; no other matched specification is balanced")
        out.append(("Balance", ok_b, text))
    n, share = e.get("n_sensitivity"), e.get("sign_agreement")
    if not _finite(n) or int(n) == 0 or not _finite(share):
        out.append(("Robustness", None, "no sensitivity analysis was run"))
    else:
        agree = int(round(float(share) * int(n)))
        out.append(("Robustness", float(share) >= thresholds["sign_agreement_high"],
                    f"{agree} of the {int(n)} sensitivity runs give an estimate of the same sign as the main "
                    f"analysis ({fmt(100 * float(share), 0)}%; the rule needs "
                    f"{fmt(100 * thresholds['sign_agreement_high'], 0)}%)"))
    if not _finite(e.get("ri_ci_low")):
        out.append(("Inference", None, "no randomization check"))
    else:
        wb_zero = float(e["ci_low"]) <= 0 <= float(e["ci_high"])
        ri_zero = float(e["ri_ci_low"]) <= 0 <= float(e["ri_ci_high"])
        out.append(("Inference", wb_zero == ri_zero,
                    f"randomization inference ({fmt(e['ri_ci_low'])} to {fmt(e['ri_ci_high'])}) "
                    f"{'agrees' if wb_zero == ri_zero else 'disagrees'} with the wild cluster bootstrap "
                    f"({fmt(e['ci_low'])} to {fmt(e['ci_high'])}) on whether the interval "
                    f"{'includes' if wb_zero else 'excludes'} zero"))
    return out


def dynamics_text(coefs: pd.DataFrame, unit: str, low: str = "wb_ci_low", high: str = "wb_ci_high",
                  method: str = "wild bootstrap") -> str:
    """The event study's dynamics in words: when the largest difference occurs, early against later years.

    ``coefs``: event-study rows of one outcome and specification (``event_time``,
    ``estimate`` and the interval columns ``low``, ``high``).
    """
    post = coefs[(coefs["event_time"] >= 0) & coefs["estimate"].notna()].sort_values("event_time")
    if post.empty:
        return "There are no years after the start to describe."
    u = f" {unit}" if unit else ""
    big = post.loc[post["estimate"].abs().idxmax()]
    text = (f"After the start, the yearly differences run from {fmt(post['estimate'].min(), 1, True)} to "
            f"{fmt(post['estimate'].max(), 1, True)}{u}; the largest in size, "
            f"{fmt(big['estimate'], 1, True)}{u}, is in year {int(big['event_time'])} after the start "
            "(year 0 is the first treated year).")
    early = post[post["event_time"] <= 3]["estimate"]
    late = post[post["event_time"] > 3]["estimate"]
    if len(early) and len(late):
        e_m, l_m = float(early.mean()), float(late.mean())
        if np.sign(e_m) != np.sign(l_m) and min(abs(e_m), abs(l_m)) > 0.1 * max(abs(e_m), abs(l_m)):
            trend = "changes sign"
        elif abs(l_m) > 1.25 * abs(e_m):
            trend = "grows"
        elif abs(l_m) < 0.8 * abs(e_m):
            trend = "fades"
        else:
            trend = "stays about the same"
        text += (f" Over years 0 to 3 the differences average {fmt(e_m, 1, True)}{u}, over later years "
                 f"{fmt(l_m, 1, True)}{u}: the difference {trend} over time.")
    if low in post.columns and post[low].notna().any():
        lo, hi = post[low].to_numpy(float), post[high].to_numpy(float)
        ok = np.isfinite(lo) & np.isfinite(hi)
        excl = int(((lo > 0) | (hi < 0))[ok].sum())
        if excl == 0:
            text += (f" In every year the {method} interval includes zero, so these movements are within "
                     "what chance alone could produce.")
        else:
            text += (f" In {excl} of the {int(ok.sum())} years after the start the {method} interval excludes "
                     "zero.")
    return text


def balanced_trends(panel: pd.DataFrame, pairs: pd.DataFrame, measure: str, years: list[int],
                    pre_years: list[int], min_pre: int = 2) -> tuple[pd.DataFrame, dict]:
    """Yearly means of the estimation sample as a balanced panel, for a trend figure.

    Pilots are the matched pairs' treated LAs (equal weights), comparators their
    matched LAs weighted so that each pilot's comparators count as one LA (as in
    the estimate). Only LAs with a value in every year shown enter (a balanced
    panel, so a line moves only when its LAs' values move). The window starts at
    the outcome's first year, or later (keeping at least ``min_pre`` pre-period
    years) when that keeps at least half of the pilots and of the comparators
    that an earlier start would lose to suppressed early years. If no window keeps
    half of each group, each year's mean is over the LAs with a value that year
    (``balanced`` is then False).

    Returns
    -------
    (DataFrame, dict)
        ``year``, ``group`` ("pilots", "comparators"), ``mean``, ``n_las``; and
        ``balanced``, ``first_year``, ``last_year``, ``n_pilots``, ``n_comparators``,
        ``dropped_pilots``, ``dropped_comparators`` (LAs left out for a missing year).
    """
    k = pairs.groupby("treated_code")["comparator_code"].transform("size")
    w_comp = (1.0 / k).groupby(pairs["comparator_code"]).sum()
    pilots = list(dict.fromkeys(pairs["treated_code"]))
    weights = pd.concat([pd.Series(1.0, index=pilots), w_comp])
    role = pd.Series(["pilots"] * len(pilots) + ["comparators"] * len(w_comp),
                     index=pilots + list(w_comp.index))
    sub = panel[panel["la_code"].isin(role.index) & panel["year"].isin(years)][["la_code", "year", measure]]
    wide = sub.pivot_table(index="la_code", columns="year", values=measure, aggfunc="first").reindex(
        index=role.index, columns=sorted(years))
    candidates = [y for y in sorted(years) if sum(p >= y for p in pre_years) >= min(min_pre, len(pre_years))]
    best = None
    for start in candidates or [min(years)]:
        cols = [y for y in wide.columns if y >= start]
        full = wide[cols].notna().all(axis=1)
        shares = [float(full[role == g].mean()) for g in ("pilots", "comparators")]
        if best is None or min(shares) > best[1] + 1e-9:
            best = (start, min(shares), full, cols)
        if min(shares) >= 0.5:
            best = (start, min(shares), full, cols)
            break
    start, share, full, cols = best
    balanced = share >= 0.5
    keep = full if balanced else pd.Series(True, index=wide.index)
    cols = cols if balanced else list(wide.columns)
    rows = []
    for g in ("pilots", "comparators"):
        codes = [c for c in role.index[(role == g) & keep]]
        d = wide.loc[codes, cols]
        w = weights.reindex(codes).to_numpy(float)
        for y in cols:
            v = d[y].to_numpy(float)
            ok = np.isfinite(v)
            if ok.any():
                rows.append(dict(year=int(y), group=g, mean=float(np.average(v[ok], weights=w[ok])),
                                 n_las=int(ok.sum())))
    info = dict(balanced=balanced, first_year=int(cols[0]), last_year=int(cols[-1]),
                n_pilots=int(((role == "pilots") & keep).sum()),
                n_comparators=int(((role == "comparators") & keep).sum()),
                dropped_pilots=int(((role == "pilots") & ~keep).sum()),
                dropped_comparators=int(((role == "comparators") & ~keep).sum()))
    return pd.DataFrame(rows, columns=["year", "group", "mean", "n_las"]), info


def did_counterfactual(trends: pd.DataFrame, pre_years: list[int]) -> pd.DataFrame:
    """The pilots' path had they changed as their comparators did.

    The comparators' change from their pre-period mean, added to the pilots'
    pre-period mean, from the last pre-period year on (``year``, ``mean``).
    """
    pil = trends[trends["group"] == "pilots"].set_index("year")["mean"]
    com = trends[trends["group"] == "comparators"].set_index("year")["mean"]
    pre = [y for y in pre_years if y in pil.index and y in com.index]
    if not pre:
        return pd.DataFrame(columns=["year", "mean"])
    base_p, base_c = float(pil.loc[pre].mean()), float(com.loc[pre].mean())
    years = [y for y in com.index if y >= max(pre)]
    return pd.DataFrame({"year": years, "mean": [base_p + float(com.loc[y]) - base_c for y in years]})


def _fig_block(key: str, name: str, alt: str, caption: str) -> str:
    alt = " ".join(alt.split())
    return f"```{{glue:figure}} {key}\n:name: {name}\n:alt: {alt}\n\n{caption.strip()}\n```\n"


class Findings:
    """Everything a findings chapter shows for one outcome, read from ``results/``.

    A chapter calls :meth:`glue` and pastes the glued block ``<id>_findings``
    (``{glue:md}`` with ``:format: myst``): :meth:`sections` composes it from the
    standard displays (trend figure, headline table, event study, balance,
    robustness table, what the data rule out, power and HonestDiD figures for
    primary outcomes, the checklist and the verdict). Figures and tables are glued
    as ``<id>_fig_<kind>`` and ``<id>_tab_<kind>``; the chapter's verdict section
    pastes ``<id>_verdict_summary``.
    """

    SOURCE = ("Source: the releases listed in the data chapter; England, upper-tier local "
              "authorities; reporting years ending 31 March.")

    def __init__(self, outcome: str) -> None:
        self.outcome = design().outcome(outcome)
        self.id = self.outcome.id
        self.measure = self.outcome.measure
        self.unit = unit_of(self.measure)
        self.short = SHORT_NAMES.get(self.id, prose_label(self.outcome.label))
        self.what = prose_label(self.outcome.label)
        self.estimates = outcome_rows("estimates", self.id)
        self.main = self.estimates[self.estimates["specification"] == "main"]
        self.evidence = evidence_row(self.id)
        self.thresholds = design().evidence.threshold_values()
        self._trends: tuple[pd.DataFrame, dict] | None = None

    @property
    def shows_power(self) -> bool:
        """A primary outcome with a power curve in ``results/power.csv``."""
        return bool(self.outcome.primary and len(self.power()) and _finite(self.evidence.get("mde")))

    @property
    def shows_honest(self) -> bool:
        """A primary outcome with HonestDiD intervals in ``results/honest_did.csv``."""
        return bool(self.outcome.primary and self.honest()["ci_low"].notna().any())

    # ----------------------------------------------------------------- numbers
    def _main(self, estimator: str, inference: str) -> pd.Series:
        m = self.main
        return m[(m["estimator"] == estimator) & (m["inference"] == inference)].iloc[0]

    def child_level_comparison(self) -> str:
        """A sentence setting the child-level LPM beside the LA-level estimate ('' if none)."""
        lpm = self.main[self.main["estimator"] == "child_lpm"]
        if lpm.empty:
            return ""
        r, e = lpm.iloc[0], self.evidence
        unit = f" {self.unit}" if self.unit else ""
        return (f"A child-level model like the published evaluation's, a linear probability "
                f"model with one row per child record, LA and year effects and standard errors "
                f"clustered by LA, fitted on the same matched LAs and years (each record weighted "
                f"by its LA's matching weight), gives {fmt(r['estimate'], 1, signed=True)}{unit} "
                f"(95% interval {fmt(r['ci_low'])} to {fmt(r['ci_high'])}; {fmt_p(r['p_value'])}), "
                f"against {fmt(e['estimate'], 1, signed=True)}{unit} from the LA-level analysis. "
                f"The two differ in weighting: the child-level model gives each LA-year weight "
                f"in proportion to its number of records, the LA-level model the same weight "
                f"to every LA-year.")

    def _row(self, estimator: str, inference: str, spec: str = "main") -> pd.Series | None:
        e = self.estimates
        r = e[(e["estimator"] == estimator) & (e["inference"] == inference) & (e["specification"] == spec)]
        return None if r.empty else r.iloc[0]

    def verdict(self) -> str:
        """The plain-English verdict: category, then the primary inference's estimate and interval."""
        return verdict_sentence(self.evidence, self.what, self.unit, self.thresholds)

    def title(self) -> str:
        """The trend figure's active title."""
        return active_title(self.evidence, self.short, self.thresholds)

    def checks(self) -> str:
        """The checklist as Markdown bullets, each result with the figure or table that shows it."""
        where = {"Pre-trends": f"{{numref}}`fig-{self.id}-event`",
                 "Balance": f"{{numref}}`fig-{self.id}-balance`",
                 "Robustness": f"{{ref}}`robustness table <tab-{self.id}-robustness>`",
                 "Inference": f"{{ref}}`headline table <tab-{self.id}-headline>`"}
        words = {True: "passed", False: "failed", None: "not assessed"}
        return "\n".join(f"- **{name}: {words[ok]}.** {text[0].upper() + text[1:]} ({where[name]})."
                         for name, ok, text in checklist(self.evidence, self.thresholds))

    def dynamics(self) -> str:
        """The event study's dynamics in words (wild bootstrap intervals where available)."""
        coefs = self.event_coefficients()
        if "wb_ci_low" in coefs.columns and coefs["wb_ci_low"].notna().any():
            return dynamics_text(coefs, self.unit)
        return dynamics_text(coefs, self.unit, "ci_low", "ci_high", "cluster-robust")

    def _n_outcomes(self, primary: bool) -> int:
        # the design's outcomes that have estimates: the rows of results/evidence.csv
        outcomes = [o for o in design().outcomes if o.id in estimated_outcomes()]
        return sum(o.primary for o in outcomes) if primary else len(outcomes)

    def rules_out(self) -> str:
        """What the design could detect and what the interval rules out, for non-statisticians (issue 13).

        Markdown bullets: what the design could detect (MDE), what would matter (SESOI
        and its reason), what the interval and the equivalence test rule out, the
        HonestDiD reading, the multiplicity-adjusted p-value and, for primary
        outcomes, the effect in children for a pilot of median size.
        """
        e, o, u = self.evidence, self.outcome, self.unit
        uu = f" {u}" if u else ""
        items: list[tuple[str, str]] = []
        wb = self._row("twfe", "wild_bootstrap")
        sample = (f"With {int(wb['n_treated'])} pilots and {int(wb['n_comparison'])} comparators"
                  if wb is not None else "With these LAs")
        if _finite(e.get("mde")):
            text = (f"{sample}, this design would detect an effect of {fmt(float(e['mde']))}{uu} or more "
                    "four times in five (the minimum detectable effect, MDE)")
            text += f"; {{numref}}`fig-{self.id}-power` shows smaller effects." if self.shows_power else "."
            items.append(("What the design could detect", text))
        if _finite(e.get("sesoi")):
            reason = f": {o.sesoi_reason}" if o.sesoi_reason else ""
            items.append(("What would matter", f"The smallest effect that would matter, declared before the "
                          f"results were seen (the SESOI), is {fmt(float(e['sesoi']))}{uu}{reason}."))
        lo, hi = float(e["ci_low"]), float(e["ci_high"])

        def say(x: float, what: str) -> str:
            return f"any {what}" if x == 0 else f"{what}s larger than {fmt(x)}{uu}"

        if _finite(e.get("rules_out_improvement")) and _finite(e.get("rules_out_deterioration")):
            text = (f"The interval rules out {say(float(e['rules_out_improvement']), 'improvement')} and "
                    f"{say(float(e['rules_out_deterioration']), 'deterioration')}.")
        else:
            text = (f"The interval rules out {say(max(hi, 0.0), 'increase')} and {say(max(-lo, 0.0), 'decrease')} "
                    "(no direction of benefit is assumed for this measure).")
        if _finite(e.get("equivalence_p")):
            p = float(e["equivalence_p"])
            text += (f" The equivalence test, which asks whether effects at least as large as the SESOI can be "
                     f"ruled out in both directions {{cite:p}}`lakens2017`, gives {fmt_p(p)}: "
                     + ("they can." if p < design().inference.alpha else "they cannot."))
        items.append(("What the interval rules out", text))
        items.append(("If trends were not parallel", self._honest_text()))
        if o.primary and _finite(e.get("p_holm")):
            items.append(("Many outcomes tested", f"Allowing for testing {self._n_outcomes(True)} primary "
                          "outcomes (Holm's method, which keeps the chance of any false finding among them at "
                          f"five per cent {{cite:p}}`holm1979`), the p-value is {_p_bare(float(e['p_holm']))}."))
        elif _finite(e.get("p_bh")):
            items.append(("Many outcomes tested", f"Allowing for testing all {self._n_outcomes(False)} outcomes "
                          f"(the false discovery rate of Benjamini and Hochberg {{cite:p}}`benjamini1995`), the "
                          f"p-value is {_p_bare(float(e['p_bh']))}."))
        if o.primary and self._children_text():
            items.append(("In children", self._children_text()))
        return "\n".join(f"- **{lead}.** {text}" for lead, text in items)

    def _honest_text(self) -> str:
        e, uu = self.evidence, f" {self.unit}" if self.unit else ""
        h = self.honest()
        rm = h[h["method"] == "relative_magnitudes"].sort_values("M")
        if rm.empty or not _finite(e.get("honest_ci_low")):
            return ("There is no HonestDiD reading: the event study has too few pre-period years to measure "
                    "how far trends departed from parallel before the start.")
        fig = f" ({{numref}}`fig-{self.id}-honest`)" if self.shows_honest else ""
        text = (f"If the pilots' trend could depart from the comparators' after the start by as much as the "
                f"largest departure between years before it (HonestDiD, M̄ = 1 {{cite:p}}`rambachan2023`), the "
                f"interval would be {fmt(float(e['honest_ci_low']))} to {fmt(float(e['honest_ci_high']))}{uu}{fig}.")
        exact = rm.iloc[0]
        if _finite(e.get("breakdown_rm")):
            text += (f" The reading would be overturned by a departure {fmt(float(e['breakdown_rm']), 2)} times "
                     "the largest one before the start (the breakdown value).")
        elif float(exact["ci_low"]) <= 0 <= float(exact["ci_high"]):
            text += (" Even with exactly parallel trends that interval includes zero, so there is no finding "
                     "for a departure to overturn.")
        else:
            text += (f" The interval excludes zero for every departure examined, up to "
                     f"{fmt(float(rm['M'].max()), 2)} times the largest one before the start.")
        return text

    def _children_text(self) -> str:
        e = self.evidence
        if not (_finite(e.get("effect_in_children")) and _finite(e.get("median_denominator"))
                and _finite(e.get("estimate")) and float(e["estimate"]) != 0):
            return ""
        spec = DENOMINATORS.get(self.measure)
        if spec is None:
            return ""
        column, _, noun = spec
        den_words, flow = DENOMINATOR_WORDS.get(column, (column.replace("_", " "), False))
        per = " a year" if flow else ""
        scale = float(e["effect_in_children"]) / float(e["estimate"])
        n = float(e["effect_in_children"])
        lo, hi = sorted((float(e["ci_low"]) * scale, float(e["ci_high"]) * scale))

        def count(x: float) -> str:
            return f"{abs(x):,.0f} {'more' if x > 0 else 'fewer'}" if round(abs(x)) else "none"

        return (f"For a pilot of median size ({float(e['median_denominator']):,.0f} {den_words}{per}), "
                f"the estimate is about {count(n)} {noun}{per}, and its interval runs from {count(lo)} to "
                f"{count(hi)}.")

    def glue(self) -> None:
        """Glue this outcome's numbers, sentences, figures, tables and the shared block (keys prefixed by id)."""
        e, k = self.evidence, self.id
        wb = self._main("twfe", "wild_bootstrap")
        glue_md(f"{k}_estimate", f"{fmt(e['estimate'], 1, signed=True)} {self.unit}".strip())
        glue_md(f"{k}_ci", f"{fmt(e['ci_low'])} to {fmt(e['ci_high'])}")
        glue_md(f"{k}_p", fmt_p(e["primary_p"]))
        glue_md(f"{k}_grade", GRADE_WORDS[e["grade"]])
        glue_md(f"{k}_verdict", self.verdict())
        glue_md(f"{k}_verdict_summary", f"**{self.short[0].upper() + self.short[1:]}: "
                                        f"{str(e.get('verdict', verdict_category(e)))}.** {self.verdict()}")
        glue_md(f"{k}_n_treated", str(int(wb["n_treated"])))
        glue_md(f"{k}_n_comparison", str(int(wb["n_comparison"])))
        glue_md(f"{k}_pre_years", str(wb["pre_years"]).replace("-", "–"))
        glue_md(f"{k}_post_years", str(wb["post_years"]).replace("-", "–"))
        glue_md(f"{k}_pretrend_p", fmt_p(e["pretrend_p"]))
        glue_md(f"{k}_max_smd", fmt(e["max_abs_smd"], 2))
        glue_md(f"{k}_agreement", f"{fmt(100 * e['sign_agreement'], 0)}%")
        glue_md(f"{k}_n_sensitivity", str(int(e["n_sensitivity"])))
        glue_md(f"{k}_notes", self.notes())
        from myst_nb import glue

        glue(f"{k}_fig_trends", self.trend_figure(), display=False)
        glue(f"{k}_fig_event", self.event_study_figure(), display=False)
        glue(f"{k}_fig_balance", self.balance_figure(), display=False)
        if self.shows_power:
            glue(f"{k}_fig_power", self.power_figure(), display=False)
        if self.shows_honest:
            glue(f"{k}_fig_honest", self.honest_figure(), display=False)
        for name, table in (("headline", self.headline_table()), ("robustness", self.robustness_table())):
            glue(f"{k}_tab_{name}", table.style.hide(axis="index"), display=False)
            glue(f"{k}_tab_{name}_csv", download_link(table, f"{k}_{name}.csv"), display=False)
        glue_md(f"{k}_findings", self.sections())

    def notes(self) -> str:
        """The main specification's notes on the sample (pilots left out, SDID's balanced panel)."""
        notes = outcome_rows("notes", self.id)
        main_notes = notes[(notes["outcome"] == self.id) & (notes["specification"] == "main")]["note"].tolist()
        main_notes = [n.replace(self.measure, prose_label(self.outcome.label)) for n in main_notes]
        return (" ".join(n[0].upper() + n[1:] + "." for n in main_notes) if main_notes
                else "Every pilot LA had published values in the pre-period.")

    def sections(self) -> str:
        """The standard displays of a findings chapter, as MyST Markdown for ``{glue:md}`` (``:format: myst``).

        It refers to the figures and tables glued by :meth:`glue` under this
        outcome's keys, so it is pasted on the page that calls :meth:`glue`.
        """
        k, o, e = self.id, self.outcome, self.evidence
        label = o.label
        wb = self._main("twfe", "wild_bootstrap")
        info = self.trend_info()
        es_p = fmt_p(float(e["pretrend_p"])) if _finite(e.get("pretrend_p")) else "no test (one pre-year)"
        years = f"{info['first_year']}–{info['last_year']}"
        if info["balanced"]:
            dropped = info["dropped_pilots"] + info["dropped_comparators"]
            who = " and ".join(f"{n} {what}{'s' if n != 1 else ''}" for n, what in
                               ((info["dropped_pilots"], "pilot"), (info["dropped_comparators"], "comparator")) if n)
            sample = (f"A balanced panel: the {info['n_pilots']} pilots and {info['n_comparators']} comparators "
                      f"with a published value in every year from {info['first_year']} to {info['last_year']}. "
                      + (f"LAs of the estimate with a missing (suppressed or unpublished) year, here {who}, are "
                         "left out of this figure; their published years still enter the estimate."
                         if dropped else "No LA of the estimate has a missing year."))
            if info["first_year"] > o.first_year:
                sample += (f" Years before {info['first_year']} are not shown: too many of their values are "
                           "suppressed for a balanced panel.")
        else:
            sample = ("Too many values are suppressed for a balanced panel, so each year's mean is over the LAs "
                      "of the estimate with a published value that year (the legend gives the largest number).")
        trend_caption = (
            f"{label}: mean for the pilot LAs and their matched comparators (weighted so that each pilot's "
            f"comparators count as one LA), {years}. The dotted line is the pilots' path had they changed as "
            f"their comparators did (the comparators' change added to the pilots' pre-period level); the shaded "
            f"band is that path plus the estimated effect, {_with_unit(fmt(e['estimate'], 1, True), self.unit)} "
            f"(95% wild cluster bootstrap interval). {sample} Vertical lines mark the first treated year. "
            f"{self.SOURCE}")
        trend_alt = (f"Line chart titled '{self.title()}': {prose_label(label)} by reporting year for the pilot "
                     "LAs and their matched comparators, with the pilots' counterfactual path and, after the start "
                     "of Signs of Safety, a shaded band for the estimated effect.")
        blocks = [
            self.notes(),
            _fig_block(f"{k}_fig_trends", f"fig-{k}-trends", trend_alt, trend_caption),
            "### Headline estimate",
            (f"{self.verdict()} The estimate compares {int(wb['n_treated'])} pilot LAs with "
             f"{int(wb['n_comparison'])} matched comparators before ({wb['pre_years']}) and after "
             f"({wb['post_years']}) the start. Its interval and p-value come from the wild cluster bootstrap, "
             "the primary inference, which stays reliable with about ten treated LAs; randomization "
             "inference is a secondary check, and cluster-robust figures are shown only for comparison. "
             "The synthetic difference-in-differences and unmatched rows use every eligible donor "
             "instead of the matched comparators."),
            f"(tab-{k}-headline)=\n```{{glue}} {k}_tab_headline\n```\n\n```{{glue}} {k}_tab_headline_csv\n```",
            "### Year by year",
            self.dynamics(),
            _fig_block(f"{k}_fig_event", f"fig-{k}-event",
                       "Points with vertical wild bootstrap interval bars for each year before and after the "
                       "start of Signs of Safety, around a horizontal line at zero.",
                       f"Event study for {prose_label(label)}: the difference between pilots and matched "
                       "comparators in each year relative to the year before treatment, with 95% wild cluster "
                       "bootstrap intervals (the primary inference). Leads (negative years) test for "
                       f"differences before the programme; their joint test gives {es_p}."),
            "### Balance",
            _fig_block(f"{k}_fig_balance", f"fig-{k}-balance",
                       "Dot plot with one row per matching variable and two points per row, before and after "
                       "matching, and a dashed line at the balance threshold.",
                       f"Absolute standardised mean differences between the pilots and their comparators on "
                       f"each matching variable, before matching (all donors) and after (matched comparators), "
                       f"for {prose_label(label)}. The dashed line marks the balance threshold of the evidence "
                       f"rule ({self.thresholds['max_smd']:g})."),
            "### Robustness",
            self.robustness_text(),
            f"(tab-{k}-robustness)=\n```{{glue}} {k}_tab_robustness\n```\n\n```{{glue}} {k}_tab_robustness_csv\n```",
            "### What the data can and cannot rule out",
            self.rules_out(),
        ]
        if self.shows_power:
            blocks.append(_fig_block(
                f"{k}_fig_power", f"fig-{k}-power",
                "Rising curve of the share of studies that would find an effect against the size of the true "
                "effect, with the minimum detectable effect and the smallest effect of interest marked.",
                f"Power of this design for {prose_label(label)}: the share of repeated studies with these "
                f"pilots, comparators and years whose wild cluster bootstrap test at the five per cent level "
                f"would find a true effect of each size. The dashed line marks the minimum detectable effect "
                f"({_with_unit(fmt(float(e['mde'])), self.unit)}, found four times in five), the dotted line "
                f"the smallest effect of interest."))
        if self.shows_honest:
            blocks.append(_fig_block(
                f"{k}_fig_honest", f"fig-{k}-honest",
                "Two panels of vertical interval bars that widen as the allowed departure from parallel "
                "trends grows, around a horizontal line at zero.",
                f"How the estimate for {prose_label(label)} depends on parallel trends (HonestDiD): robust 95% "
                "intervals when the departure from parallel trends after the start may be up to M̄ times the "
                "largest between pre-period years (left), and when the trend may bend by up to M each year "
                "(right). Where a bar crosses zero, the reading would not survive that departure."))
        blocks += ["### Checks and verdict", self.checks(),
                   f"**Verdict: {str(e.get('verdict', verdict_category(e)))}**, by the checks above and the "
                   "rule set out in the method chapter; the headline estimate above says why."]
        return "\n\n".join(b.strip() for b in blocks if b) + "\n"

    def robustness_text(self) -> str:
        """How many sensitivity runs there were and how many agree, from the runs actually run."""
        e = self.evidence
        t = self._robustness_rows()
        n_specs = t["specification"].map(lambda s: s.split(":", 1)[0]).nunique()
        counted = t[~t["specification"].isin(CONTRAST_SPECS)]
        text = (f"{len(t)} sensitivity runs of {n_specs} specifications were run for this outcome (leaving "
                f"out one pilot at a time counts once per pilot). ")
        if len(counted) and _finite(e.get("sign_agreement")):
            text += (f"Of the {int(e['n_sensitivity'])} that test the same question, "
                     f"{int(round(float(e['sign_agreement']) * int(e['n_sensitivity'])))} give an estimate of "
                     "the same sign as the main analysis")
            contrasts = t[t["specification"].isin(CONTRAST_SPECS)]
            text += ("; the prior-use subgroups are contrasts between kinds of pilot, not checks, and are not "
                     "counted." if len(contrasts) else ".")
        notes = outcome_rows("notes", self.id)
        skipped = notes[(notes["outcome"] == self.id) & notes["note"].str.startswith("not run", na=False)]
        if len(skipped):
            text += (" Not run, because for this outcome they reproduce the main analysis: "
                     + ", ".join(spec_short(s) for s in skipped["specification"]) + ".")
        return (text + " Intervals are wild cluster bootstrap intervals. The last column is what each "
                "run could detect four times in five (its minimum detectable effect, from "
                f"{MDE_SPEC_PANELS} simulated panels for a sensitivity run).")

    # ----------------------------------------------------------------- tables
    def headline_table(self) -> pd.DataFrame:
        """Main-specification estimates: the primary inference first, then checks and other estimators."""
        rows = []
        col = f"Estimate ({self.unit})" if self.unit else "Estimate"
        for estimator, inference, spec, est_label, inf_label, role in HEADLINE_ROWS:
            r = self._row(estimator, inference, spec)
            if r is None:
                continue
            rows.append({"Estimator": est_label, "Inference": inf_label, "Role": role,
                         col: fmt(r["estimate"], 2, True),
                         "95% interval": f"{fmt(r['ci_low'], 2)} to {fmt(r['ci_high'], 2)}",
                         "p-value": _p_bare(r["p_value"]),
                         "LAs (pilots + comparators)": f"{int(r['n_treated'])} + {int(r['n_comparison'])}"})
        return pd.DataFrame(rows)

    def _robustness_rows(self) -> pd.DataFrame:
        t = self.estimates[(self.estimates["estimator"] == "twfe")
                           & (self.estimates["inference"] == "wild_bootstrap")]
        return t[t["specification"] != "main"]

    def robustness_table(self) -> pd.DataFrame:
        """The main analysis and every sensitivity run, with wild bootstrap intervals and sign agreement."""
        t = self.estimates[(self.estimates["estimator"] == "twfe") & (self.estimates["inference"] == "wild_bootstrap")]
        t = pd.concat([t[t["specification"] == "main"], t[t["specification"] != "main"]])
        main = self._row("twfe", "wild_bootstrap")
        cl = self._row("twfe", "cluster")
        se = float(cl["std_error"]) if cl is not None else math.nan
        tol = self.thresholds["sign_tolerance"]

        def agrees(spec: str, est: float) -> str:
            if spec == "main":
                return "–"
            if spec in CONTRAST_SPECS:
                return "contrast, not counted"
            return "yes" if sign_agrees(float(main["estimate"]), se, float(est), tol) else "no"

        onsets = [design().onset_for(self.outcome, s.split(":", 1)[0]) for s in t["specification"]]
        out = pd.DataFrame({
            "Specification": [spec_short(s)[0].upper() + spec_short(s)[1:] for s in t["specification"]],
            "Onset": [o.replace("wave", "wave ") for o in onsets],
            "Estimate": [fmt(v, 2, True) for v in t["estimate"]],
            "95% interval (wild bootstrap)": [f"{fmt(a, 2)} to {fmt(b, 2)}" for a, b in zip(t["ci_low"], t["ci_high"])],
            "p-value": [_p_bare(p) for p in t["p_value"]],
            "Pilots": t["n_treated"].astype(int).to_numpy(),
            "Comparators": t["n_comparison"].astype(int).to_numpy(),
            "Same sign as main": [agrees(s, v) for s, v in zip(t["specification"], t["estimate"])],
            "Could detect (MDE)": [fmt(v, 2) if _finite(v) else "–"
                                   for v in t.get("mde", pd.Series(math.nan, index=t.index))],
        })
        if len(set(onsets)) <= 1:
            out = out.drop(columns="Onset")
        return out

    # ----------------------------------------------------------------- figures
    def first_treated_years(self) -> list[int]:
        """The pilots' distinct first treated years under this outcome's onset, ascending."""
        return sorted(set(design().treated(self.outcome).values()))

    def trend_data(self) -> tuple[pd.DataFrame, dict]:
        """The estimation sample's yearly means as a balanced panel (:func:`balanced_trends`)."""
        if self._trends is None:
            pairs = outcome_rows("matched_pairs", self.id)
            d = design()
            self._trends = balanced_trends(measure_rows(self.measure), pairs, self.measure, d.years(self.outcome),
                                           d.pre_years(self.outcome))
        return self._trends

    def trend_info(self) -> dict:
        """Who and which years the trend figure shows (see :func:`balanced_trends`)."""
        return self.trend_data()[1]

    def trend_figure(self):
        """Balanced-panel means of pilots and comparators, the DiD counterfactual, the estimate, an active title."""
        trends, _ = self.trend_data()
        e = self.evidence
        cf = did_counterfactual(trends, design().pre_years(self.outcome))
        uu = f" {self.unit}" if self.unit else ""
        estimate = dict(estimate=float(e["estimate"]), ci_low=float(e["ci_low"]), ci_high=float(e["ci_high"]),
                        text=f"Estimated effect {fmt(float(e['estimate']), 1, True)}{uu} (95% interval "
                             f"{fmt(float(e['ci_low']))} to {fmt(float(e['ci_high']))})")
        return figures.trend_plot(trends, outcome_label=self.outcome.label,
                                  first_treated_years=self.first_treated_years(), show_pool=False,
                                  counterfactual=cf if len(cf) else None, estimate=estimate if len(cf) else None,
                                  title=self.title())

    def event_coefficients(self) -> pd.DataFrame:
        """Event-study rows of the main specification."""
        es = outcome_rows("event_study", self.id)
        return es[(es["outcome"] == self.id) & (es["specification"] == "main")]

    def event_study_figure(self):
        """Event-study coefficients of the main specification with wild bootstrap intervals (primary)."""
        coefs = self.event_coefficients()
        unit = f" ({self.unit})" if self.unit else ""
        label = "95% interval: wild cluster bootstrap"
        if "wb_ci_low" in coefs.columns and coefs["wb_ci_low"].notna().any():
            coefs = coefs.assign(ci_low=coefs["wb_ci_low"], ci_high=coefs["wb_ci_high"])
        else:
            label = "95% interval: cluster-robust"
        return figures.event_study_plot(coefs, ylabel=f"Difference from the year before{unit}",
                                        interval_label=label)

    def balance_figure(self):
        """Love plot of this outcome's matching variables."""
        b = outcome_rows("balance", self.id)
        return figures.love_plot(b[b["outcome"] == self.id], threshold=self.thresholds["max_smd"])

    def power(self) -> pd.DataFrame:
        """The outcome's rows of ``results/power.csv`` (empty when absent)."""
        try:
            return outcome_rows("power", self.id)
        except DataError:
            return pd.DataFrame(columns=["outcome", "effect_in_mdes", "effect", "power"])

    def honest(self) -> pd.DataFrame:
        """The outcome's rows of ``results/honest_did.csv`` (empty when absent)."""
        try:
            return outcome_rows("honest_did", self.id)
        except DataError:
            return pd.DataFrame(columns=["outcome", "method", "M", "ci_low", "ci_high"])

    def power_figure(self):
        """Power curve with the MDE and the SESOI marked."""
        e = self.evidence
        return figures.power_curve_plot(self.power(), mde=float(e["mde"]), unit=self.unit,
                                        sesoi=float(e["sesoi"]) if _finite(e.get("sesoi")) else None)

    def honest_figure(self):
        """HonestDiD intervals against M-bar (relative magnitudes) and M (smoothness)."""
        e = self.evidence
        return figures.honest_did_plot(self.honest(), unit=self.unit,
                                       breakdown=float(e["breakdown_rm"]) if _finite(e.get("breakdown_rm")) else None)


# --------------------------------------------------------------------------- method and diagnostics
DIRECTION_WORDS = {"lower_is_better": "lower is better", "higher_is_better": "higher is better",
                   "none": "no direction assumed"}


def child_level_section(outcome: str, heading: str) -> list:
    """What a findings chapter shows for a child-level outcome, ready to ``display``.

    The heading and verdict with the child-level model beside it, the headline
    table and its download link; an empty list when ``results/`` has no grade for
    the outcome (the public build, or returns that do not cover it), so the
    chapter shows nothing.
    """
    from IPython.display import Markdown

    if outcome not in estimated_outcomes():
        return []
    f = Findings(outcome)
    table = f.headline_table()
    text = f"**{heading}** {f.verdict()} {f.child_level_comparison()}".strip()
    return [Markdown(text), table.style.hide(axis="index"),
            download_link(table, f"{outcome}_headline.csv")]


def child_level_verdict(outcome: str) -> list:
    """The verdict of a child-level outcome for a chapter's Verdict section ([] when absent)."""
    from IPython.display import Markdown

    if outcome not in estimated_outcomes():
        return []
    return [Markdown(Findings(outcome).verdict())]


def outcomes_table() -> pd.DataFrame:
    """The pre-specified outcomes, as the design file declares them."""
    d = design()
    rows = []
    for o in d.outcomes:
        pre = d.pre_years(o)
        rows.append({"Outcome": o.label, "Panel column": o.measure, "Family": o.family.replace("_", " "),
                     "Direction of benefit": DIRECTION_WORDS[o.direction],
                     "Onset": o.onset.replace("wave", "wave "),
                     "Pre-years": f"{min(pre)}–{max(pre)}", "Years used": f"{o.first_year}–{o.last_year}",
                     "Primary": "yes" if o.primary else "no",
                     "Data": "published" if o.source == "public" else "child-level records"})
    return pd.DataFrame(rows)


def specifications_table() -> pd.DataFrame:
    """The pre-specified specifications (main and sensitivity analyses)."""
    return pd.DataFrame([{"Specification": k, "What it changes": s.description}
                         for k, s in design().specifications.items()])


def deviations_table() -> pd.DataFrame:
    """The deviations log: changes to the analysis plan after results were seen."""
    devs = design().deviations
    return pd.DataFrame([{"Date": d.date.isoformat(), "Change": d.change, "Reason": d.reason} for d in devs],
                        columns=["Date", "Change", "Reason"])


def pilots_table() -> pd.DataFrame:
    """Pilot LAs with their waves and first treated years under each onset."""
    d = design()
    rows = []
    for p in d.pilots:
        rows.append({"Local authority": p.name, "Waves": ", ".join(w.replace("wave", "wave ") for w in p.waves),
                     "First treated year (wave 1 onset)": d.first_treated_year(p.la_code, "wave1") or "–",
                     "First treated year (wave 2 onset)": d.first_treated_year(p.la_code, "wave2") or "not treated",
                     "Experience of Signs of Safety before the pilot": p.prior_sos})
    return pd.DataFrame(rows)


def glue_method() -> None:
    """Glue the method chapter's numbers and the evidence rule in words."""
    d = design()
    inf, m = d.inference, d.matching
    glue_md("evidence_rule", describe_rule(d.evidence.threshold_values()))
    glue_md("n_pilots", str(len(d.pilots)))
    glue_md("n_donors", str(len(d.donor_pool())))
    glue_md("n_donors_no_similar", str(len(d.donor_pool("exclude_similar_models"))))
    glue_md("k_main", str(m.k))
    glue_md("caliper", fmt(m.caliper, 2) if m.caliper is not None else "none")
    glue_md("wb_draws", f"{inf.wild_bootstrap.draws:,}")
    glue_md("ri_draws", f"{inf.randomization.draws:,}")
    glue_md("seed", str(inf.seed))
    glue_md("alpha_pct", f"{fmt(100 * (1 - inf.alpha), 0)}%")
    glue_md("n_outcomes", str(len(d.outcomes)))
    glue_md("n_specs", str(len(d.specifications)))
    glue_md("n_deviations", str(len(d.deviations)))
    glue_md("n_wave1", str(sum("wave1" in p.waves for p in d.pilots)))
    glue_md("n_wave2", str(sum("wave2" in p.waves for p in d.pilots)))
    wave1 = next(o for o in d.outcomes if o.onset == "wave1")
    glue_md("n_pre_wave1", str(len(d.pre_years(wave1))))
    glue_md("context_vars", ", ".join(v.note or v.name for v in m.context))
    glue_md("disclosure_rules", disclosure_rules())

    glue_md("childlevel_rules", load_outcome_rules().markdown())


def disclosure_rules() -> str:
    """The statistical disclosure rules of ``data/disclosure.yaml``, as a bulleted list."""
    st = load_settings()
    zeros = ("zeros are suppressed like other small counts" if st.suppress_zeros
             else "a zero is published as zero, as in the Department's releases")
    items = [
        f"**Small counts.** A count from 1 to {st.threshold - 1} is withheld and shown as `c`; "
        f"{zeros}.",
        "**Secondary suppression.** Further counts are withheld so that no withheld count can "
        "be worked out from totals, from the other cells of its row, or from differences "
        "between linked tables; every table set is then attacked by linear programming, and "
        f"each withheld count must remain uncertain over a range of at least "
        f"{st.protection_level} values that includes {st.threshold} or more.",
        "**Rates.** Percentages and rates are computed on unrounded counts, rounded to "
        f"{'whole numbers' if st.rate_decimals == 0 else f'{st.rate_decimals} decimal places'}, "
        "and withheld wherever a count behind them is withheld.",
    ]
    items += [rounding_rule(st)]
    return "\n".join(f"- {i}" for i in items if i)


def rounding_rule(st) -> str:
    """The rounding sentence of the disclosure rules, from the per-level setting."""
    words = {"national": "England", "regional": "regional", "local_authority": "local authority"}
    bases = {lvl: st.rounding_for(lvl) for lvl in words}
    rounded = [f"{words[lvl]} counts to the nearest {b}" for lvl, b in bases.items() if b]
    plain = [words[lvl] for lvl, b in bases.items() if not b]
    if not rounded:
        return "**Rounding.** Counts are published unrounded."
    text = "**Rounding**, as in the Department's releases: " + ", ".join(rounded)
    if plain:
        text += "; " + " and ".join(plain) + " counts unrounded"
    return text + ". The England row of each table is the rounded sum of the unrounded authority counts."


def pairs_table(outcome: str) -> pd.DataFrame:
    """Matched pilot-comparator pairs of the main specification for one outcome."""
    p = result("matched_pairs")
    p = p[p["outcome"] == outcome]
    return pd.DataFrame({"Pilot LA": p["treated_name"], "Comparator": p["comparator_name"],
                         "Rank": p["rank"].astype(int), "Distance": [fmt(x, 2) for x in p["distance"]],
                         "Same region": np.where(p["same_region"].astype(bool), "yes", "no"),
                         "Beyond caliper": np.where(p["beyond_caliper"].astype(bool), "yes", "no")})


def balance_summary() -> pd.DataFrame:
    """Per outcome: the largest absolute SMD before and after matching."""
    b = result("balance")
    rows = []
    for o in design().outcomes:
        t = b[b["outcome"] == o.id]
        if t.empty:
            continue
        rows.append({"Outcome": o.label, "Largest |SMD| before": fmt(t["smd_before"].abs().max(), 2),
                     "Largest |SMD| after": fmt(t["smd_after"].abs().max(), 2),
                     "Variable with the largest |SMD| after": t.loc[t["smd_after"].abs().idxmax(), "variable"]})
    return pd.DataFrame(rows)


def map_roles(outcome: str) -> dict[str, str]:
    """Role of every LA on the map: pilot, comparator (for ``outcome``), excluded groups."""
    d = design()
    reg = la_register()
    roles = {c: "other" for c in reg["la_code"]}
    roles.update({c: "boundary_changed" for c in reg.loc[reg["boundary_changed"], "la_code"]})
    roles.update({e.la_code: "excluded" for e in d.exclusions.manual})
    roles.update({m.la_code: "similar_model" for m in d.similar_models})
    roles.update({o.la_code: "other_sos" for o in d.other_sos_las})
    pairs = result("matched_pairs")
    roles.update({c: "comparator" for c in pairs.loc[pairs["outcome"] == outcome, "comparator_code"]})
    roles.update({p.la_code: "pilot" for p in d.pilots})
    return roles


# --------------------------------------------------------------------------- summary, sensitivity, implications
def _ev() -> pd.DataFrame:
    return result("evidence").set_index("outcome")


def summary_table() -> pd.DataFrame:
    """One row per outcome: headline estimate, interval, p-value and evidence strength."""
    rows = []
    for o in design().outcomes:
        if o.id not in _ev().index:
            continue
        e = _ev().loc[o.id]
        rows.append({"Outcome": o.label, "Primary": "yes" if o.primary else "no",
                     "Estimate": f"{fmt(e['estimate'], 2, True)} {unit_of(o.measure)}".strip(),
                     "95% interval (wild bootstrap)": f"{fmt(e['ci_low'], 2)} to {fmt(e['ci_high'], 2)}",
                     "p-value (larger of bootstrap and randomization)":
                         fmt_p(e["primary_p"]).replace("p = ", "").replace("p ", ""),
                     "Evidence": GRADE_WORDS[e["grade"]].capitalize()})
    return pd.DataFrame(rows)


def key_messages() -> str:
    """Key messages (Markdown bullets), generated from the evidence grades."""
    d = design()
    ev = _ev()
    lines = []
    for o in d.outcomes:
        if not o.primary or o.id not in ev.index:
            continue
        e = ev.loc[o.id]
        what = prose_label(o.label)
        if e["grade"] == "no":
            lines.append(f"- **{o.label.split(' (')[0]}**: no evidence that Signs of Safety changed "
                         f"{what} in the pilot authorities (estimate {fmt(e['estimate'], 1, True)} "
                         f"{unit_of(o.measure)}, 95% interval {fmt(e['ci_low'], 1)} to {fmt(e['ci_high'], 1)}).")
        else:
            lines.append(f"- **{o.label.split(' (')[0]}**: {GRADE_WORDS[e['grade']]} of "
                         f"{'an' if e['effect'][0] in 'aeiou' else 'a'} {e['effect']} in {what} "
                         f"(estimate {fmt(e['estimate'], 1, True)} {unit_of(o.measure)}, 95% interval "
                         f"{fmt(e['ci_low'], 1)} to {fmt(e['ci_high'], 1)}).")
    others = ev[~ev.index.isin([o.id for o in d.outcomes if o.primary])]
    graded = others[others["grade"].isin(["moderate", "high"])]
    if len(graded):
        names = ", ".join(prose_label(d.outcome(i).label) for i in graded.index)
        lines.append(f"- Among the other outcomes, there is moderate or high strength evidence of a change in {names}.")
    else:
        lines.append("- None of the other outcomes (children in need, looked after, child protection "
                     "plans started, section forty-seven enquiries, social worker turnover and agency "
                     "use) shows moderate or high strength evidence of a change.")
    lines.append("- Kinship care, the outcome with the 2021 evaluation's one significant finding, is not "
                 "published for each authority; the public proxies used here cannot confirm or refute "
                 "that finding. Child-level data would.")
    return "\n".join(lines)


def comparison_with_2021() -> str:
    """How the findings compare with the 2021 evaluation's, generated from the grades."""
    ev = _ev()
    strong = lambda i: i in ev.index and ev.loc[i, "grade"] in ("moderate", "high")  # noqa: E731
    parts = []
    parts.append("On assessment timeliness, the 2021 evaluation found little evidence that assessments "
                 "were completed more quickly; " +
                 ("this report agrees: there is no moderate or high strength evidence of a change."
                  if not strong("assessment_timeliness") else
                  f"this report differs: it finds {GRADE_WORDS[ev.loc['assessment_timeliness', 'grade']]} "
                  f"of {'an' if ev.loc['assessment_timeliness', 'effect'][0] in 'aeiou' else 'a'} "
                  f"{ev.loc['assessment_timeliness', 'effect']}."))
    parts.append("On re-referrals and escalation it found no moderate or high strength evidence of an "
                 "effect; " + ("so does this report." if not (strong("rereferrals") or strong("repeat_plans"))
                               else "this report differs, finding moderate or high strength evidence on at "
                                    "least one of these measures."))
    parts.append("Its significant reduction in kinship care cannot be tested on public data; the proxies "
                 "reported here measure related but different things.")
    parts.append("Differences can arise because this report uses published authority-level rates rather "
                 "than child-level records, different years (up to the latest release), all pilots "
                 "rather than nine of them, and comparators chosen from public data.")
    return " ".join(parts)


def sensitivity_rows(inference: str = "wild_bootstrap") -> pd.DataFrame:
    """TWFE estimates for every outcome and specification except leave-one-out runs."""
    est = result("estimates")
    t = est[(est["estimator"] == "twfe") & (est["inference"] == inference)
            & ~est["specification"].str.startswith("leave_one_out")].copy()
    labels = {o.id: o.label for o in design().outcomes}
    t["outcome_label"] = t["outcome"].map(labels)
    t["spec_label"] = t["specification"].map(lambda s: spec_short(s).capitalize())
    return t


def leave_one_out_table() -> pd.DataFrame:
    """Per outcome: the range of estimates leaving out one pilot at a time."""
    est = result("estimates")
    t = est[(est["estimator"] == "twfe") & (est["inference"] == "cluster")
            & est["specification"].str.startswith("leave_one_out")]
    rows = []
    for o in design().outcomes:
        g = t[t["outcome"] == o.id]
        if g.empty:
            continue
        lo, hi = g.loc[g["estimate"].idxmin()], g.loc[g["estimate"].idxmax()]
        rows.append({"Outcome": o.label, "Smallest estimate": fmt(lo["estimate"], 2, True),
                     "Pilot left out": spec_label(lo["specification"]).replace("Leaving out ", ""),
                     "Largest estimate": fmt(hi["estimate"], 2, True),
                     "Pilot left out ": spec_label(hi["specification"]).replace("Leaving out ", "")})
    return pd.DataFrame(rows)


def sensitivity_reading() -> str:
    """A short generated reading of what moves across specifications and what does not."""
    t = sensitivity_rows()
    est = result("estimates")
    loo = est[(est["estimator"] == "twfe") & (est["inference"] == "cluster")
              & est["specification"].str.startswith("leave_one_out")]
    out = []
    p_cut = design().evidence.threshold_values()["p_moderate"]
    for o in design().outcomes:
        g = t[t["outcome"] == o.id]
        main = g[g["specification"] == "main"]
        if main.empty:
            continue
        m = main.iloc[0]
        flips = g[np.sign(g["estimate"]) != np.sign(m["estimate"])]
        sig = g[(g["p_value"] < p_cut)]
        lo = loo[loo["outcome"] == o.id]
        loo_flip = int((np.sign(lo["estimate"]) != np.sign(m["estimate"])).sum())
        text = f"**{o.label.split(' (')[0]}**: "
        if flips.empty:
            text += "the sign of the estimate is the same in every specification"
        else:
            text += ("the estimate changes sign under " +
                     ", ".join(spec_short(s) for s in flips["specification"]))
        if sig.empty:
            text += f"; no specification gives a wild bootstrap p-value below {p_cut:g}"
        else:
            text += (f"; the wild bootstrap p-value is below {p_cut:g} under " +
                     ", ".join(spec_short(s) for s in sig["specification"]))
        text += (f"; leaving out one pilot at a time changes the sign {loo_flip} time"
                 f"{'' if loo_flip == 1 else 's'} out of {len(lo)}.")
        out.append("- " + text)
    return "\n".join(out)


def implications() -> dict[str, str]:
    """Implications paragraphs, chosen by the evidence grades (different results, different text)."""
    d = design()
    ev = _ev()
    primary = [o for o in d.outcomes if o.primary and o.id in ev.index]
    harm = [o for o in d.outcomes if o.id in ev.index and ev.loc[o.id, "grade"] in ("moderate", "high")
            and ev.loc[o.id, "effect"] == "deterioration"]
    benefit = [o for o in d.outcomes if o.id in ev.index and ev.loc[o.id, "grade"] in ("moderate", "high")
               and ev.loc[o.id, "effect"] == "improvement"]
    txt = {}
    if harm:
        harm_grade = max((ev.loc[o.id, 'grade'] for o in harm), key=['no','low','moderate','high'].index)
        txt["current"] = ("For authorities already using Signs of Safety, the public data give "
                          f"{GRADE_WORDS[harm_grade]} "
                          "of a deterioration in " + ", ".join(prose_label(o.label) for o in harm) +
                          ". They should look at these measures in their own data before continuing unchanged.")
    else:
        txt["current"] = ("For authorities already using Signs of Safety, the public data show no moderate "
                          "or high strength evidence that the model made any measured outcome worse. On this "
                          "evidence it is probably safe to continue, while monitoring the same measures.")
    if benefit:
        txt["considering"] = ("For authorities considering Signs of Safety, there is evidence of an improvement in "
                              + ", ".join(prose_label(o.label) for o in benefit) +
                              ". That is a reason to consider it, with an evaluation planned from the start.")
    else:
        txt["considering"] = ("For authorities considering Signs of Safety, the public data give no moderate or "
                              "high strength evidence that it improves the outcomes measured here. That is a "
                              "reason to pause for thought: adopting it is a large whole-system change, and its "
                              "benefits for these outcomes are not shown.")
    sgo = ev.loc["sgo_exits"] if "sgo_exits" in ev.index else None
    txt["kinship"] = ("Kinship care deserves attention. The 2021 evaluation found children in the pilots less "
                      "likely to be placed with relatives or friends; that cannot be checked on public data. "
                      + ("The proxy used here, leaving care through a special guardianship order, shows "
                         f"{GRADE_WORDS[sgo['grade']]} of a change. " if sgo is not None else "") +
                      "Authorities using Signs of Safety should watch their kinship placements, and DfE "
                      "could publish placements with relatives or friends for each authority.")
    txt["future"] = ("For future evaluations: pre-specify the analysis, as this report's study design file does; "
                     "use inference that stays honest with few treated authorities; and plan access to "
                     "child-level data (the SSDA903 return and the children in need census, through the ONS "
                     "Secure Research Service) for outcomes that are not published, such as kinship care and "
                     f"assessment duration. Of the {len(primary)} primary outcomes, "
                     f"{sum(ev.loc[o.id, 'grade'] in ('moderate', 'high') for o in primary)} reach moderate or "
                     "high strength evidence here.")
    return txt


def glue_summary() -> None:
    """Glue the front matter and implications text."""
    glue_md("key_messages", key_messages())
    glue_md("comparison_2021", comparison_with_2021())
    for k, v in implications().items():
        glue_md(f"implications_{k}", v)
    ev = _ev()
    glue_md("n_outcomes_graded", str(len(ev)))
    glue_md("n_moderate_high", str(int(ev["grade"].isin(["moderate", "high"]).sum())))
    glue_md("findings_count", findings_count(ev))
    glue_md("sensitivity_reading", sensitivity_reading())


def findings_count(ev: pd.DataFrame) -> str:
    """'None of the 12 outcomes reaches ...' / 'One of ...' / '3 of the 12 outcomes reach ...'."""
    n, total = int(ev["grade"].isin(["moderate", "high"]).sum()), len(ev)
    what = "moderate or high strength evidence of an effect"
    if n == 0:
        return f"None of the {total} outcomes reaches {what}."
    if n == 1:
        return f"One of the {total} outcomes reaches {what}."
    if n == total:
        return f"All {total} outcomes reach {what}."
    return f"{n} of the {total} outcomes reach {what}."


def trend_panels() -> list[tuple[str, str, list[int]]]:
    """(outcome id, label, first treated years) for every outcome, for :func:`figures.trend_grid`."""
    d = design()
    return [(o.id, o.label, sorted(set(d.treated(o).values()))) for o in d.outcomes]


# --------------------------------------------------------------------------- editions
def glue_changes(results_dir: Path | None = None, processed_dir: Path | None = None,
                 published_dir: Path | None = None) -> editions.Changes:
    """Glue the *What changed in this edition* page; returns the comparison."""
    changes = editions.compare(results_dir, processed_dir, published_dir)
    for k, v in editions.render(changes).items():
        glue_md(k, v)
    glue_md("changes_published_date", editions.long_date(changes.edition.date) if changes.published
            else "not yet published")
    return changes
