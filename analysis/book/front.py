"""Helpers of the front matter, the method and implications chapters and the 2021 comparison.

Everything here is read from ``results/`` (``evidence.csv``, ``contrasts.csv``,
``estimates.csv``), the study design, ``data/reference/`` and the published edition,
and turned into sentences and tables; no analysis happens here. A rebuild on new data
rewrites every sentence.

Chapters call:

* :func:`glue_front` (key messages, executive summary, edition role: ``chapters/index.md``),
  :func:`summary_table`;
* :func:`glue_comparison`, :func:`comparison_table`, :func:`similar_models_table`
  (``chapters/comparison_2021.md``);
* :func:`glue_method_front`, :func:`known_sos_use_table`, :func:`sesoi_table`,
  :func:`fingerprint_table`, :func:`deviations_by_version` (``chapters/method.md``);
* :func:`glue_implications` (``chapters/implications.md``);
* :func:`glue_edition` (``chapters/changes.md``, ``chapters/governance.md``);
* :func:`glue_theory_of_change`, :func:`theory_of_change_table`, :func:`lag_window_table`,
  :func:`implementation_facts` (``chapters/theory_of_change.md``).

The analysis plan's fingerprint (:func:`fingerprints_from_git`, :func:`write_fingerprints`)
is the sha256 of ``data/study_design.yaml`` as first committed and after each change,
with the deviation entries each change added. The chapter reads the committed
``data/design_fingerprints.csv`` (so a build from a tarball prints it too); regenerate it
after changing the design with ``python -m analysis.book.front fingerprints``.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis.book.chapters import (
    RESULTS_FOLDER,
    design,
    fmt,
    fmt_p,
    glue_md,
    la_names,
    processed,
    prose_label,
    unit_of,
)
from analysis.core.paths import DATA_DIR, DESIGN_PATH, REFERENCE_DIR, ROOT
from analysis.design import load_design
from analysis.ingest.sources import load_manifest
from analysis.methods.evidence import describe_verdicts
from analysis.run import editions
from analysis.run.settings import DENOMINATORS, MDE_PANELS

#: The published edition that is the confirmatory analysis (ISO date). Editions after it
#: are monitoring editions: a change of grade between editions is monitoring, not a finding.
CONFIRMATORY_EDITION = "2026-11-26"

FINDINGS_2021_PATH = REFERENCE_DIR / "findings_2021.csv"
THEORY_PATH = REFERENCE_DIR / "theory_of_change.csv"
COSTS_PATH = REFERENCE_DIR / "implementation_costs.csv"
SOS_USE_PATH = REFERENCE_DIR / "sos_use_ofsted.csv"
FINGERPRINTS_PATH = DATA_DIR / "design_fingerprints.csv"
FINGERPRINT_COLUMNS = ["version", "date", "commit", "sha256", "deviations_added", "deviation_numbers"]

#: Verdict categories (the start of ``evidence.csv``'s ``verdict``) -> short key.
VERDICT_KEYS = {"evidence of an effect": "effect",
                "evidence of no effect larger than the SESOI": "no_effect",
                "inconclusive": "inconclusive",
                "not assessable on this design": "not_assessable"}
#: Words for a denominator column of ``run.study.DENOMINATORS``.
DENOMINATOR_WORDS = {"referrals": "referrals", "cpp_starts": "child protection plans starting",
                     "cla_ceased": "children leaving care", "assessments": "assessments",
                     "pop_0_17": "children aged 0 to 17", "cla_31mar": "children looked after"}
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
                "ten", "eleven", "twelve")


# --------------------------------------------------------------------------- small helpers
def words(n: int) -> str:
    """A count for prose: 'none', 'one' .. 'twelve', then digits."""
    n = int(n)
    return "none" if n == 0 else NUMBER_WORDS[n] if n < len(NUMBER_WORDS) else str(n)


def join(items: Sequence[str], last: str = "and") -> str:
    """'a', 'a and b', 'a, b and c'."""
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + f" {last} " + items[-1]


def capital(text: str) -> str:
    """``text`` with its first letter in capitals."""
    return text[:1].upper() + text[1:]


def lower_first(text: str) -> str:
    """``text`` with a lower-case first letter, unless it starts an acronym ('LAs')."""
    return text if text[1:2].isupper() else text[:1].lower() + text[1:]


def short_label(label: str) -> str:
    """An outcome label without its trailing unit: 'Referrals that were re-referrals ...'."""
    return re.sub(r"\s*\([^)]*\)\s*$", "", label)


def number(x: float, digits: int | None = None) -> str:
    """A magnitude for prose: digits chosen by size (two significant figures at least)."""
    if x is None or not np.isfinite(x):
        return "not estimable"
    if digits is None:
        a = abs(x)
        digits = 0 if a >= 10 else 1 if a >= 1 else 2
        text = fmt(x, digits)
        return re.sub(r"(\.\d)0$", r"\1", text) if digits == 2 else text
    return fmt(x, digits)


def long_date(iso: str) -> str:
    """'2026-11-26' -> '26 November 2026'."""
    return editions.long_date(iso)


def markdown_table(df: pd.DataFrame) -> str:
    """``df`` as a Markdown pipe table (for ``{glue:md}``, where roles such as citations resolve)."""
    return editions.markdown_table(df)


def _read_result(name: str, folder: Path | None = None) -> pd.DataFrame:
    """A results table, or an empty frame when this build has not written it."""
    path = Path(folder or RESULTS_FOLDER) / f"{name}.csv"
    return pd.read_csv(path) if path.exists() else pd.DataFrame()


def evidence_table(folder: Path | None = None) -> pd.DataFrame:
    """``results/evidence.csv`` indexed by outcome id."""
    ev = _read_result("evidence", folder)
    return ev.set_index("outcome") if not ev.empty else ev


def contrasts_table(folder: Path | None = None) -> pd.DataFrame:
    """``results/contrasts.csv`` (empty when absent)."""
    return _read_result("contrasts", folder)


def verdict_key(verdict: str) -> str:
    """'effect', 'no_effect', 'inconclusive' or 'not_assessable' from a verdict text."""
    for text, key in VERDICT_KEYS.items():
        if str(verdict).startswith(text):
            return key
    return "inconclusive"


def plain_reason(reason: str) -> str:
    """A verdict reason of ``evidence.csv`` in plain words."""
    reason = str(reason)
    m = re.match(r"pre-trends rejected \(p = ([\d.eE-]+) < ([\d.]+)\)", reason)
    if m:
        return ("the pilots and their comparators were already moving apart before the programme "
                f"(joint pre-trend test {fmt_p(float(m.group(1)))}, below {m.group(2)})")
    m = re.match(r"imbalance: largest \|SMD\| at least ([\d.]+)", reason)
    if m:
        return ("the pilots could not be matched closely enough to comparators (the largest "
                f"standardised mean difference after matching was {m.group(1)} or more in every "
                "matched specification)")
    return reason


# --------------------------------------------------------------------------- one outcome's reading
@dataclass
class Reading:
    """What one outcome's verdict says, in sentences, from its row of ``evidence.csv``."""

    outcome: object  # design.Outcome
    row: pd.Series

    @property
    def id(self) -> str:
        """The outcome id."""
        return self.outcome.id

    @property
    def name(self) -> str:
        """The outcome label without its unit, for a heading."""
        return short_label(self.outcome.label)

    @property
    def what(self) -> str:
        """The outcome label for use inside a sentence."""
        return prose_label(self.outcome.label)

    @property
    def unit(self) -> str:
        """The unit of the estimate ('percentage points', ...)."""
        return unit_of(self.outcome.measure)

    @property
    def key(self) -> str:
        """The verdict key (see :func:`verdict_key`)."""
        return verdict_key(self.row.get("verdict", ""))

    @property
    def directional(self) -> bool:
        """Whether the design names a direction of benefit."""
        return self.outcome.direction in ("higher_is_better", "lower_is_better")

    @property
    def up_down(self) -> tuple[str, str]:
        """Words for the two directions: ('improvements', 'deteriorations') or ('increases', 'decreases')."""
        return ("improvements", "deteriorations") if self.directional else ("increases", "decreases")

    def bounds(self) -> tuple[float, float]:
        """Largest change in each direction of :attr:`up_down` that the interval does not rule out."""
        lo, hi = float(self.row["ci_low"]), float(self.row["ci_high"])
        if self.directional and np.isfinite(self.row.get("rules_out_improvement", np.nan)):
            return float(self.row["rules_out_improvement"]), float(self.row["rules_out_deterioration"])
        if self.directional:  # older results without the columns
            up, down = max(hi, 0.0), max(-lo, 0.0)
            return (up, down) if self.outcome.direction == "higher_is_better" else (down, up)
        return max(hi, 0.0), max(-lo, 0.0)

    @property
    def sesoi(self) -> float:
        """The smallest effect size of interest (from the results, else the design)."""
        v = self.row.get("sesoi", np.nan)
        return float(v) if v is not None and np.isfinite(v) else float(self.outcome.sesoi)

    @property
    def mde(self) -> float:
        """The minimum detectable effect of the main specification."""
        return float(self.row.get("mde", np.nan))

    def with_unit(self, x: float, signed: bool = False) -> str:
        """A number with the unit."""
        text = fmt(x, 1, signed=signed) if signed else number(x)
        return f"{text} {self.unit}".strip()

    def estimate_text(self) -> str:
        """'+1.2 percentage points, 95% interval -2.0 to 4.9'."""
        r = self.row
        return (f"{self.with_unit(float(r['estimate']), signed=True)}, 95% interval "
                f"{fmt(float(r['ci_low']), 1)} to {fmt(float(r['ci_high']), 1)}")

    def verdict_text(self) -> str:
        """The verdict as ``evidence.csv`` states it."""
        return str(self.row.get("verdict", "")) or "not graded"

    def lean(self) -> str:
        """'an improvement', 'a deterioration', 'an increase' or 'a decrease'."""
        leans = str(self.row.get("leans", "") or self.row.get("effect", ""))
        return {"improvement": "an improvement", "deterioration": "a deterioration",
                "increase": "an increase", "decrease": "a decrease"}.get(leans, leans)

    def ruled_out(self) -> tuple[bool, bool]:
        """Whether an effect of the SESOI is ruled out upwards / downwards (in :attr:`up_down`)."""
        up, down = self.bounds()
        s = self.sesoi
        if not np.isfinite(s):
            return False, False
        return up < s, down < s

    def rules_out_sentence(self) -> str:
        """'It rules out improvements larger than X and deteriorations larger than Y ...'."""
        up, down = self.bounds()
        a, b = self.up_down
        unit = f" {self.unit}" if self.unit else ""
        text = (f"the data rule out {a} larger than {number(up)} and {b} larger than "
                f"{number(down)}{unit}")
        s = self.sesoi
        if not np.isfinite(s):
            return text + "."
        out_up, out_down = self.ruled_out()
        sname = f"the smallest effect that matters ({number(s)}{unit})"
        if out_up and out_down:
            return text + f"; both lie within {sname}."
        if out_up:
            return text + f", so {a[:-1]}s as large as {sname} are ruled out but {b} are not."
        if out_down:
            return text + f", so {b[:-1]}s as large as {sname} are ruled out but {a} are not."
        return text + f": an effect as large as {sname} cannot be ruled out in either direction."

    def detect_sentence(self) -> str:
        """'The design could have detected an effect of X' ('' without an MDE)."""
        if not np.isfinite(self.mde):
            return ""
        unit = f" {self.unit}" if self.unit else ""
        return (f"The design could have detected an effect of {number(self.mde)}{unit} "
                "(its minimum detectable effect at 80% power)")

    def children_sentence(self) -> str:
        """The estimate in children a year for a pilot of median size ('' when not available)."""
        r = self.row
        den = float(r.get("median_denominator", np.nan))
        kids = float(r.get("effect_in_children", np.nan))
        spec = DENOMINATORS.get(self.outcome.measure)
        if spec is None or not (np.isfinite(den) and np.isfinite(kids)):
            return ""
        col, base, noun = spec
        lo, hi = float(r["ci_low"]) * den / base, float(r["ci_high"]) * den / base

        def signed(x: float) -> str:
            n = abs(round(x))
            return f"{n:,} {'more' if x > 0 else 'fewer'}" if n else "no change in the number of"

        return (f"For a pilot of median size (about {round(den):,} "
                f"{DENOMINATOR_WORDS.get(col, col.replace('_', ' '))} a year) the estimate is about "
                f"{signed(kids)} {noun} a year (interval {signed(lo)} to {signed(hi)}).")

    def sentence(self, *, children: bool = True) -> str:
        """The outcome's verdict in two or three sentences."""
        r, k = self.row, self.key
        if k == "not_assessable":
            reasons = [plain_reason(x) for x in str(r.get("verdict_reasons", "")).split(" | ") if x]
            return (f"Not assessable on this design: {join(reasons)}. Its estimate "
                    f"({self.estimate_text()}) is not read as evidence either way.")
        if k == "effect":
            adj = r.get("p_adjusted", np.nan)
            adj_text = (f"; {fmt_p(float(adj)).replace('p', 'adjusted p', 1)} for the number of "
                        "outcomes" if np.isfinite(adj) else "")
            text = (f"{capital(self.verdict_text())} of {self.lean()} ({self.estimate_text()}; "
                    f"{fmt_p(float(r['primary_p']))}{adj_text}).")
        elif k == "no_effect":
            text = (f"Evidence of no effect larger than the smallest that matters "
                    f"({number(self.sesoi)} {self.unit}; {self.estimate_text()}, equivalence test "
                    f"{fmt_p(float(r['equivalence_p']))}).")
        else:
            text = (f"Inconclusive: the estimate leans towards {self.lean()} "
                    f"({self.estimate_text()}). {self.detect_sentence()}; "
                    f"{self.rules_out_sentence()}")
        if children and (kids := self.children_sentence()):
            text += " " + kids
        return text


def readings(ev: pd.DataFrame | None = None, *, primary: bool | None = None) -> list[Reading]:
    """One :class:`Reading` per outcome of the design with a row in ``evidence.csv``."""
    ev = evidence_table() if ev is None else ev
    out = []
    for o in design().outcomes:
        if o.id not in ev.index or (primary is not None and o.primary != primary):
            continue
        out.append(Reading(o, ev.loc[o.id]))
    return out


def verdict_counts(rs: Sequence[Reading]) -> dict[str, int]:
    """How many outcomes have each verdict key."""
    out = dict.fromkeys(VERDICT_KEYS.values(), 0)
    for r in rs:
        out[r.key] += 1
    return out


def verb(n: int, one: str, many: str) -> str:
    """The verb agreeing with a count: 'none shows', 'one shows', 'two show'."""
    return one if int(n) <= 1 else many


def counts_parts(c: dict[str, int]) -> list[str]:
    """Clauses for the verdict counts: 'none shows evidence of an effect', 'nine are inconclusive'."""
    parts = [f"{words(c['effect'])} {verb(c['effect'], 'shows', 'show')} evidence of an effect"]
    if c["no_effect"]:
        parts.append(f"{words(c['no_effect'])} {verb(c['no_effect'], 'shows', 'show')} "
                     "evidence of no effect larger than the smallest that matters")
    if c["inconclusive"]:
        parts.append(f"{words(c['inconclusive'])} {verb(c['inconclusive'], 'is', 'are')} inconclusive")
    if c["not_assessable"]:
        parts.append(f"{words(c['not_assessable'])} {verb(c['not_assessable'], 'is', 'are')} "
                     "not assessable on this design")
    return parts


def counts_sentence(rs: Sequence[Reading], what: str = "outcomes") -> str:
    """'Of the 12 outcomes, none shows evidence of an effect; nine are inconclusive; ...'."""
    return f"Of the {len(rs)} {what}, " + "; ".join(counts_parts(verdict_counts(rs))) + "."


# --------------------------------------------------------------------------- editions
@dataclass
class EditionRole:
    """The role of this edition and of the published one (confirmatory or monitoring)."""

    published_date: str          # ISO date of results/published, '' when none
    confirmatory_date: str       # CONFIRMATORY_EDITION
    is_confirmatory: bool        # this build reproduces the confirmatory edition unchanged
    grade_changes: pd.DataFrame  # outcome, label, old_grade, new_grade, verdict

    @property
    def published_is_confirmatory(self) -> bool:
        """Whether the published edition is the confirmatory one."""
        return self.published_date == self.confirmatory_date

    @property
    def role(self) -> str:
        """'confirmatory' or 'monitoring'."""
        return "confirmatory" if self.is_confirmatory else "monitoring"

    def sentence(self) -> str:
        """The edition's role, for the front page and the *What changed* page."""
        conf = long_date(self.confirmatory_date)
        if not self.published_date:
            return ("No edition of this report has been published yet. The first published "
                    "edition will be the confirmatory analysis; later editions will be monitoring "
                    "editions.")
        if self.is_confirmatory:
            return (f"This is the confirmatory edition: its results are those of the edition "
                    f"published on {conf}, the analysis the study design file pre-specified. "
                    "Later editions are monitoring editions.")
        base = (f"This is a monitoring edition. The confirmatory analysis is the edition published "
                f"on {conf}; this edition repeats it on the data and design of the latest rebuild. "
                "Its verdicts say what the data show now; a change of evidence grade since the "
                "confirmatory edition is reported as monitoring, not as a new finding, because each "
                "rebuild is another look at data that overlap the last")
        if not self.published_is_confirmatory:
            base += (f" (the edition published on {long_date(self.published_date)}, with which the "
                     "*What changed* page compares this one, is itself a monitoring edition)")
        return base + "."

    def changes_sentence(self) -> str:
        """How many outcomes changed grade since the published edition, labelled as monitoring."""
        g = self.grade_changes
        if not self.published_date:
            return ""
        if g.empty:
            return (f"No outcome's evidence grade has changed since the edition of "
                    f"{long_date(self.published_date)}.")
        names = join([prose_label(x) for x in g["label"]])
        return (f"Since the edition of {long_date(self.published_date)}, the evidence grade changed "
                f"for {words(len(g))} {'outcome' if len(g) == 1 else 'outcomes'} ({names}). "
                "These changes are monitoring: they are not new findings, and the confirmatory "
                "verdicts stand until a pre-specified analysis says otherwise.")


def edition_role(results_dir: Path | None = None, published_dir: Path | None = None,
                 confirmatory: str = CONFIRMATORY_EDITION, processed_dir: Path | None = None) -> EditionRole:
    """The role of the current build, from the published edition and the current results.

    The build is the confirmatory edition only when the published edition is the
    confirmatory one and nothing (data files, years, estimates) has changed since.
    """
    if editions.load_edition(published_dir) is None:
        return EditionRole("", confirmatory, False, pd.DataFrame())
    ch = editions.compare(results_dir, processed_dir, published_dir)
    ev = _read_result("evidence", results_dir)
    verdicts = ev.set_index("outcome")["verdict"] if "verdict" in ev else pd.Series(dtype=str)
    o = ch.outcomes
    if not o.empty:
        o = o[[("evidence grade" in c) for c in o["changed"]]]
    changes = pd.DataFrame({"outcome": o["outcome"] if not o.empty else [],
                            "label": o["label"] if not o.empty else [],
                            "old_grade": o["old_grade"] if not o.empty else [],
                            "new_grade": o["new_grade"] if not o.empty else []})
    changes["verdict"] = [verdicts.get(x, "") for x in changes["outcome"]]
    return EditionRole(ch.edition.date, confirmatory, ch.edition.date == confirmatory and ch.none,
                       changes.reset_index(drop=True))


def grade_changes_table(role: EditionRole) -> pd.DataFrame:
    """The outcomes whose grade changed since the published edition, with the verdict now."""
    g = role.grade_changes
    return pd.DataFrame({"Outcome": g["label"],
                         "Grade, published edition": g["old_grade"].map(editions.GRADE_WORDS),
                         "Grade now (monitoring)": g["new_grade"].map(editions.GRADE_WORDS),
                         "Verdict now": g["verdict"]})


def glue_edition(results_dir: Path | None = None, published_dir: Path | None = None) -> EditionRole:
    """Glue ``edition_role``, ``edition_grade_changes`` (and its table); returns the role."""
    role = edition_role(results_dir, published_dir)
    glue_md("edition_role", role.sentence())
    glue_md("edition_role_word", role.role)
    glue_md("edition_confirmatory_date", long_date(role.confirmatory_date))
    glue_md("edition_grade_changes", role.changes_sentence() or "No edition has been published yet.")
    table = grade_changes_table(role)
    glue_md("edition_grade_changes_table", markdown_table(table) if len(table) else "")
    return role


# --------------------------------------------------------------------------- what is compared
def known_sos_use_table(d=None) -> pd.DataFrame:
    """LAs with public evidence of Signs of Safety use, their evidence, source and role here."""
    d = d or design()
    rows = pd.read_csv(SOS_USE_PATH, dtype=str, keep_default_na=False)
    main_pool = set(d.donor_pool("main"))
    pilots = {p.la_code for p in d.pilots}
    other = {o.la_code for o in d.other_sos_las}
    similar = {m.la_code for m in d.similar_models}
    excluded = {e.la_code: e.reason for e in d.exclusions.manual}
    names = la_names()
    out = []
    for code, g in rows.groupby("ons_code", sort=False):
        if code in pilots:
            role = "pilot"
        elif code in other:
            role = "another Signs of Safety programme: never a comparator"
        elif code in main_pool:
            role = "in the main donor pool; left out of the no-known-use pool"
            if code in similar:
                role += " (and of the pool without similar models)"
        elif code in excluded:
            role = "not a donor (too few children)"
        else:
            role = "not a donor"
        ev = []
        for r in g.itertuples(index=False):
            url = r.archive_url or r.source_url.split(" ; ")[0]
            if r.evidence_type == "named_in_ofsted_report":
                what = f"named in an Ofsted {r.framework} report ({r.year}): {r.evidence.removeprefix('named: ')}"
                ev.append(f"[{what}]({url})" if url else what)
            else:
                ev.append(f"[{r.programme}]({url})" if url else r.programme)
        out.append({"Local authority": names.get(code, g["la_name"].iloc[0]),
                    "Public evidence of Signs of Safety use": "; ".join(dict.fromkeys(ev)),
                    "Role in this report": role})
    table = pd.DataFrame(out)
    order = {"pilot": 2}
    table["_o"] = [order.get(r, 0 if r.startswith("in the main") else 1) for r in table["Role in this report"]]
    return table.sort_values(["_o", "Local authority"]).drop(columns="_o").reset_index(drop=True)


def comparison_counts(d=None) -> dict[str, int]:
    """Counts behind 'what is compared': pilots, donors, known users among the donors."""
    d = d or design()
    pool = set(d.donor_pool("main"))
    known = {k.la_code for k in d.known_sos_use}
    spec = next((k for k, s in d.specifications.items() if s.exclude_known_sos), None)
    return {"pilots": len(d.pilots), "donors": len(pool), "known_in_pool": len(pool & known),
            "known": len(known), "similar_in_pool": len(pool & {m.la_code for m in d.similar_models}),
            "donors_no_known": len(d.donor_pool(spec)) if spec else len(pool)}


def what_is_compared(d=None, *, short: bool = False) -> str:
    """A paragraph: the funded programme in the pilots against LAs with mixed practice.

    ``short``: one sentence for the key messages. The long form cites the 2021 evaluation,
    so glue it with the ``{glue:md}`` directive (``:format: myst``).
    """
    c = comparison_counts(d)
    if short:
        return (f"The funded whole-system programme in the {c['pilots']} pilot authorities against "
                f"matched authorities with mixed practice ({words(c['known_in_pool'])} of the "
                f"{c['donors']} possible comparators {verb(c['known_in_pool'], 'has', 'have')} public "
                f"evidence of using Signs of Safety and {words(c['similar_in_pool'])} run similar "
                "models): the estimates are the programme's added effect, not the effect of Signs of "
                "Safety against none.")
    return (f"The comparison is the funded whole-system programme in the {c['pilots']} pilot "
            f"authorities against matched authorities with mixed practice, not Signs of Safety "
            f"against no Signs of Safety. About two thirds of English authorities used Signs of "
            f"Safety in some form by 2021 {{cite:p}}`baginsky2021`; of the {c['donors']} authorities "
            f"the comparators are drawn from, {words(c['known_in_pool'])} "
            f"{verb(c['known_in_pool'], 'has', 'have')} public evidence of using it, and "
            f"{words(c['similar_in_pool'])} run similar whole-system models. Others may use it "
            "without public record, so the estimates are of the programme's effect on top of "
            "whatever comparators did. A sensitivity analysis drops the authorities with public "
            f"evidence of use ({c['donors_no_known']} donors remain) and another the similar models.")


# --------------------------------------------------------------------------- front page
def summary_table(ev: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per outcome: estimate and interval, p-values, MDE beside SESOI, verdict."""
    rows = []
    level = fmt(100 * (1 - design().inference.alpha), 0)
    for r in readings(ev):
        e = r.row
        rows.append({"Outcome": r.outcome.label + (" (primary)" if r.outcome.primary else ""),
                     f"Estimate ({level}% interval, wild bootstrap)":
                         f"{fmt(float(e['estimate']), 2, True)} ({fmt(float(e['ci_low']), 2)} to "
                         f"{fmt(float(e['ci_high']), 2)})",
                     "p (adjusted)": f"{_p_cell(e.get('primary_p'))} ({_p_cell(e.get('p_adjusted'))})",
                     "Detectable effect / smallest that matters":
                         f"{number(float(e.get('mde', np.nan)))} / {number(r.sesoi)}",
                     "Verdict": capital(r.verdict_text())})
    return pd.DataFrame(rows)


def _p_cell(p) -> str:
    try:
        p = float(p)
    except (TypeError, ValueError):
        return "–"
    return fmt_p(p).replace("p = ", "").replace("p ", "") if np.isfinite(p) else "–"


def key_messages(ev: pd.DataFrame | None = None, contrasts: pd.DataFrame | None = None,
                 role: EditionRole | None = None) -> str:
    """Key messages (Markdown bullets) from the verdicts, the contrasts and the edition role."""
    ev = evidence_table() if ev is None else ev
    d = design()
    lines = []
    if role is not None:
        lines.append(f"- **This edition.** {role.sentence()}")
    lines.append(f"- **What is compared.** {what_is_compared(d, short=True)}")
    for r in readings(ev, primary=True):
        lines.append(f"- **{r.name}** (primary). {r.sentence()}")
    others = readings(ev, primary=False)
    if others:
        lines.append(f"- **Other outcomes.** {counts_sentence(others, 'other outcomes')}")
    lines.append("- **Kinship care** could not be measured: it is not published for each authority. "
                 "The one harm the 2021 evaluation found, fewer children placed with relatives or "
                 "friends, can be neither confirmed nor ruled out on public data; "
                 + proxies_sentence(ev) + " Child-level records would answer it.")
    grow = grows_summary(contrasts)
    if grow["n"]:
        lines.append(f"- **Without comparators running similar models** {grow['sentence']}")
    return "\n".join(lines)


def proxies_sentence(ev: pd.DataFrame) -> str:
    """The kinship proxies' verdicts in one sentence."""
    rs = [r for r in readings(ev) if r.outcome.family == "kinship_proxy"
          or r.id in ("sgo_exits", "foster_share")]
    if not rs:
        return "no proxy is estimated."
    return ("its public proxies, " + join([f"{r.what} ({r.verdict_text()})" for r in rs])
            + ", measure related but different things.")


def findings_paragraph(ev: pd.DataFrame | None = None) -> str:
    """The executive summary's findings: verdict counts and what the design could detect."""
    rs = readings(ev)
    prim = [r for r in rs if r.outcome.primary]
    text = counts_sentence(rs)
    ratios = [r.mde / r.sesoi for r in prim if np.isfinite(r.mde) and np.isfinite(r.sesoi) and r.sesoi > 0]
    if ratios:
        text += (f" With {len(design().pilots)} pilots, the smallest effect the design could "
                 f"reliably detect on a primary outcome is {fmt(min(ratios), 1)} to "
                 f"{fmt(max(ratios), 1)} times the smallest effect that would matter, so a verdict "
                 "of no evidence is rarely evidence of no effect: the table gives, for each "
                 "outcome, what it could detect and the key messages what each interval rules out.")
    return text


def glue_front() -> EditionRole:
    """Glue the front page: key messages, findings, comparison, implications, edition role."""
    role = glue_edition()
    ev = evidence_table()
    glue_md("front_key_messages", key_messages(ev, contrasts_table(), role))
    glue_md("front_findings", findings_paragraph(ev))
    glue_md("front_what_compared", "**What is compared.** " + what_is_compared())
    glue_md("front_comparison_2021", comparison_summary(ev))
    imp = implications(ev)
    for k, v in imp.items():
        glue_md(f"front_implications_{k}", v)
    return role


# --------------------------------------------------------------------------- 2021 side by side
def load_findings_2021(path: Path = FINDINGS_2021_PATH) -> pd.DataFrame:
    """``data/reference/findings_2021.csv``: the 2021 findings, one row each."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)


def grows_summary(contrasts: pd.DataFrame | None = None) -> dict:
    """The similar-models contrast: how many outcomes' magnitudes grow, how many differ."""
    c = contrasts_table() if contrasts is None else contrasts
    if c.empty or "contrast" not in c:
        return {"n": 0, "grows": 0, "excludes_zero": 0, "grows_excludes_zero": 0,
                "sentence": "the contrast was not computed in this build."}
    s = c[c["contrast"] == "similar_models"].copy()
    grows = s["grows"].astype(str).str.lower().isin(["true", "1", "1.0"])
    excl = (s["ci_low"] > 0) | (s["ci_high"] < 0)
    n, g, x, gx = len(s), int(grows.sum()), int(excl.sum()), int((grows & excl).sum())
    if x == 0:
        verdict = ("no difference is distinguishable from zero (every interval of main minus "
                   "excluding similar models includes zero), so this report does not replicate the "
                   "2021 finding that effects grew")
    else:
        verdict = (f"the difference is distinguishable from zero for {words(x)} "
                   f"({words(gx)} of them growing)")
    sentence = (f"the estimate's magnitude grows for {words(g)} of the {n} outcomes and shrinks "
                f"for {words(n - g)}; {verdict}.")
    return {"n": n, "grows": g, "excludes_zero": x, "grows_excludes_zero": gx, "sentence": sentence,
            "agrees": x > 0 and gx > x - gx and g > n - g}


def similar_models_table(contrasts: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per outcome: main, excluding similar models, the difference with its interval, grows."""
    c = contrasts_table() if contrasts is None else contrasts
    if c.empty:
        return pd.DataFrame()
    s = c[c["contrast"] == "similar_models"]
    labels = {o.id: o.label for o in design().outcomes}
    grows = s["grows"].astype(str).str.lower().isin(["true", "1", "1.0"])
    return pd.DataFrame({
        "Outcome": [labels.get(o, o) for o in s["outcome"]],
        "Main analysis": [fmt(x, 2, True) for x in s["estimate_first"]],
        "Excluding similar models": [fmt(x, 2, True) for x in s["estimate_second"]],
        "Main minus excluding": [fmt(x, 2, True) for x in s["difference"]],
        "95% interval of the difference": [f"{fmt(a, 2)} to {fmt(b, 2)}" for a, b in zip(s["ci_low"], s["ci_high"])],
        "Magnitude grows when excluded": np.where(grows, "yes", "no"),
    })


def _reading_for(ev: pd.DataFrame, ids: Sequence[str]) -> list[Reading]:
    want = [i for i in ids if i]
    return [r for r in readings(ev) if r.id in want]


def _agree_no_effect(rs: Sequence[Reading], claim: str) -> tuple[str, str]:
    """(agree/differ label, explanation) for a 2021 claim of no (strong) effect."""
    assessable = [r for r in rs if r.key != "not_assessable"]
    if not assessable:
        return ("cannot be compared", "this report's design checks fail for the measure, so it "
                                      "gives no verdict to compare")
    strong = [r for r in assessable if r.key == "effect"
              and str(r.row.get("grade")) in ("moderate", "high")]
    if claim == "no_improvement":
        strong = [r for r in strong if str(r.row.get("effect")) == "improvement"]
    if strong:
        return ("differ", "this report finds " + join([f"{r.verdict_text()} on {r.what}" for r in strong]))
    ruled = [r for r in assessable if r.directional and r.ruled_out()[0]]
    extra = (" and rules out an improvement as large as the smallest that matters on "
             + join([r.what for r in ruled])) if ruled else ""
    return ("agree", "neither finds moderate or high strength evidence of an effect" + extra)


def comparison_rows(ev: pd.DataFrame | None = None, contrasts: pd.DataFrame | None = None,
                    findings: pd.DataFrame | None = None) -> list[dict]:
    """The side-by-side rows, one per 2021 finding (dicts with ``id`` and ``agree``)."""
    ev = evidence_table() if ev is None else ev
    f = load_findings_2021() if findings is None else findings
    d = design()
    grow = grows_summary(contrasts)
    rows = []
    for r in f.itertuples(index=False):
        ids = [x for x in r.outcomes.split(";") if x]
        child = [x for x in r.child_level_outcomes.split(";") if x]
        rs = _reading_for(ev, ids)
        crs = _reading_for(ev, child)
        estimate = "<br>".join(f"{x.name}: {x.estimate_text()}; **{x.verdict_text()}**" for x in [*crs, *rs])
        if r.claim in ("no_improvement", "no_strong_effect"):
            agree, how = _agree_no_effect(crs or rs, r.claim)
        elif r.claim == "reduction":
            if crs:
                k = crs[0]
                same = k.key == "effect" and float(k.row["estimate"]) < 0
                agree = "agree" if same else "differ"
                how = (f"the child-level estimate is {k.estimate_text()} ({k.verdict_text()}), "
                       f"against {r.effect_2021} percentage points in 2021")
            else:
                agree = "cannot be compared"
                how = ("kinship care is not published for each authority; the public proxies "
                       "measure related but different things")
                estimate = ("Not measured on public data. Proxies: " + estimate) if estimate else \
                    "Not measured on public data."
        elif r.claim == "grows":
            agree = "agree" if grow.get("agrees") else "differ" if grow["n"] else "cannot be compared"
            how = ("replicated: the differences are distinguishable from zero and most grow"
                   if agree == "agree" else "not replicated (see the test below)" if grow["n"]
                   else "the contrast was not computed in this build")
            estimate = capital(grow["sentence"])
        else:  # implications
            estimate = implications_short(ev)
            harm = any(x.key == "effect" and str(x.row.get("effect")) == "deterioration" for x in readings(ev))
            agree = "differ" if harm else "partly"
            how = ("this report finds evidence of a deterioration" if harm else
                   "no evidence of harm on the measured outcomes, but the public data do not show "
                   "the model is safe: kinship care, the one harm found in 2021, is not measured "
                   "and some deteriorations that matter are not ruled out")
        why = _why(r, ids + child, d)
        rows.append({"id": r.id, "finding": r.finding, "topic": r.topic, "said": capital(r.said_2021),
                     "estimate": estimate or "–", "agree": agree, "how": how, "why": why,
                     "source_key": r.source_key})
    return rows


def _why(r, ids: Sequence[str], d) -> str:
    """What differs between the two analyses of one finding: measure, data, years, comparators."""
    if r.claim == "implications":
        return "They follow from the findings above, and differ where those differ."
    outs = [o for o in d.outcomes if o.id in ids and o.source == "public"]
    if r.claim == "grows":
        return (f"2021: similar-model authorities removed from the matched groups. Here: the "
                f"{len(d.similar_models)} authorities known to run similar models removed from the "
                "donor pool, every pilot re-matched, and the difference given with an interval.")
    if outs:
        years = join(sorted({f"{o.first_year}–{o.last_year}" for o in outs}))
        measures = join([prose_label(o.label) for o in outs])
        onsets = join(sorted({o.onset.replace('wave', 'wave ') for o in outs}))
        here = f"Here: published authority-level {measures}, {years}, {onsets} onset."
    else:
        here = "Here: not measurable on published data."
    return f"2021: {r.measure_2021}, on {r.data_2021}. {here}"


def implications_short(ev: pd.DataFrame | None = None) -> str:
    """The implications in three short clauses, for the side-by-side table."""
    rs = readings(ev)
    prim = [r for r in rs if r.outcome.primary and r.key != "not_assessable" and r.directional]
    harm = [r for r in rs if r.key == "effect" and str(r.row.get("effect")) == "deterioration"]
    benefit = [r for r in rs if r.key == "effect" and str(r.row.get("effect")) == "improvement"]
    det_open = [r for r in prim if not r.ruled_out()[1]]
    current = ("Already using: evidence of a deterioration in " + join([r.what for r in harm]) if harm else
               "Already using: no evidence of harm on the measured outcomes"
               + (", but deteriorations that matter are not ruled out for " + join([r.what for r in det_open])
                  if det_open else "") + "; kinship care not measured")
    considering = ("Considering: evidence of an improvement in " + join([r.what for r in benefit]) if benefit
                   else "Considering: no evidence of an improvement: pause for thought")
    return f"{current}.<br>{considering}.<br>Kinship care: cannot be checked on public data; deserves attention."


def comparison_table(ev: pd.DataFrame | None = None, contrasts: pd.DataFrame | None = None) -> str:
    """The side-by-side table as Markdown (citations resolve in ``{glue:md}``)."""
    rows = comparison_rows(ev, contrasts)
    df = pd.DataFrame({"What the 2021 evaluation found": [f"**{r['finding']}**: {lower_first(r['said'])} "
                                                          f"{{cite:p}}`{r['source_key']}`"
                                                          for r in rows],
                       "This report: estimate and verdict": [r["estimate"] for r in rows],
                       "Agree or differ": [f"**{capital(r['agree'])}**: {r['how']}" for r in rows],
                       "Why they can differ": [r["why"] for r in rows]})
    return markdown_table(df)


def comparison_summary(ev: pd.DataFrame | None = None, contrasts: pd.DataFrame | None = None) -> str:
    """One paragraph for the executive summary: how many findings agree, differ, cannot be compared."""
    rows = comparison_rows(ev, contrasts)
    by = {}
    for r in rows:
        by.setdefault(r["agree"], []).append(r["topic"])
    parts = []
    for key, text in (("agree", "agrees with the 2021 evaluation on"), ("partly", "agrees in part on"),
                      ("differ", "differs on"), ("cannot be compared", "cannot test")):
        if key in by:
            parts.append(f"{text} {join(by[key])}")
    return "This report " + "; ".join(parts) + "."


def glue_comparison() -> None:
    """Glue the comparison chapter: the side-by-side table and the similar-models test."""
    ev, c = evidence_table(), contrasts_table()
    glue_md("cmp_table", comparison_table(ev, c))
    grow = grows_summary(c)
    glue_md("cmp_grows", capital(grow["sentence"]))
    glue_md("cmp_n_grows", words(grow["grows"]))
    glue_md("cmp_n_contrasts", str(grow["n"]))
    glue_md("cmp_n_excl_zero", words(grow["excludes_zero"]))
    glue_md("cmp_summary", comparison_summary(ev, c))
    glue_md("cmp_level", f"{fmt(100 * (1 - design().inference.alpha), 0)}%")


# --------------------------------------------------------------------------- implications
def implications(ev: pd.DataFrame | None = None) -> dict[str, str]:
    """Implications paragraphs chosen by the verdicts and what the intervals rule out."""
    ev = evidence_table() if ev is None else ev
    rs = readings(ev)
    prim = [r for r in rs if r.outcome.primary]
    assessable = [r for r in prim if r.key != "not_assessable" and r.directional]
    not_assessable = [r for r in prim if r.key == "not_assessable"]
    harm = [r for r in rs if r.key == "effect" and str(r.row.get("effect")) == "deterioration"]
    benefit = [r for r in rs if r.key == "effect" and str(r.row.get("effect")) == "improvement"]
    det_open = [r for r in assessable if not r.ruled_out()[1]]
    det_closed = [r for r in assessable if r.ruled_out()[1]]
    imp_open = [r for r in assessable if not r.ruled_out()[0]]
    imp_closed = [r for r in assessable if r.ruled_out()[0]]
    na = (" " + capital(join([r.what for r in not_assessable])) + " could not be assessed on this "
          "design.") if not_assessable else ""
    kin = ("Kinship care, where the 2021 evaluation found the one harm, is not published for each "
           "authority and could not be measured here, so nothing on this page says the model is "
           "safe for it.")
    out = {}
    if harm:
        out["current"] = ("For authorities already using Signs of Safety, the public data give "
                          + join([f"{r.verdict_text()} of a deterioration in {r.what}" for r in harm])
                          + ". They should look at these measures in their own data before "
                          "continuing unchanged. " + kin)
    else:
        text = ("For authorities already using Signs of Safety, the public data show no evidence "
                "that the model made a measured outcome worse, but that is not evidence that it is "
                "safe.")
        if det_open:
            text += (" A deterioration as large as the smallest that matters is not ruled out for "
                     + join([f"{r.what} (up to {r.with_unit(r.bounds()[1])})" for r in det_open]) + ".")
        if det_closed:
            text += (" It is ruled out for " + join([r.what for r in det_closed]) + ".")
        text += na + " " + kin + (" The 2021 advice that authorities already using the model are "
                                  "probably safe to continue cannot be confirmed from these data, "
                                  "which cannot show the one harm that evaluation found: continuing "
                                  "authorities should watch their kinship placements and the measures "
                                  "above in their own records.")
        out["current"] = text
    if benefit:
        out["considering"] = ("For authorities considering Signs of Safety, there is "
                              + join([f"{r.verdict_text()} of an improvement in {r.what}" for r in benefit])
                              + ". That is a reason to consider it, with an evaluation planned from the start.")
    else:
        text = ("For authorities considering Signs of Safety, the public data give no evidence that "
                "it improves the outcomes measured here.")
        if imp_closed:
            text += (" An improvement as large as the smallest that matters is ruled out for "
                     + join([r.what for r in imp_closed]) + ".")
        if imp_open:
            text += (" For " + join([r.what for r in imp_open]) + " one is not ruled out: the data "
                     "cannot tell.")
        text += (" That is a reason to pause for thought: adopting it is a large whole-system change "
                 "whose benefits for these outcomes are not shown.")
        out["considering"] = text
    out["kinship"] = ("Kinship care deserves attention. The 2021 evaluation found children in the "
                      "pilots less likely to be placed with relatives or friends; that cannot be "
                      "checked on public data, and " + proxies_sentence(ev) + " Authorities using "
                      "Signs of Safety should watch their kinship placements, and the Department "
                      "for Education could publish placements with relatives or friends for each "
                      "authority, or an evaluator could repeat this analysis on child-level records "
                      "with the report's child-level mode.")
    ratios = [r.mde / r.sesoi for r in prim if np.isfinite(r.mde) and np.isfinite(r.sesoi) and r.sesoi > 0]
    out["future"] = ("For future evaluations: pre-specify the analysis, as this report's study design "
                     "file does, with a smallest effect that matters for each outcome; use inference "
                     "that stays honest with few treated authorities; and plan for power. Of the "
                     f"{len(prim)} primary outcomes here, " + join(counts_parts(verdict_counts(prim)))
                     + (f"; the minimum detectable effects are {fmt(min(ratios), 1)} to "
                        f"{fmt(max(ratios), 1)} times the smallest effects that matter" if ratios else "")
                     + ". More treated authorities, or child-level records (the SSDA903 return and "
                     "the children in need census, through the ONS Secure Research Service), are "
                     "what would make the answer informative, for kinship care above all.")
    return out


def limitations(ev: pd.DataFrame | None = None, contrasts: pd.DataFrame | None = None) -> str:
    """The limitations section: each limitation with its size from this build."""
    ev = evidence_table() if ev is None else ev
    c = contrasts_table() if contrasts is None else contrasts
    d = design()
    cc = comparison_counts(d)
    items = []
    items.append(
        "**Contamination of comparators.** The comparators are authorities with mixed practice: "
        f"{words(cc['known_in_pool'])} of the {cc['donors']} in the donor pool "
        f"{'has' if cc['known_in_pool'] == 1 else 'have'} public evidence of using Signs of Safety "
        f"and {words(cc['similar_in_pool'])} run similar whole-system models, and many more may use "
        "it unrecorded. An effect of the practice that comparators share is invisible here; the "
        "estimate is the funded programme's added effect. The sensitivity analyses without known "
        "users and without similar models address the recorded ones only.")
    covid = next((s for s in d.specifications.values() if s.drop_years), None)
    prog = next((s for s in d.specifications.values() if s.last_year), None)
    text = ("**COVID-19 and other reforms.** The post-period runs through the pandemic and a decade "
            "of other reforms (later adoptions of similar models, the Strengthening Families, "
            "Protecting Children programme, changes to inspection), which may have touched pilots "
            "and comparators differently.")
    if covid is not None:
        text += f" One sensitivity analysis drops {join([str(y) for y in covid.drop_years])}"
    if prog is not None:
        text += f"; another ends the post-period in {prog.last_year}"
    items.append(text + ".")
    sw = source_switches(d)
    groups: dict[tuple[str, str], list[str]] = {}
    for lab, _, before, after in sw:
        groups.setdefault((before, after), []).append(lab)
    if sw:
        items.append(
            "**Source changes at the onset.** For " + join([f"{prose_label(lab)}" for lab, *_ in sw])
            + f", the pre-years and the first treated years of wave one ({sw[0][1]} on) come from "
            "different published files: " + "; ".join(
                f"{a}, then {b}" + (f" ({join([prose_label(x) for x in labs])})" if len(groups) > 1 else "")
                for (a, b), labs in groups.items())
            + ". A change of definition or coverage at that boundary would look like an effect in "
            "pilots and comparators alike, so it biases the difference only if it touched them "
            "differently; release overlaps are checked in the data chapter.")
    sup = suppression_share(d)
    if sup is not None:
        items.append(
            "**Suppression.** Small counts are suppressed in published tables: "
            f"{fmt(sup, 1)}% of the authority-years of the outcome measures are withheld, so some "
            "pilots and comparators lack values in some years (each findings chapter says which).")
    dil = [r for r in readings(ev, primary=True) if r.children_sentence()]
    if dil:
        r = dil[0]
        den = float(r.row["median_denominator"])
        col, base, noun = DENOMINATORS[r.outcome.measure]
        per_point = den / base
        items.append(
            "**Dilution at authority level.** Published rates average over every child in an "
            "authority, so an effect on the families worked with under the model is diluted: for "
            f"{r.what}, one {r.unit.removesuffix('s') if r.unit.endswith('points') else 'unit'} in a "
            f"pilot of median size is about {round(per_point):,} {noun} a year out of "
            f"{round(den):,} {DENOMINATOR_WORDS.get(col, col)}. Child-level outcomes (time to "
            "complete an assessment, kinship placement) cannot be measured at all.")
    pu = c[c["contrast"] == "prior_use"] if not c.empty else c
    if len(pu):
        labels = {o.id: prose_label(o.label) for o in d.outcomes}
        prim = {o.id for o in d.outcomes if o.primary}
        p = pu[pu["outcome"].isin(prim)]
        excl = int(((p["ci_low"] > 0) | (p["ci_high"] < 0)).sum())
        items.append(
            "**Prior use.** Several pilots had used Signs of Safety for years before the programme, "
            "which would bias their estimates towards zero. The estimate for pilots new to the model "
            "minus that for experienced pilots is "
            + join([f"{fmt(x.difference, 1, True)} for {labels.get(x.outcome, x.outcome)} "
                    f"(interval {fmt(x.ci_low, 1)} to {fmt(x.ci_high, 1)})" for x in p.itertuples()])
            + f"; {words(excl)} of these intervals exclude{'s' if excl == 1 else ''} zero, with so "
            "few pilots in each group.")
    items.append(
        "**Repeated looks across editions.** Each rebuild looks again at data that overlap the last. "
        f"The edition of {long_date(CONFIRMATORY_EDITION)} is the confirmatory analysis; later "
        "editions are monitoring editions whose p-values are not adjusted for the repeated looks, "
        "so a change of grade between editions is reported as monitoring, not as a new finding.")
    items.append(
        f"**Few treated authorities.** With {len(d.pilots)} pilots only large effects can be "
        "detected (the minimum detectable effects are in the summary table), and intervals are wide "
        "even when the inference is honest.")
    return "\n".join(f"- {i}" for i in items)


def source_switches(d=None) -> list[tuple[str, int, str, str]]:
    """Wave-one outcomes whose published source changes at the onset.

    ``(label, first treated year, releases of the pre-years, releases of the first two
    treated years)`` from ``panel_long.csv`` (release names from the manifest), for each
    public wave-one outcome whose pre-years and first treated years come from different files.
    """
    d = d or design()
    try:
        long = processed("panel_long")
    except Exception:  # noqa: BLE001 - an older processed folder: nothing to say
        return []
    manifest = load_manifest()

    def names(ids: set[str]) -> str:
        return join(sorted({manifest[i].release if i in manifest else i for i in ids}))

    out = []
    ft = d.waves["wave1"].first_treated_year
    for o in d.outcomes:
        if o.source != "public" or o.onset != "wave1":
            continue
        g = long[long["measure"] == o.measure]
        before = set(g.loc[g["year"].between(o.first_year, ft - 1), "source_id"].dropna())
        after = set(g.loc[g["year"].between(ft, ft + 1), "source_id"].dropna())
        if before and after and before != after:
            out.append((o.label, ft, names(before), names(after - before)))
    return out


def suppression_share(d=None) -> float | None:
    """Share (%) of expected authority-years withheld, over the public outcome measures and years."""
    d = d or design()
    try:
        cov = processed("coverage")
    except Exception:  # noqa: BLE001
        return None
    parts = []
    for o in d.outcomes:
        if o.source != "public":
            continue
        g = cov[(cov["measure"] == o.measure) & cov["year"].between(o.first_year, o.last_year)]
        parts.append(g[["las_with_value", "las_suppressed"]].sum())
    if not parts:
        return None
    tot = pd.concat(parts, axis=1).sum(axis=1)
    n = tot["las_with_value"] + tot["las_suppressed"]
    return float(100 * tot["las_suppressed"] / n) if n else None


def glue_implications() -> None:
    """Glue the implications chapter: the paragraphs and the limitations."""
    ev = evidence_table()
    for k, v in implications(ev).items():
        glue_md(f"front_implications_{k}", v)
    glue_md("front_limitations", limitations(ev))


# --------------------------------------------------------------------------- method chapter
def sesoi_table(d=None) -> pd.DataFrame:
    """The smallest effect size of interest of each outcome, with its reason."""
    d = d or design()
    return pd.DataFrame([{"Outcome": o.label,
                          "Smallest effect that matters": f"{number(o.sesoi)} {unit_of(o.measure)}".strip()
                          if np.isfinite(o.sesoi) else "not declared",
                          "Why this size": capital(o.sesoi_reason) if o.sesoi_reason else "–"}
                         for o in d.outcomes])


def timing_specs(d=None) -> str:
    """The timing specifications (transition year, event years 0-3) as bullets from the design."""
    d = d or design()
    items = []
    for key, s in d.specifications.items():
        if s.drop_first_treated_year or s.max_event_time is not None:
            items.append(f"- **{key.replace('_', ' ')}**: {s.description}.")
    return "\n".join(items) or "No timing specification is declared."


def event_window(d=None) -> tuple[int, int]:
    """The event-time window of the findings: (0, max_event_time of the years_0_3 specification)."""
    d = d or design()
    m = [s.max_event_time for s in d.specifications.values() if s.max_event_time is not None]
    return 0, (min(m) if m else 3)


def primary_inference_text(d=None) -> str:
    """The one primary inference, the named secondary check and the labelled comparison."""
    d = d or design()
    inf = d.inference
    w = inf.wild_bootstrap
    weights = (w.weights[0] if isinstance(w.weights, (list, tuple)) else w.weights)
    return (
        f"**One primary inference.** Every headline figure comes from one method: the wild cluster "
        f"bootstrap, clustered by authority, with the null hypothesis imposed, {str(weights).capitalize()}'s "
        f"weights and {w.draws:,} draws. It gives, together, the headline {fmt(100 * (1 - inf.alpha), 0)}% "
        "interval (by test inversion), the p-value, the joint pre-trend test of the event study's "
        "leads (a bootstrap Wald test) and therefore the verdict. With about ten treated clusters "
        "it keeps close to its nominal size where cluster-robust standard errors do not.\n\n"
        f"**Secondary check.** Randomization inference ({inf.randomization.draws:,} placebo "
        "assignments of the observed treatment years among the authorities of the matched sample) "
        "is reported beside it, with its own interval, as a named check: it does not enter the "
        "verdict.\n\n"
        "**For comparison only.** Cluster-robust (CR1) standard errors and intervals are shown, "
        "labelled as such, because they are what most published difference-in-differences "
        "analyses report; they are too narrow with so few treated authorities.")


def caliper_text(d=None) -> str:
    """Why there is no caliper (or what the caliper does)."""
    d = d or design()
    if d.matching.caliper is None:
        return ("No caliper is used. A caliper of half a standard deviation of the multivariate "
                "distance flagged most matches and was never acted on, so it was removed (see the "
                "deviations log); whether pilots and comparators are close is judged variable by "
                "variable, by the standardised mean differences after matching, which the verdict "
                "uses.")
    return (f"Matches farther than {fmt(d.matching.caliper, 2)} standard deviations of the distances "
            f"are {d.matching.caliper_action}ged.")


#: The simulation of ``benchmarks/ri_rematch_size.py --write`` (the size of randomization
#: inference on a matched sample that is not re-matched for each placebo assignment).
RI_SIZE_FILE = DATA_DIR / "simulations" / "ri_without_rematching.csv"


def ri_size_text(path: Path | None = None) -> str:
    """A paragraph on the size of randomization inference without re-matching, from the simulation.

    Raises ``FileNotFoundError`` when the simulation has not been written: the method
    chapter must not state a size it has not measured.
    """
    sim = pd.read_csv(path or RI_SIZE_FILE)
    ri = sim[sim["test"].str.startswith("randomization")].iloc[0]
    wb = sim[sim["test"].str.startswith("wild")].iloc[0]

    def pct(x: float) -> str:
        return f"{100 * x:.1f}%"

    rate, se = float(ri["rejection_rate"]), float(ri["mc_se"])
    if rate > 0.05 + 2 * se:
        verdict = ("so without re-matching it rejects too often, and its p-values overstate the "
                   "evidence against no effect")
    elif rate < 0.05 - 2 * se:
        verdict = ("so without re-matching it is conservative: it rejects less often than 5% when "
                   "there is no effect, so in this simulation it does not overstate the evidence")
    else:
        verdict = "so not re-matching keeps its size"
    return (f"The comparators are matched once, to the real pilots; randomization inference then "
            f"permutes treatment among the pilots and their comparators without matching again for "
            f"each placebo assignment. A simulation checks that this keeps the test's size "
            f"(`benchmarks/ri_rematch_size.py`): {int(ri['reps'])} panels of {int(ri['n_units'])} "
            f"authorities with no effect, LA-specific trends and serially correlated errors, "
            f"{int(ri['n_treated'])} placebo pilots drawn at random, each matched to its {int(ri['k'])} "
            f"nearest donors on {int(ri['pre_years'])} pre-years. Randomization inference rejected "
            f"no effect at 5% in {pct(ri['rejection_rate'])} of them (Monte Carlo standard error "
            f"{pct(ri['mc_se'])}), {verdict}; the wild cluster bootstrap on the same samples "
            f"rejected in {pct(wb['rejection_rate'])} ({pct(wb['mc_se'])}).")


def glue_method_front() -> None:
    """Glue the method chapter's additions: what is compared, inference, verdicts, fingerprints."""
    d = design()
    glue_md("m_what_compared", what_is_compared(d))
    cc = comparison_counts(d)
    glue_md("m_n_known", str(cc["known"]))
    glue_md("m_n_known_in_pool", words(cc["known_in_pool"]))
    glue_md("m_known_sos_table", markdown_table(known_sos_use_table(d)))
    glue_md("m_primary_inference", primary_inference_text(d))
    glue_md("m_ri_size", ri_size_text())
    glue_md("m_verdict_rule", describe_verdicts(d.evidence.threshold_values(), alpha=d.inference.alpha))
    glue_md("m_caliper", caliper_text(d))
    glue_md("m_timing_specs", timing_specs(d))
    lo, hi = event_window(d)
    glue_md("m_event_window", f"{lo}–{hi}")
    glue_md("m_alpha_pct", f"{fmt(100 * (1 - d.inference.alpha), 0)}%")
    glue_md("m_power_pct", "80%")
    glue_md("m_mde_panels", f"{MDE_PANELS:,}")
    fp = load_fingerprints()
    glue_md("m_fingerprint", fingerprint_sentence(fp))
    glue_md("m_fingerprint_table", fingerprint_list(fp))


# --------------------------------------------------------------------------- plan fingerprints
def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


def _deviation_keys(text: bytes) -> list[tuple[str, str]]:
    try:
        doc = yaml.safe_load(text) or {}
    except yaml.YAMLError:
        return []
    devs = doc.get("deviations") or []
    return [(str(x.get("date", "")), str(x.get("change", ""))) for x in devs if isinstance(x, dict)]


def fingerprints_from_git(root: Path = ROOT, path: Path = DESIGN_PATH) -> pd.DataFrame | None:
    """Every committed version of the design file (oldest first), and the working copy if it differs.

    Columns :data:`FINGERPRINT_COLUMNS`: version number, date (commit date; for an
    uncommitted working copy the date of its newest deviation entry, else today), commit,
    sha256 of the file, how many deviation entries the version added and their numbers in
    its deviations log. None when git or the repository's history is not available.
    """
    root = Path(root)
    git = shutil.which("git")
    if git is None or not (root / ".git").exists():
        return None
    rel = Path(path).resolve().relative_to(root.resolve()).as_posix()
    try:
        log = subprocess.run([git, "-C", str(root), "log", "--format=%H,%as", "--", rel],
                             check=True, capture_output=True, text=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    versions: list[tuple[str, str, bytes]] = []
    for line in reversed(log):
        sha, date = line.split(",", 1)
        try:
            data = subprocess.run([git, "-C", str(root), "show", f"{sha}:{rel}"], check=True,
                                  capture_output=True).stdout
        except (OSError, subprocess.CalledProcessError):
            continue
        versions.append((date, sha, data))
    current = Path(path).read_bytes()
    if not versions or sha256_bytes(versions[-1][2]) != sha256_bytes(current):
        new = [k for k in _deviation_keys(current)
               if not versions or k not in _deviation_keys(versions[-1][2])]
        date = max((k[0] for k in new), default=dt.date.today().isoformat())
        versions.append((date, "", current))
    rows, seen = [], set()
    for i, (date, sha, data) in enumerate(versions, start=1):
        keys = _deviation_keys(data)
        added = [n for n, k in enumerate(keys, start=1) if k not in seen]
        seen.update(keys)
        rows.append(dict(version=i, date=date, commit=sha, sha256=sha256_bytes(data),
                         deviations_added=len(added), deviation_numbers=";".join(map(str, added))))
    return pd.DataFrame(rows, columns=FINGERPRINT_COLUMNS)


def write_fingerprints(out: Path = FINGERPRINTS_PATH, root: Path = ROOT, path: Path = DESIGN_PATH) -> Path:
    """Regenerate ``data/design_fingerprints.csv`` from git (needs the repository's history)."""
    fp = fingerprints_from_git(root, path)
    if fp is None:
        raise RuntimeError("git history of data/study_design.yaml not available: cannot regenerate")
    Path(out).write_text(fp.to_csv(index=False), encoding="utf-8")
    return Path(out)


def load_fingerprints(path: Path = FINGERPRINTS_PATH) -> pd.DataFrame:
    """The committed fingerprints (``data/design_fingerprints.csv``)."""
    return pd.read_csv(path, dtype={"commit": str, "deviation_numbers": str},
                       keep_default_na=False)


def current_sha256(path: Path = DESIGN_PATH) -> str:
    """sha256 of the design file as it is now."""
    return sha256_bytes(Path(path).read_bytes())


def fingerprint_table(fp: pd.DataFrame | None = None) -> pd.DataFrame:
    """The plan versions for display: version, date, commit, sha256, deviation entries added."""
    fp = load_fingerprints() if fp is None else fp
    rows = []
    for r in fp.itertuples(index=False):
        role = "as first published" if int(r.version) == 1 else "change"
        devs = (f"entries {r.deviation_numbers.replace(';', ', ')}" if int(r.deviations_added) > 1
                else f"entry {r.deviation_numbers}" if int(r.deviations_added) == 1 else "none logged")
        rows.append({"Version": f"{r.version} ({role})", "Date": long_date(r.date),
                     "Commit": f"`{r.commit[:12]}`" if r.commit else "not yet committed",
                     "sha256 of data/study_design.yaml": f"`{r.sha256}`",
                     "Deviations log": devs})
    return pd.DataFrame(rows)


def fingerprint_list(fp: pd.DataFrame | None = None) -> str:
    """The plan versions as Markdown bullets (a full sha256 fits a line where a table cell does not)."""
    t = fingerprint_table(fp)
    return "\n".join(f"- **Version {r['Version']}**, {r['Date']}, "
                     + (f"commit {r['Commit']}" if r["Commit"].startswith("`") else r["Commit"])
                     + f": {r['sha256 of data/study_design.yaml']}; deviations log: {r['Deviations log']}."
                     for _, r in t.iterrows())


def fingerprint_sentence(fp: pd.DataFrame | None = None, path: Path = DESIGN_PATH) -> str:
    """A paragraph: the first fingerprint, how many changes, whether the current file is the last."""
    fp = load_fingerprints() if fp is None else fp
    if fp.empty:
        return "No fingerprint of the analysis plan is recorded."
    first, last = fp.iloc[0], fp.iloc[-1]
    now = current_sha256(path)
    state = ("The file this edition was built from has the last of these fingerprints."
             if now == last["sha256"] else
             f"The file this edition was built from (sha256 `{now}`) is not in this list: "
             "it was changed after the list was last regenerated.")
    return (f"The analysis plan as first published ({long_date(first['date'])}) has the sha256 "
            f"fingerprint `{first['sha256']}`; it has changed {words(len(fp) - 1)} "
            f"{'time' if len(fp) == 2 else 'times'} since, each version listed below with the "
            f"deviation entries it added. {state} Anyone can check a copy of the file with "
            "`sha256sum data/study_design.yaml`.")


def deviations_by_version(d=None, fp: pd.DataFrame | None = None) -> pd.DataFrame:
    """The deviations log, numbered, with the plan version that added each entry."""
    d = d or design()
    fp = load_fingerprints() if fp is None else fp
    version_of = {}
    for r in fp.itertuples(index=False):
        for n in filter(None, str(r.deviation_numbers).split(";")):
            version_of[int(n)] = int(r.version)
    return pd.DataFrame([{"No.": i, "Date": x.date.isoformat(), "Change": x.change, "Reason": x.reason,
                          "Plan version": version_of.get(i, "–")}
                         for i, x in enumerate(d.deviations, start=1)],
                        columns=["No.", "Date", "Change", "Reason", "Plan version"])


# --------------------------------------------------------------------------- theory of change
def _labels() -> dict[str, str]:
    """Labels of every outcome of the full design (child-level ones included)."""
    return {o.id: o.label for o in load_design().outcomes}


def _lag(text: str) -> tuple[int, int]:
    a, _, b = str(text).partition("-")
    return int(a), int(b or a)


def theory_of_change_table(path: Path = THEORY_PATH) -> pd.DataFrame:
    """The mechanisms of ``theory_of_change.csv``: outcomes, expected lag, window, sources (Markdown cells)."""
    t = pd.read_csv(path, dtype=str, keep_default_na=False)
    labels = _labels()
    public = {o.id for o in design().outcomes}
    lo, hi = event_window()
    rows = []
    for r in t.itertuples(index=False):
        outs = [short_label(labels.get(x, x)) + ("" if x in public else " (child-level only)")
                for x in r.expected_outcomes.split(";") if x]
        a, b = _lag(r.expected_lag_years)
        if b <= hi:
            window = "yes"
        elif a <= hi:
            window = f"partly (year {b} beyond)" if b == hi + 1 else f"partly (years {hi + 1}–{b} beyond)"
        else:
            window = "no"
        cites = ",".join(k for k in [r.source_key, *r.supporting_keys.split(";")] if k)
        rows.append({"Mechanism": f"**{r.mechanism}**",
                     "Outcomes in this report": "; ".join(outs),
                     "Expected lag (years after onset)": f"{a}–{b}" if b != a else str(a),
                     f"Inside event years {lo}–{hi}?": window,
                     "Sources": f"{{cite:p}}`{cites}`"})
    return pd.DataFrame(rows)


def bib_keys(path: Path = ROOT / "references.bib") -> set[str]:
    """The citation keys of ``references.bib``."""
    return set(re.findall(r"^@\w+\{([^,\s]+),", Path(path).read_text(encoding="utf-8"), flags=re.M))


def mechanisms_list(path: Path = THEORY_PATH) -> str:
    """Each mechanism's description and the basis of its lag, as Markdown bullets with sources.

    A citation key in parentheses inside the text (``(resolutions2017)``) becomes a citation.
    """
    t = pd.read_csv(path, dtype=str, keep_default_na=False)
    keys = bib_keys()

    def cite(text: str) -> str:
        return re.sub(r"\((\w+)\)", lambda m: f"{{cite:p}}`{m.group(1)}`" if m.group(1) in keys
                      else m.group(0), text)

    lines = []
    for r in t.itertuples(index=False):
        kind, _, basis = r.lag_basis.partition(":")
        lag = (f"Lag (*assumed*): {basis.strip()}" if kind.strip() == "assumed"
               else f"Lag (from the sources): {basis.strip()}")
        sources = ",".join(k for k in [r.source_key, *r.supporting_keys.split(";")] if k)
        lines.append(f"- **{r.mechanism}.** {cite(r.description)} {cite(lag)}. {{cite:p}}`{sources}`")
    return "\n".join(lines)


def lag_window_table(path: Path = THEORY_PATH) -> pd.DataFrame:
    """Per mechanism and public outcome: the expected lag, the window, the years 0-3 and main estimates."""
    t = pd.read_csv(path, dtype=str, keep_default_na=False)
    est = _read_result("estimates")
    d = design()
    lo, hi = event_window(d)
    spec = next((k for k, s in d.specifications.items() if s.max_event_time is not None), None)
    rows = []
    for r in t.itertuples(index=False):
        a, b = _lag(r.expected_lag_years)
        for oid in [x for x in r.expected_outcomes.split(";") if x]:
            try:
                o = d.outcome(oid)
            except Exception:  # noqa: BLE001 - a child-level outcome of the public build
                continue

            def cell(s: str | None) -> str:
                if s is None or est.empty:
                    return "–"
                m = est[(est["outcome"] == oid) & (est["specification"] == s) & (est["estimator"] == "twfe")
                        & (est["inference"] == "wild_bootstrap")]
                if m.empty:
                    return "not estimated"
                x = m.iloc[0]
                return f"{fmt(x['estimate'], 2, True)} ({fmt(x['ci_low'], 2)} to {fmt(x['ci_high'], 2)})"

            inside = [y for y in range(max(a, lo), min(b, hi) + 1)]
            rows.append({"Mechanism": r.mechanism, "Outcome": short_label(o.label),
                         "Expected lag": f"{a}–{b}",
                         f"Lag years inside {lo}–{hi}": (f"{inside[0]}–{inside[-1]}" if len(inside) > 1
                                                         else str(inside[0]) if inside else "none"),
                         f"Effect over event years {lo}–{hi}": cell(spec),
                         "Effect over all post-years": cell("main")})
    return pd.DataFrame(rows)


def implementation_facts(topics: Sequence[str], path: Path = COSTS_PATH) -> str:
    """The facts of ``implementation_costs.csv`` on ``topics`` as Markdown bullets with citations.

    A fact that says nothing was found in public sources is marked as such.
    """
    t = pd.read_csv(path, dtype=str, keep_default_na=False)
    t = t[t["topic"].isin(topics)]
    lines = []
    for r in t.itertuples(index=False):
        who = "" if r.la_name in ("all pilots",) else f"*{r.la_name}*: "
        gap = " (**not public**)" if "not found in public sources" in r.fact else ""
        lines.append(f"- {who}{r.fact}{gap} {{cite:p}}`{r.source_key}`")
    return "\n".join(lines)


def glue_theory_of_change() -> None:
    """Glue the theory-of-change chapter: the tables, the window, the implementation facts."""
    lo, hi = event_window()
    glue_md("toc_window", f"{lo} to {hi}")
    glue_md("toc_last", str(hi))
    glue_md("toc_table", markdown_table(theory_of_change_table()))
    glue_md("toc_mechanisms", mechanisms_list())
    glue_md("toc_implementation", implementation_facts(["implementation", "fidelity"]))
    glue_md("toc_costs", implementation_facts(["grant", "cost"]))
    t = pd.read_csv(COSTS_PATH, dtype=str, keep_default_na=False)
    glue_md("toc_n_gaps", words(int(t["fact"].str.contains("not found in public sources").sum())))


# --------------------------------------------------------------------------- command line
def main(argv: Sequence[str] | None = None) -> int:
    """``python -m analysis.book.front fingerprints [--check]``: regenerate or check the CSV."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] != "fingerprints":
        print("usage: python -m analysis.book.front fingerprints [--check]", file=sys.stderr)
        return 2
    if "--check" in args:
        ok = load_fingerprints().iloc[-1]["sha256"] == current_sha256()
        print("up to date" if ok else "stale: run python -m analysis.book.front fingerprints")
        return 0 if ok else 1
    print(json.dumps({"wrote": str(write_fingerprints().relative_to(ROOT))}))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
