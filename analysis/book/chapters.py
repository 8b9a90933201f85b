"""Helpers the book's chapters call: read built outputs, shape tables for display.

Chapters hold prose and short calls into this module; no analysis happens here,
only reading what the pipeline wrote and arranging it for readers.
"""
from __future__ import annotations

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
from analysis.methods.evidence import describe_rule
from analysis.run import editions


@lru_cache(maxsize=None)
def processed(name: str, folder: Path = PROCESSED_DIR) -> pd.DataFrame:
    """A table written by ``python -m analysis data`` (e.g. ``"coverage"``)."""
    path = Path(folder) / f"{name}.csv"
    if not path.exists():
        raise DataError("not built yet: run `python -m analysis data`", file=str(path))
    df = pd.read_csv(path, dtype={"old_la_code": str, "la_code": str}, keep_default_na=True)
    if name == "panel" and (Path(folder) / "childlevel_published.csv").exists():
        # Child-level mode: a per-LA child-level rate whose count is withheld is never shown.

        df = mask_suppressed(df, _published(Path(folder)), _child_measures(Path(folder)))
    return df


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
}
ESTIMATOR_LABELS = {"twfe": "Matched DiD (two-way fixed effects)",
                    "staggered": "Staggered adoption (Callaway and Sant'Anna)",
                    "child_lpm": "Child-level linear probability model (LA and year effects)"}
GRADE_WORDS = {"no": "no evidence", "low": "low strength evidence",
               "moderate": "moderate strength evidence", "high": "high strength evidence"}


@lru_cache(maxsize=None)
def result(name: str) -> pd.DataFrame:
    """A table written by ``python -m analysis results`` (e.g. ``"estimates"``)."""
    path = RESULTS_FOLDER / f"{name}.csv"
    if not path.exists():
        raise DataError("not computed yet: run `python -m analysis results`", file=str(path))
    return pd.read_csv(path, keep_default_na=True)


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
        path = RESULTS_FOLDER / "estimates.csv"
        have = set(pd.read_csv(path, usecols=["outcome"])["outcome"]) if path.exists() else set()
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
              "k2": "two comparators per pilot", "k5": "five comparators per pilot"}


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
    ev = result("evidence")
    return ev.set_index("outcome").loc[outcome]


class Findings:
    """Everything a findings chapter shows for one outcome, read from ``results/``.

    A chapter calls :meth:`glue`, then shows :meth:`headline_table`,
    :meth:`trend_figure`, :meth:`event_study_figure` and :meth:`robustness_table`.
    """

    def __init__(self, outcome: str) -> None:
        self.outcome = design().outcome(outcome)
        self.id = self.outcome.id
        self.measure = self.outcome.measure
        self.unit = unit_of(self.measure)
        est = result("estimates")
        self.estimates = est[est["outcome"] == self.id]
        self.main = self.estimates[self.estimates["specification"] == "main"]
        self.evidence = evidence_row(self.id)

    # ----------------------------------------------------------------- numbers
    def _main(self, estimator: str, inference: str) -> pd.Series:
        m = self.main
        return m[(m["estimator"] == estimator) & (m["inference"] == inference)].iloc[0]

    def verdict(self) -> str:
        """The plain-English verdict with its evidence strength."""
        e = self.evidence
        grade = GRADE_WORDS[e["grade"]]
        what = prose_label(self.outcome.label)
        change = f"{fmt(e['estimate'], 1, signed=True)} {self.unit}".strip()
        interval = f"{fmt(e['ci_low'])} to {fmt(e['ci_high'])}"
        lead = f"There is {grade} of an effect of Signs of Safety on {what}"
        if e["grade"] != "no":
            lead += f", in the direction of {'an' if e['effect'][0] in 'aeiou' else 'a'} {e['effect']}"
        return (f"{lead}. Relative to their matched comparators, the pilot LAs' measure moved "
                f"by {change} (95% interval {interval}; {fmt_p(e['primary_p'])}, "
                f"the larger of the wild bootstrap and randomization p-values).")

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

    def glue(self) -> None:
        """Glue this outcome's numbers and sentences under keys prefixed by its id."""
        e, k = self.evidence, self.id
        wb = self._main("twfe", "wild_bootstrap")
        glue_md(f"{k}_estimate", f"{fmt(e['estimate'], 1, signed=True)} {self.unit}".strip())
        glue_md(f"{k}_ci", f"{fmt(e['ci_low'])} to {fmt(e['ci_high'])}")
        glue_md(f"{k}_p", fmt_p(e["primary_p"]))
        glue_md(f"{k}_grade", GRADE_WORDS[e["grade"]])
        glue_md(f"{k}_verdict", self.verdict())
        glue_md(f"{k}_n_treated", str(int(wb["n_treated"])))
        glue_md(f"{k}_n_comparison", str(int(wb["n_comparison"])))
        glue_md(f"{k}_pre_years", str(wb["pre_years"]).replace("-", "–"))
        glue_md(f"{k}_post_years", str(wb["post_years"]).replace("-", "–"))
        glue_md(f"{k}_pretrend_p", fmt_p(e["pretrend_p"]))
        glue_md(f"{k}_max_smd", fmt(e["max_abs_smd"], 2))
        glue_md(f"{k}_agreement", f"{fmt(100 * e['sign_agreement'], 0)}%")
        glue_md(f"{k}_n_sensitivity", str(int(e["n_sensitivity"])))
        notes = result("notes")
        main_notes = notes[(notes["outcome"] == k) & (notes["specification"] == "main")]["note"].tolist()
        main_notes = [n.replace(self.measure, prose_label(self.outcome.label)) for n in main_notes]
        glue_md(f"{k}_notes", " ".join(n[0].upper() + n[1:] + "." for n in main_notes)
                if main_notes else "Every pilot LA had published values in the pre-period.")

    # ----------------------------------------------------------------- tables
    def headline_table(self) -> pd.DataFrame:
        """Main-specification estimates under each inference method."""
        rows = []
        for _, r in self.main[self.main["estimator"].isin(["twfe", "staggered", "child_lpm"])].iterrows():
            rows.append({"Estimator": ESTIMATOR_LABELS[r["estimator"]],
                         "Inference": INFERENCE_LABELS.get(r["inference"], r["inference"]),
                         f"Estimate ({self.unit})" if self.unit else "Estimate": fmt(r["estimate"], 2, True),
                         "95% interval": f"{fmt(r['ci_low'], 2)} to {fmt(r['ci_high'], 2)}",
                         "p-value": fmt_p(r["p_value"]).replace("p = ", "").replace("p ", "")})
        return pd.DataFrame(rows)

    def robustness_table(self) -> pd.DataFrame:
        """TWFE estimate (cluster-robust interval) under every specification."""
        t = self.estimates[(self.estimates["estimator"] == "twfe") & (self.estimates["inference"] == "cluster")]
        return pd.DataFrame({
            "Specification": [spec_label(s) for s in t["specification"]],
            "Estimate": [fmt(v, 2, True) for v in t["estimate"]],
            "95% interval (cluster-robust)": [f"{fmt(a, 2)} to {fmt(b, 2)}" for a, b in zip(t["ci_low"], t["ci_high"])],
            "p-value": [fmt_p(p).replace("p = ", "").replace("p ", "") for p in t["p_value"]],
            "Pilots": t["n_treated"].astype(int).to_numpy(),
            "Comparators": t["n_comparison"].astype(int).to_numpy(),
        })

    # ----------------------------------------------------------------- figures
    def first_treated_years(self) -> list[int]:
        """The pilots' distinct first treated years under this outcome's onset, ascending."""
        return sorted(set(design().treated(self.outcome).values()))

    def trend_figure(self):
        """Yearly means of the outcome by group (from ``results/trends.csv``), onsets marked."""
        trends = result("trends")
        return figures.trend_plot(trends[trends["outcome"] == self.id], outcome_label=self.outcome.label,
                                  first_treated_years=self.first_treated_years())

    def event_study_figure(self):
        """Event-study coefficients of the main specification, relative to the year before."""
        es = result("event_study")
        coefs = es[(es["outcome"] == self.id) & (es["specification"] == "main")]
        unit = f" ({self.unit})" if self.unit else ""
        return figures.event_study_plot(coefs, ylabel=f"Difference from the year before{unit}")


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

    if outcome not in set(result("evidence")["outcome"]):
        return []
    f = Findings(outcome)
    table = f.headline_table()
    text = f"**{heading}** {f.verdict()} {f.child_level_comparison()}".strip()
    return [Markdown(text), table.style.hide(axis="index"),
            download_link(table, f"{outcome}_headline.csv")]


def child_level_verdict(outcome: str) -> list:
    """The verdict of a child-level outcome for a chapter's Verdict section ([] when absent)."""
    from IPython.display import Markdown

    if outcome not in set(result("evidence")["outcome"]):
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
