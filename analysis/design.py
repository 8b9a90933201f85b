"""The study design: ``data/study_design.yaml`` loaded into typed, validated dataclasses.

The YAML file is the analysis plan (see its header comments). :func:`load_design`
reads it and refuses, with a one-line :class:`~analysis.core.errors.DesignError`
naming the file and the key, a design that

- names an LA code absent from ``data/local_authorities.csv``;
- names a measure the panel does not have (when ``known_measures`` is given;
  an outcome with ``source: child_level`` must instead name a child-level
  measure of :mod:`analysis.childlevel.aggregate`, which the public panel lacks);
- has a date that does not parse, an unknown key, or a value of the wrong kind;
- has a specification that changes an unknown setting;
- leaves a treated LA without a pre-period (fewer than ``min_pre_years``
  years before its first treated year) or without a post-period, for any
  outcome under any specification -- for example a wave-1 onset for
  ``assessments_45wd_pct``, whose data start in 2015, the first wave-1
  treated year.

Timing: the first treated year of a pilot is the DfE reporting year (1 April
to 31 March, named by the year it ends) containing the start date of the
wave that starts its treatment under the chosen onset (:func:`reporting_year`).
"""
from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from analysis.childlevel.aggregate import MEASURES as CHILD_MEASURES
from analysis.core.errors import DesignError
from analysis.core.errors import relative_path as _rel
from analysis.core.paths import DESIGN_PATH, ROOT
from analysis.ingest.geography import la_register
from analysis.methods.evidence import check_thresholds

FAMILIES = ("timeliness", "rereferral", "escalation", "kinship", "kinship_proxy", "context")
#: Where an outcome's measure comes from: the published LA-level statistics, or
#: child-level extracts (SSDA903, CIN census) in child-level mode
#: (:mod:`analysis.childlevel.pipeline`). A child-level outcome's measure is not
#: checked against the panel's measures (the public panel does not have it); the
#: study runner skips it, with a note, when the panel lacks its column.
SOURCES = ("public", "child_level")
DIRECTIONS = ("lower_is_better", "higher_is_better", "none")
#: Settings a specification may change, with the type each takes.
SPEC_KEYS: dict[str, type | tuple[type, ...]] = {
    "onset": str,
    "exclude_similar_models": bool,
    "drop_years": list,
    "last_year": int,
    "leave_one_out": bool,
    "k": int,
    "replace": bool,
    # issue 14: timing, estimand and heterogeneity
    "drop_first_treated_year": bool,   # the transition year of each pilot left out
    "max_event_time": int,             # effect averaged over event times 0..n only
    "exclude_known_sos": bool,         # donor pool without LAs with public evidence of SoS use
    "pilots": str,                     # only the pilots of one prior-use group (PRIOR_USE_GROUPS)
    # issue 15: every donor, unmatched
    "all_donors": bool,
    # issue 15: the matching of the first edition, kept as a named specification
    "first_year": int,                 # no outcome year before this one
    "legacy_matching": bool,           # no hold-out pre-year; context "first_onset" read as "next"
    # issue 15: one comparator set for every outcome
    "common_comparators": bool,        # matched once, on context and the primary outcomes' composite
    # issue 12: LA-years flagged by the anomaly rule (data/validation.yaml) left out
    "drop_anomalies": bool,
}
#: Prior use of Signs of Safety before the programme, read from each pilot's ``prior_sos``.
PRIOR_USE_GROUPS = ("new_to_sos", "experienced")
MATCHING_METHODS = ("optimal", "greedy_closest", "greedy_hardest_first")
CONTEXT_AT = ("last", "mean", "next", "first_onset")
BOOTSTRAP_WEIGHTS = ("rademacher", "webb", "mammen")


def reporting_year(day: dt.date) -> int:
    """DfE reporting year containing ``day`` (April-March, named by the year it ends)."""
    return day.year + 1 if day.month >= 4 else day.year


# ---------------------------------------------------------------- dataclasses

@dataclass(frozen=True)
class Reference:
    """A publication the design cites."""

    id: str
    title: str
    url: str


@dataclass(frozen=True)
class Wave:
    """One wave of the Innovation Programme Signs of Safety project."""

    id: str
    label: str
    start: dt.date
    end: dt.date
    source: str

    @property
    def first_treated_year(self) -> int:
        """Reporting year containing the wave's start date."""
        return reporting_year(self.start)


@dataclass(frozen=True)
class Pilot:
    """A pilot LA: the waves it took part in, its prior SoS experience, the source."""

    la_code: str
    name: str
    waves: tuple[str, ...]
    prior_sos: str
    source: str

    @property
    def prior_use_group(self) -> str:
        """``new_to_sos`` (none, or up to a year), ``experienced`` (about two years or more) or ``unknown``.

        Read from the ``prior_sos`` text of the design file.
        """
        text = self.prior_sos.lower()
        if text.startswith("new to"):
            return "new_to_sos"
        if text.startswith(("about 2 years", "more than 2 years", "2 years or more")):
            return "experienced"
        return "unknown"


@dataclass(frozen=True)
class OtherSosLA:
    """An LA in another Signs of Safety programme (never a comparator)."""

    la_code: str
    name: str
    programme: str
    start: dt.date
    source: str


@dataclass(frozen=True)
class SimilarModelLA:
    """An LA running a similar whole-system model (excluded in a sensitivity spec)."""

    la_code: str
    name: str
    model: str
    programme: str
    start: dt.date
    start_note: str
    source: str


@dataclass(frozen=True)
class Outcome:
    """An outcome: panel measure, family, direction of benefit, onset and years."""

    id: str
    measure: str
    label: str
    family: str
    direction: str
    onset: str
    first_year: int
    last_year: int
    primary: bool
    source: str = "public"
    #: Smallest effect size of interest (the measure's units) and why (issue 13).
    sesoi: float = math.nan
    sesoi_reason: str = ""


@dataclass(frozen=True)
class Specification:
    """A specification: ``main`` or a sensitivity analysis, as changes to main."""

    id: str
    description: str
    changes: Mapping[str, Any] = field(default_factory=dict)

    @property
    def onset(self) -> str | None:
        """Onset imposed on every outcome, or None (each outcome's own)."""
        return self.changes.get("onset")

    @property
    def exclude_similar_models(self) -> bool:
        """Whether the similar-model LAs are dropped from the donor pool."""
        return bool(self.changes.get("exclude_similar_models", False))

    @property
    def drop_years(self) -> tuple[int, ...]:
        """Reporting years removed from estimation (empty: none)."""
        return tuple(self.changes.get("drop_years", ()))

    @property
    def last_year(self) -> int | None:
        """Year by which every outcome's window ends, or None (each outcome's own last year)."""
        return self.changes.get("last_year")

    @property
    def leave_one_out(self) -> bool:
        """Whether to re-estimate once per pilot, leaving that pilot out."""
        return bool(self.changes.get("leave_one_out", False))

    @property
    def drop_first_treated_year(self) -> bool:
        """Leave out each pilot's first treated year (a transition year)."""
        return bool(self.changes.get("drop_first_treated_year", False))

    @property
    def max_event_time(self) -> int | None:
        """Keep treated LA-years up to this many years after onset (None: all)."""
        return self.changes.get("max_event_time")

    @property
    def exclude_known_sos(self) -> bool:
        """Donor pool without the LAs with public evidence of Signs of Safety use."""
        return bool(self.changes.get("exclude_known_sos", False))

    @property
    def pilots(self) -> str | None:
        """Only the pilots of this prior-use group (``new_to_sos``, ``experienced``)."""
        return self.changes.get("pilots")

    @property
    def first_year(self) -> int | None:
        """No outcome year before this one (None: each outcome's own first year)."""
        return self.changes.get("first_year")

    @property
    def legacy_matching(self) -> bool:
        """The first edition's matching: every pre-year matched on, Ofsted at the year after them."""
        return bool(self.changes.get("legacy_matching", False))

    @property
    def all_donors(self) -> bool:
        """No matching: every pilot against every eligible donor, unweighted."""
        return bool(self.changes.get("all_donors", False))

    @property
    def common_comparators(self) -> bool:
        """One comparator set for every outcome, matched on context and a primary-outcome composite."""
        return bool(self.changes.get("common_comparators", False))

    @property
    def drop_anomalies(self) -> bool:
        """Leave out the LA-years the anomaly rule flags for the outcome's measure."""
        return bool(self.changes.get("drop_anomalies", False))


@dataclass(frozen=True)
class ContextVariable:
    """A context variable of the matching distance.

    ``at`` is when it is measured ("last" pre-year observed, "mean" over the
    pre-years, "next": the year after the last pre-year, for values recorded at
    the start of a year such as the Ofsted judgement in force); ``log``: enters
    as a natural log; ``missing_category``: missing is its own category.
    """

    name: str
    at: str
    log: bool
    missing_category: bool
    note: str


@dataclass(frozen=True)
class Matching:
    """Matching settings: the arguments of :func:`analysis.methods.matching.match_comparators`."""

    k: int
    replace: bool
    method: str
    caliper: float | None
    caliper_action: str
    region_penalty: float
    region_exact: bool
    context: tuple[ContextVariable, ...]
    #: Hold the last pre-year out of matching when an outcome has at least this many
    #: pre-years (0: never), so the event study's last lead is an out-of-sample check.
    holdout_min_pre_years: int = 0


@dataclass(frozen=True)
class WildBootstrap:
    """Wild cluster bootstrap settings: draws, weight types (first reported), null imposed or not."""

    draws: int
    weights: tuple[str, ...]
    impose_null: bool


@dataclass(frozen=True)
class Randomization:
    """Randomization inference settings: number of draws and the placebo scheme (in words)."""

    draws: int
    scheme: str


@dataclass(frozen=True)
class Inference:
    """Inference settings; ``wild_bootstrap.weights[0]`` is the reported one."""

    cluster: str
    alpha: float
    seed: int
    wild_bootstrap: WildBootstrap
    randomization: Randomization


@dataclass(frozen=True)
class Threshold:
    """One evidence-grading threshold and the reason for its value."""

    value: float
    rationale: str


@dataclass(frozen=True)
class Evidence:
    """Evidence grading: which p-value is primary and the thresholds, each with its rationale."""

    primary_p_value: str
    primary_p_value_rationale: str
    thresholds: Mapping[str, Threshold]

    def threshold_values(self) -> dict[str, float]:
        """``{key: value}`` as :func:`analysis.methods.evidence.grade_evidence` takes them."""
        return {k: t.value for k, t in self.thresholds.items()}


@dataclass(frozen=True)
class Exclusion:
    """One LA excluded from the donor pool by hand, with the reason."""

    la_code: str
    name: str
    reason: str


@dataclass(frozen=True)
class Exclusions:
    """Donor-pool exclusions: the register's boundary-changed LAs and manual ones."""

    boundary_changed: bool
    manual: tuple[Exclusion, ...]


@dataclass(frozen=True)
class Deviation:
    """An entry of the pre-specification log: a change made after results were seen."""

    date: dt.date
    change: str
    reason: str


@dataclass(frozen=True)
class KnownSosUse:
    """An LA with public evidence of Signs of Safety use (``data/reference/sos_use_ofsted.csv``)."""

    la_code: str
    name: str
    evidence: str
    source: str


@dataclass(frozen=True)
class StudyDesign:
    """The validated study design. Build it with :func:`load_design`."""

    path: Path
    version: int
    references: tuple[Reference, ...]
    waves: Mapping[str, Wave]
    onsets: tuple[str, ...]
    pilots: tuple[Pilot, ...]
    other_sos_las: tuple[OtherSosLA, ...]
    similar_models: tuple[SimilarModelLA, ...]
    outcomes: tuple[Outcome, ...]
    min_pre_years: int
    specifications: Mapping[str, Specification]
    matching: Matching
    inference: Inference
    evidence: Evidence
    exclusions: Exclusions
    deviations: tuple[Deviation, ...]
    known_sos_use: tuple[KnownSosUse, ...] = ()

    # --- treatment timing
    def _pilot(self, la_code: str) -> Pilot:
        for p in self.pilots:
            if p.la_code == la_code:
                return p
        raise DesignError(f"{la_code!r} is not a pilot LA", file=_rel(self.path))

    def _onset(self, onset: str) -> str:
        if onset not in self.onsets:
            raise DesignError(f"unknown onset {onset!r} (known: {list(self.onsets)})",
                              file=_rel(self.path))
        return onset

    def first_treated_year(self, la_code: str, onset: str) -> int | None:
        """First treated reporting year of a pilot under an onset.

        Parameters
        ----------
        la_code
            Current ONS code of a pilot LA.
        onset
            ``"wave1"``: the pilot is treated from the first wave it joined
            (wave-1 LAs 2015, Bexley 2018). ``"wave2"``: from wave 2 (2018)
            for the LAs in wave 2 or later.

        Returns
        -------
        int or None
            The reporting year; None when the pilot is not treated under this
            onset (Tower Hamlets under ``"wave2"``: it left after wave 1, so
            it is then neither treated nor a comparator).

        Raises
        ------
        DesignError
            ``la_code`` is not a pilot or ``onset`` is unknown.
        """
        order = list(self.onsets)
        k = order.index(self._onset(onset))
        joined = [w for w in self._pilot(la_code).waves if order.index(w) >= k]
        if not joined:
            return None
        return min(self.waves[w].first_treated_year for w in joined)

    def pilot_codes(self, onset: str) -> list[str]:
        """Codes of the pilots treated under ``onset`` (in file order)."""
        return [p.la_code for p in self.pilots if self.first_treated_year(p.la_code, onset) is not None]

    def all_pilot_codes(self) -> list[str]:
        """Codes of every pilot, whatever the onset (none is ever a comparator)."""
        return [p.la_code for p in self.pilots]

    # --- specifications
    def spec(self, spec: str | Specification | None = None) -> Specification:
        """The named specification (default ``main``)."""
        if isinstance(spec, Specification):
            return spec
        name = spec or "main"
        if name not in self.specifications:
            raise DesignError(f"unknown specification {name!r} (known: {list(self.specifications)})",
                              file=_rel(self.path))
        return self.specifications[name]

    def k(self, spec: str | Specification | None = None) -> int:
        """Comparators per pilot under ``spec``."""
        return int(self.spec(spec).changes.get("k", self.matching.k))

    def replace(self, spec: str | Specification | None = None) -> bool:
        """Whether ``spec`` matches with replacement."""
        return bool(self.spec(spec).changes.get("replace", self.matching.replace))

    def matching_kwargs(self, spec: str | Specification | None = None) -> dict[str, Any]:
        """Keyword arguments for :func:`analysis.methods.matching.match_comparators` under ``spec``.

        Everything but the panel, the treated LAs, the donors, the outcome and
        its pre-years: ``k``, ``replace``, ``method``, ``caliper``,
        ``caliper_action``, ``region_penalty``, ``region_exact``, ``context``,
        ``context_at``, ``log_vars``, ``missing_category``.
        """
        m = self.matching
        return {
            "k": self.k(spec), "replace": self.replace(spec), "method": m.method,
            "caliper": m.caliper, "caliper_action": m.caliper_action,
            "region_penalty": m.region_penalty, "region_exact": m.region_exact,
            "context": [v.name for v in m.context],
            # "first_onset" variables are read by the study runner from the earliest wave's
            # first treated year and enter matching as a constant ("last").
            "context_at": {v.name: (("next" if self.spec(spec).legacy_matching else "last")
                                    if v.at == "first_onset" else v.at) for v in m.context},
            "log_vars": [v.name for v in m.context if v.log],
            "missing_category": [v.name for v in m.context if v.missing_category],
        }

    def earliest_onset_year(self) -> int:
        """First treated reporting year of the earliest wave (2015 for wave one)."""
        return min(w.first_treated_year for w in self.waves.values())

    def fixed_year_context(self, spec: str | Specification | None = None) -> dict[str, int]:
        """Context variables measured in one year for every outcome: ``{name: year}``.

        ``at: first_onset`` variables (the Ofsted judgement) are taken in the earliest
        wave's first treated year, the judgement in force at its start, so they
        predate every onset; the ``legacy_matching`` specification reads them as "next".
        """
        if self.spec(spec).legacy_matching:
            return {}
        return {v.name: self.earliest_onset_year() for v in self.matching.context if v.at == "first_onset"}

    def matching_pre_years(self, outcome: str | Outcome, spec: str | Specification | None = None) -> list[int]:
        """The pre-years matched on: all of them, less the last when there are enough (hold-out)."""
        pre = self.pre_years(outcome, spec)
        n = self.matching.holdout_min_pre_years
        if n and len(pre) >= n and not self.spec(spec).legacy_matching:
            return pre[:-1]
        return pre

    def pre_years(self, outcome: str | Outcome, spec: str | Specification | None = None) -> list[int]:
        """Years of ``outcome`` before the earliest first treated year under ``spec``.

        These are before every treated LA's start, so they can serve as the
        matching pre-period of all pilots together.
        """
        onset = self.onset_for(outcome, spec)
        start = min(self.first_treated_year(c, onset) for c in self.pilot_codes(onset))
        return [y for y in self.years(outcome, spec) if y < start]

    def treated(self, outcome: str | Outcome, spec: str | Specification | None = None) -> dict[str, int]:
        """``{la_code: first treated year}`` of the pilots treated for ``outcome`` under ``spec``.

        A specification with ``pilots: <group>`` keeps the pilots of that prior-use group only.
        """
        onset = self.onset_for(outcome, spec)
        group = self.spec(spec).pilots
        return {c: self.first_treated_year(c, onset) for c in self.pilot_codes(onset)  # type: ignore[misc]
                if group is None or self._pilot(c).prior_use_group == group}

    def outcome(self, key: str) -> Outcome:
        """An outcome by its id or its measure."""
        for o in self.outcomes:
            if key in (o.id, o.measure):
                return o
        raise DesignError(f"unknown outcome {key!r}", file=_rel(self.path))

    def onset_for(self, outcome: str | Outcome, spec: str | Specification | None = None) -> str:
        """Onset used for ``outcome`` under ``spec`` (the spec's, else the outcome's)."""
        o = outcome if isinstance(outcome, Outcome) else self.outcome(outcome)
        return self.spec(spec).onset or o.onset

    def years(self, outcome: str | Outcome, spec: str | Specification | None = None) -> list[int]:
        """Reporting years used for ``outcome`` under ``spec`` (window less dropped years)."""
        o = outcome if isinstance(outcome, Outcome) else self.outcome(outcome)
        s = self.spec(spec)
        last = min(o.last_year, s.last_year) if s.last_year is not None else o.last_year
        first = max(o.first_year, s.first_year) if s.first_year is not None else o.first_year
        return [y for y in range(first, last + 1) if y not in s.drop_years]

    # --- comparators
    def donor_pool(self, spec: str | Specification | None = None) -> list[str]:
        """LA codes eligible as comparators under ``spec``.

        All register LAs, less every pilot, the other SoS programme LAs, the
        register's boundary-changed LAs (when ``exclusions.boundary_changed``),
        the manual exclusions, and the similar-model LAs when the
        specification says ``exclude_similar_models``. Sorted.
        """
        s = self.spec(spec)
        reg = la_register()
        out = set(reg["la_code"])
        out -= set(self.all_pilot_codes())
        out -= {o.la_code for o in self.other_sos_las}
        if self.exclusions.boundary_changed:
            out -= set(reg.loc[reg["boundary_changed"], "la_code"])
        out -= {e.la_code for e in self.exclusions.manual}
        if s.exclude_similar_models:
            out -= {m.la_code for m in self.similar_models}
        if s.exclude_known_sos:
            out -= {k.la_code for k in self.known_sos_use}
        return sorted(out)


# ---------------------------------------------------------------- loading



class _Checker:
    """Builds one-line errors "<file>, <key>: <message>" and typed getters."""

    def __init__(self, path: Path) -> None:
        self.file = _rel(path)

    def fail(self, key: str, message: str) -> DesignError:
        err = DesignError(message, file=f"{self.file}, {key}" if key else self.file)
        err.file, err.key = self.file, key  # type: ignore[attr-defined]
        return err

    def mapping(self, value: Any, key: str, *, allowed: Iterable[str] | None = None,
                required: Iterable[str] = ()) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        for r in required:
            if r not in value:
                raise self.fail(f"{key}.{r}" if key else r, "missing")
        if allowed is not None:
            allowed = set(allowed)
            for k in value:
                if k not in allowed:
                    raise self.fail(f"{key}.{k}" if key else str(k),
                                    f"unknown key (allowed: {sorted(allowed)})")
        return value

    def seq(self, value: Any, key: str) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(key, f"expected a list, got {type(value).__name__}")
        return value

    def text(self, value: Any, key: str, *, empty: bool = False) -> str:
        if not isinstance(value, str) or (not empty and not value.strip()):
            raise self.fail(key, f"expected non-empty text, got {value!r}")
        return value.strip()

    def integer(self, value: Any, key: str, *, low: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.fail(key, f"expected an integer, got {value!r}")
        if low is not None and value < low:
            raise self.fail(key, f"must be at least {low}, got {value}")
        return value

    def number(self, value: Any, key: str, *, low: float | None = None,
               high: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.fail(key, f"expected a number, got {value!r}")
        if (low is not None and value <= low) or (high is not None and value >= high):
            raise self.fail(key, f"must lie strictly between {low} and {high}, got {value}")
        return float(value)

    def boolean(self, value: Any, key: str) -> bool:
        if not isinstance(value, bool):
            raise self.fail(key, f"expected true or false, got {value!r}")
        return value

    def date(self, value: Any, key: str) -> dt.date:
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        if isinstance(value, str):
            for fmt in ("%Y-%m-%d", "%Y-%m"):
                try:
                    return dt.datetime.strptime(value.strip(), fmt).date()
                except ValueError:
                    pass
        raise self.fail(key, f"not a date (YYYY-MM-DD or YYYY-MM): {value!r}")

    def choice(self, value: Any, key: str, options: Iterable[str]) -> str:
        options = list(options)
        if value not in options:
            raise self.fail(key, f"{value!r} is not one of {options}")
        return value


_TOP_KEYS = {"version", "references", "waves", "onsets", "pilots", "other_sos_las",
             "similar_models", "known_sos_use", "outcomes", "min_pre_years", "specifications",
             "matching", "inference", "evidence", "exclusions", "deviations"}


def load_design(path: Path | str = DESIGN_PATH, *,
                known_measures: Iterable[str] | None = None) -> StudyDesign:
    """Read and validate the study design file.

    Parameters
    ----------
    path
        The YAML file (default ``data/study_design.yaml``).
    known_measures
        Measures of the panel (e.g. the ``measure`` column of its
        ``measures.csv``). When given, every outcome measure and every
        matching context variable must be one of them; when None this check
        is skipped.

    Returns
    -------
    StudyDesign

    Raises
    ------
    DesignError
        One-line message "<file>, <key>: <problem>" for the first problem
        found (see the module docstring for what is checked).
    """
    path = Path(path)
    c = _Checker(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DesignError("study design file not found", file=c.file) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "?"
        raise DesignError(f"not valid YAML at {where}: {getattr(exc, 'problem', exc)}",
                          file=c.file) from None
    top = c.mapping(raw, "", allowed=_TOP_KEYS,
                    required=("waves", "onsets", "pilots", "outcomes", "specifications",
                              "matching", "inference", "evidence", "exclusions"))
    register = set(la_register()["la_code"])

    def la(value: Any, key: str) -> str:
        code = c.text(value, key)
        if code not in register:
            raise c.fail(key, f"unknown LA code {code!r} (not in data/local_authorities.csv)")
        return code

    # references
    refs = []
    for i, r in enumerate(c.seq(top.get("references"), "references")):
        k = f"references[{i}]"
        r = c.mapping(r, k, allowed={"id", "title", "url"}, required={"id", "title", "url"})
        refs.append(Reference(c.text(r["id"], f"{k}.id"), c.text(r["title"], f"{k}.title"),
                              c.text(r["url"], f"{k}.url")))

    # waves and onsets
    waves: dict[str, Wave] = {}
    for wid, w in c.mapping(top["waves"], "waves").items():
        k = f"waves.{wid}"
        w = c.mapping(w, k, allowed={"label", "start", "end", "source"},
                      required={"label", "start", "end", "source"})
        start, end = c.date(w["start"], f"{k}.start"), c.date(w["end"], f"{k}.end")
        if end < start:
            raise c.fail(f"{k}.end", f"ends ({end}) before it starts ({start})")
        waves[str(wid)] = Wave(str(wid), c.text(w["label"], f"{k}.label"), start, end,
                               c.text(w["source"], f"{k}.source"))
    onsets = tuple(c.choice(o, f"onsets[{i}]", waves) for i, o in enumerate(c.seq(top["onsets"], "onsets")))
    if not onsets:
        raise c.fail("onsets", "at least one onset is needed")
    starts = [waves[o].start for o in onsets]
    if starts != sorted(starts):
        raise c.fail("onsets", "must be listed in order of their wave's start date")

    # pilots
    pilots, seen = [], {}
    for i, p in enumerate(c.seq(top["pilots"], "pilots")):
        k = f"pilots[{i}]"
        p = c.mapping(p, k, allowed={"la_code", "name", "waves", "prior_sos", "source"},
                      required={"la_code", "name", "waves", "source"})
        code = la(p["la_code"], f"{k}.la_code")
        if code in seen:
            raise c.fail(f"{k}.la_code", f"{code} is already {seen[code]}")
        seen[code] = k
        pw = tuple(c.choice(w, f"{k}.waves[{j}]", onsets) for j, w in enumerate(c.seq(p["waves"], f"{k}.waves")))
        if not pw:
            raise c.fail(f"{k}.waves", "a pilot takes part in at least one wave")
        pilots.append(Pilot(code, c.text(p["name"], f"{k}.name"), pw,
                            c.text(p.get("prior_sos", ""), f"{k}.prior_sos", empty=True),
                            c.text(p["source"], f"{k}.source")))
    if not pilots:
        raise c.fail("pilots", "no pilot LAs")

    others = []
    for i, o in enumerate(c.seq(top.get("other_sos_las"), "other_sos_las")):
        k = f"other_sos_las[{i}]"
        o = c.mapping(o, k, allowed={"la_code", "name", "programme", "start", "source"},
                      required={"la_code", "name", "programme", "start", "source"})
        code = la(o["la_code"], f"{k}.la_code")
        if code in seen:
            raise c.fail(f"{k}.la_code", f"{code} is already {seen[code]}")
        seen[code] = k
        others.append(OtherSosLA(code, c.text(o["name"], f"{k}.name"), c.text(o["programme"], f"{k}.programme"),
                                 c.date(o["start"], f"{k}.start"), c.text(o["source"], f"{k}.source")))

    similar = []
    for i, m in enumerate(c.seq(top.get("similar_models"), "similar_models")):
        k = f"similar_models[{i}]"
        m = c.mapping(m, k, allowed={"la_code", "name", "model", "programme", "start", "start_note", "source"},
                      required={"la_code", "name", "model", "start", "source"})
        code = la(m["la_code"], f"{k}.la_code")
        if code in seen:
            raise c.fail(f"{k}.la_code", f"{code} is already {seen[code]}")
        seen[code] = k
        similar.append(SimilarModelLA(code, c.text(m["name"], f"{k}.name"), c.text(m["model"], f"{k}.model"),
                                      c.text(m.get("programme", ""), f"{k}.programme", empty=True),
                                      c.date(m["start"], f"{k}.start"),
                                      c.text(str(m.get("start_note", "")), f"{k}.start_note", empty=True),
                                      c.text(m["source"], f"{k}.source")))

    # outcomes
    outcomes, ids, measures = [], set(), set()
    known = set(known_measures) if known_measures is not None else None
    for i, o in enumerate(c.seq(top["outcomes"], "outcomes")):
        k = f"outcomes[{i}]"
        fields = ("id", "measure", "label", "family", "direction", "onset", "first_year", "last_year", "primary")
        o = c.mapping(o, k, allowed=fields + ("source", "sesoi", "sesoi_reason"), required=fields)
        source = c.choice(o.get("source", "public"), f"{k}.source", SOURCES)
        oid, measure = c.text(o["id"], f"{k}.id"), c.text(o["measure"], f"{k}.measure")
        if oid in ids:
            raise c.fail(f"{k}.id", f"duplicate outcome id {oid!r}")
        if measure in measures:
            raise c.fail(f"{k}.measure", f"measure {measure!r} is already an outcome")
        if source == "child_level":

            if measure not in CHILD_MEASURES:
                raise c.fail(f"{k}.measure", f"unknown child-level measure {measure!r} (one of "
                             f"analysis.childlevel.aggregate.MEASURES)")
        if known is not None and measure not in known and source == "public":
            raise c.fail(f"{k}.measure", f"unknown measure {measure!r} (not a panel measure)")
        ids.add(oid)
        measures.add(measure)
        first = c.integer(o["first_year"], f"{k}.first_year", low=2000)
        last = c.integer(o["last_year"], f"{k}.last_year", low=2000)
        if last < first:
            raise c.fail(f"{k}.last_year", f"{last} is before first_year {first}")
        outcomes.append(Outcome(oid, measure, c.text(o["label"], f"{k}.label"),
                                c.choice(o["family"], f"{k}.family", FAMILIES),
                                c.choice(o["direction"], f"{k}.direction", DIRECTIONS),
                                c.choice(o["onset"], f"{k}.onset", onsets), first, last,
                                c.boolean(o["primary"], f"{k}.primary"), source,
                                *_sesoi(c, o, k)))
    if not outcomes:
        raise c.fail("outcomes", "no outcomes")
    min_pre = c.integer(top.get("min_pre_years", 1), "min_pre_years", low=1)

    # specifications
    specs: dict[str, Specification] = {}
    for sid, s in c.mapping(top["specifications"], "specifications").items():
        k = f"specifications.{sid}"
        s = c.mapping(s, k, allowed={"description", "changes"}, required={"description"})
        changes = c.mapping(s.get("changes") or {}, f"{k}.changes", allowed=SPEC_KEYS)
        for ck, cv in changes.items():
            kk = f"{k}.changes.{ck}"
            if ck == "onset":
                c.choice(cv, kk, onsets)
            elif ck == "drop_years":
                for j, y in enumerate(c.seq(cv, kk)):
                    c.integer(y, f"{kk}[{j}]", low=2000)
            elif ck in ("k",):
                c.integer(cv, kk, low=1)
            elif ck == "max_event_time":
                c.integer(cv, kk, low=0)
            elif ck == "first_year":
                c.integer(cv, kk, low=2000)
            elif ck == "pilots":
                c.choice(cv, kk, PRIOR_USE_GROUPS)
            elif ck == "last_year":
                c.integer(cv, kk, low=2000)
            else:
                c.boolean(cv, kk)
        specs[str(sid)] = Specification(str(sid), c.text(s["description"], f"{k}.description"), dict(changes))
    if "main" not in specs:
        raise c.fail("specifications.main", "missing: the main specification is required")
    if specs["main"].changes:
        raise c.fail("specifications.main.changes", "main changes nothing: set the defaults instead")

    # matching
    m = c.mapping(top["matching"], "matching",
                  allowed={"k", "replace", "method", "caliper", "caliper_action", "region_penalty",
                           "region_exact", "context", "holdout_min_pre_years"},
                  required={"k", "replace", "method", "context"})
    cvars, names = [], set()
    for i, v in enumerate(c.seq(m["context"], "matching.context")):
        k = f"matching.context[{i}]"
        v = c.mapping(v, k, allowed={"name", "at", "log", "missing_category", "note"}, required={"name"})
        name = c.text(v["name"], f"{k}.name")
        if name in names:
            raise c.fail(f"{k}.name", f"duplicate context variable {name!r}")
        names.add(name)
        if known is not None and name not in known:
            raise c.fail(f"{k}.name", f"unknown measure {name!r} (not a panel measure)")
        cvars.append(ContextVariable(name, c.choice(v.get("at", "last"), f"{k}.at", CONTEXT_AT),
                                     c.boolean(v.get("log", False), f"{k}.log"),
                                     c.boolean(v.get("missing_category", False), f"{k}.missing_category"),
                                     c.text(v.get("note", ""), f"{k}.note", empty=True)))
    caliper = m.get("caliper")
    matching = Matching(
        k=c.integer(m["k"], "matching.k", low=1),
        replace=c.boolean(m["replace"], "matching.replace"),
        method=c.choice(m["method"], "matching.method", MATCHING_METHODS),
        caliper=None if caliper is None else c.number(caliper, "matching.caliper", low=0),
        caliper_action=c.choice(m.get("caliper_action", "drop"), "matching.caliper_action", ("flag", "drop")),
        region_penalty=_non_negative(c, m.get("region_penalty", 1.0), "matching.region_penalty"),
        region_exact=c.boolean(m.get("region_exact", False), "matching.region_exact"),
        context=tuple(cvars),
        holdout_min_pre_years=c.integer(m.get("holdout_min_pre_years", 0), "matching.holdout_min_pre_years",
                                        low=0))

    # inference
    inf = c.mapping(top["inference"], "inference",
                    allowed={"cluster", "alpha", "seed", "wild_bootstrap", "randomization"},
                    required={"alpha", "seed", "wild_bootstrap", "randomization"})
    wb = c.mapping(inf["wild_bootstrap"], "inference.wild_bootstrap",
                   allowed={"draws", "weights", "impose_null"}, required={"draws", "weights"})
    weights = tuple(c.choice(w, f"inference.wild_bootstrap.weights[{j}]", BOOTSTRAP_WEIGHTS)
                    for j, w in enumerate(c.seq(wb["weights"], "inference.wild_bootstrap.weights")))
    if not weights:
        raise c.fail("inference.wild_bootstrap.weights", "at least one weight type")
    ri = c.mapping(inf["randomization"], "inference.randomization", allowed={"draws", "scheme"},
                   required={"draws"})
    inference = Inference(
        cluster=c.text(inf.get("cluster", "la"), "inference.cluster"),
        alpha=c.number(inf["alpha"], "inference.alpha", low=0, high=1),
        seed=c.integer(inf["seed"], "inference.seed", low=0),
        wild_bootstrap=WildBootstrap(c.integer(wb["draws"], "inference.wild_bootstrap.draws", low=99), weights,
                                     c.boolean(wb.get("impose_null", True), "inference.wild_bootstrap.impose_null")),
        randomization=Randomization(c.integer(ri["draws"], "inference.randomization.draws", low=99),
                                    c.text(ri.get("scheme", ""), "inference.randomization.scheme", empty=True)))

    # evidence
    ev = c.mapping(top["evidence"], "evidence", allowed={"primary_p_value", "thresholds"},
                   required={"primary_p_value", "thresholds"})
    pv = c.mapping(ev["primary_p_value"], "evidence.primary_p_value", allowed={"value", "rationale"},
                   required={"value", "rationale"})
    thresholds: dict[str, Threshold] = {}
    for name, t in c.mapping(ev["thresholds"], "evidence.thresholds").items():
        k = f"evidence.thresholds.{name}"
        t = c.mapping(t, k, allowed={"value", "rationale"}, required={"value", "rationale"})
        thresholds[str(name)] = Threshold(c.number(t["value"], f"{k}.value"), c.text(t["rationale"], f"{k}.rationale"))
    evidence = Evidence(
        primary_p_value=c.choice(pv["value"], "evidence.primary_p_value.value",
                                 ("max_of_wild_bootstrap_and_randomization", "wild_bootstrap", "randomization")),
        primary_p_value_rationale=c.text(pv["rationale"], "evidence.primary_p_value.rationale"),
        thresholds=thresholds)
    # The grading module owns the set of keys and their ordering rules.
    try:
        check_thresholds(evidence.threshold_values())
    except DesignError as exc:
        raise c.fail("evidence.thresholds", str(exc)) from None

    # exclusions
    ex = c.mapping(top["exclusions"], "exclusions", allowed={"boundary_changed", "manual"})
    manual = []
    for i, e in enumerate(c.seq(ex.get("manual"), "exclusions.manual")):
        k = f"exclusions.manual[{i}]"
        e = c.mapping(e, k, allowed={"la_code", "name", "reason"}, required={"la_code", "reason"})
        manual.append(Exclusion(la(e["la_code"], f"{k}.la_code"), c.text(e.get("name", ""), f"{k}.name", empty=True),
                                c.text(e["reason"], f"{k}.reason")))
    exclusions = Exclusions(c.boolean(ex.get("boundary_changed", True), "exclusions.boundary_changed"),
                            tuple(manual))

    # deviations
    devs = []
    for i, d in enumerate(c.seq(top.get("deviations"), "deviations")):
        k = f"deviations[{i}]"
        d = c.mapping(d, k, allowed={"date", "change", "reason"}, required={"date", "change", "reason"})
        devs.append(Deviation(c.date(d["date"], f"{k}.date"), c.text(d["change"], f"{k}.change"),
                              c.text(d["reason"], f"{k}.reason")))

    known = _known_sos_use(c, top.get("known_sos_use"), la)

    design = StudyDesign(
        path=path, version=c.integer(top.get("version", 1), "version", low=1), references=tuple(refs),
        waves=waves, onsets=onsets, pilots=tuple(pilots), other_sos_las=tuple(others),
        similar_models=tuple(similar), outcomes=tuple(outcomes), min_pre_years=min_pre,
        specifications=specs, matching=matching, inference=inference, evidence=evidence,
        exclusions=exclusions, deviations=tuple(devs), known_sos_use=known)
    _check_identified(design, c)
    return design


def _sesoi(c: _Checker, o: Mapping[str, Any], k: str) -> tuple[float, str]:
    """An outcome's smallest effect size of interest and its reason (both or neither)."""
    if "sesoi" not in o:
        return math.nan, ""
    value = c.number(o["sesoi"], f"{k}.sesoi")
    if not value > 0:
        raise c.fail(f"{k}.sesoi", f"must be above 0, got {o['sesoi']}")
    return value, c.text(o.get("sesoi_reason", ""), f"{k}.sesoi_reason")


def _known_sos_use(c: _Checker, value: Any, la: Any) -> tuple[KnownSosUse, ...]:
    """LAs with public evidence of Signs of Safety use, from the file the design names."""
    if value is None:
        return ()
    spec = c.mapping(value, "known_sos_use", allowed={"file", "note"}, required={"file"})
    path = ROOT / c.text(spec["file"], "known_sos_use.file")
    try:
        rows = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise c.fail("known_sos_use.file", f"{_rel(path)} not found") from None
    for col in ("la_name", "ons_code", "evidence"):
        if col not in rows.columns:
            raise c.fail("known_sos_use.file", f"{_rel(path)} has no column {col!r}")
    out: dict[str, KnownSosUse] = {}
    for i, r in rows.iterrows():
        code = la(r["ons_code"], f"known_sos_use.file row {i + 2}")
        source = r.get("source_url") or r.get("archive_url") or r.get("report_file") or ""
        out.setdefault(code, KnownSosUse(code, r["la_name"], r["evidence"], source))
    return tuple(out.values())


def _non_negative(c: _Checker, value: Any, key: str) -> float:
    x = c.number(value, key)
    if x < 0:
        raise c.fail(key, f"must be 0 or more, got {value}")
    return x


def _check_identified(design: StudyDesign, c: _Checker) -> None:
    """Refuse any outcome x specification leaving a treated LA without pre- or post-period."""
    for sid, s in design.specifications.items():
        for i, o in enumerate(design.outcomes):
            onset = design.onset_for(o, s)
            key = f"specifications.{sid}.changes.onset" if s.onset else f"outcomes[{i}].onset"
            if s.last_year is not None and "last_year" in s.changes:
                key_last = f"specifications.{sid}.changes.last_year"
            else:
                key_last = f"outcomes[{i}].last_year"
            years = design.years(o, s)
            span = f"{years[0]}-{years[-1]}" if years else "none"
            dropped = f", less {list(s.drop_years)}" if s.drop_years else ""
            for code in design.pilot_codes(onset):
                first = design.first_treated_year(code, onset)
                pre = [y for y in years if y < first]
                post = [y for y in years if y >= first]
                if len(pre) < design.min_pre_years:
                    which = "no pre-period" if not pre else f"only {len(pre)} pre-year(s) {pre}"
                    raise c.fail(key, (
                        f"outcome '{o.measure}' has {which} under onset '{onset}'"
                        f"{'' if sid == 'main' else f' (specification {sid})'}: "
                        f"treated from {first} but its years are {span}{dropped}; "
                        f"need at least {design.min_pre_years} pre-years"))
                if not post:
                    raise c.fail(key_last, (
                        f"outcome '{o.measure}' has no post-period under onset '{onset}'"
                        f"{'' if sid == 'main' else f' (specification {sid})'}: "
                        f"treated from {first} but its years are {span}{dropped}"))
        # Without replacement every treated LA needs its own k donors.
        if not design.replace(s):
            n_donors = len(design.donor_pool(s))
            onsets = {design.onset_for(o, s) for o in design.outcomes}
            need = max(len(design.pilot_codes(on)) for on in onsets) * design.k(s)
            if need > n_donors:
                raise c.fail(f"specifications.{sid}",
                             f"needs {need} distinct comparators (k={design.k(s)}, without replacement) "
                             f"but the donor pool has {n_donors}")
