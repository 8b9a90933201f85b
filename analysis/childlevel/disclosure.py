"""Statistical disclosure control for tables published from child-level data.

Every count, rate and table the book publishes from child-level records goes
through :func:`protect_tables` (or :func:`protect_table` for one table), and the
build refuses a table for which :func:`assert_publishable` raises.

Model
-----
A table is a DataFrame with row-key columns (e.g. ``la_code``) and count
columns (e.g. one per year). Its *structure* (:class:`TableSpec`) says which
rows and columns are totals of which others (``total_row``/``total_col``, or a
hierarchy via ``row_groups``/``col_groups``: ``{total label: [member labels]}``,
e.g. an England row per year over that year's LA rows), which columns are rates
of which counts (and at what scale), and, through ``level_col``, the
geographic level of each row (national, regional, local authority).
:class:`Link` ties tables together: ``Link.same(a, b)`` says that cells with
the same row and column in two tables are the same number (a table by LA and
year, and the same table without one LA; with ``cols={"numerator":
"numerator"}`` or ``{"denominator": "numerator"}``, one count shared by two
percentage tables); ``Link.sum(total, [a, b])`` says table ``total`` is the
cell-by-cell sum of ``a`` and ``b`` (all children = girls + boys). Every total,
group and link is a linear equation ``total = sum(parts)`` between cells;
cells tied by ``Link.same`` are one variable.

Rules (settings in ``data/disclosure.yaml``)
--------------------------------------------
1. *Primary suppression*: a count of 1 .. threshold-1 (default 1-9) is
   withheld, at every level (an England total of 7 is withheld too); zeros are
   shown (DfE: "where any number is shown as zero, the original figure
   submitted was zero") unless ``suppress_zeros``.
2. *Secondary suppression*: every equation that holds a withheld cell holds at
   least two, so no withheld cell is the difference of published ones. This
   holds for rounded totals too: a rounded total still confines the
   difference to an interval of width ``base - 1`` (9 for base 10), narrower
   than the protection level of 10. The
   complement chosen is the smallest non-zero cell of the equation, interior
   cells before totals; this repeats until stable. Equations from different
   tables are handled together, so suppression is consistent across tables: a
   count shared by two tables (``Link.same``) is one cell, withheld in both or
   in neither.
3. *Audit by attack*: the two-per-equation rule is necessary, not sufficient
   (differences between linked tables, small complements, the published
   rates). So the attacker of :func:`recover_suppressed` is run on the would-be
   output; while any withheld cell fails the protection criterion, a further
   cell is withheld (the cheapest one, near the failing cell, that widens its
   interval) and rule 2 is re-applied.
4. *Rounding by geographic level*, DfE's practice in its looked-after children
   and children in need releases (checked on the published files: see
   ``data/disclosure.yaml``): ``rounding: {national: 10, regional: 10,
   local_authority: null}`` rounds the counts of national and regional rows
   to the nearest 10 (half up: 75 -> 80, 74 -> 70) and leaves LA rows
   unrounded. A row's level comes from the table's ``level_col``; a table
   without one is all ``local_authority``. A single number (``rounding: 10``)
   rounds every count at every level, as before; ``TableSpec.rounding``
   overrides the settings for one table. Counts are rounded independently after
   suppression, so rounded totals need not add up. The attacker knows a count
   shown as ``r`` only as ``r-5 .. r+4`` (base 10; narrowed to ``10 .. 14`` for
   ``r = 10`` and to 0 for ``r = 0``, since smaller counts are withheld).
5. *Rates and percentages* are computed by the caller on *unrounded* counts
   (DfE's practice; an England percentage is the sum of the LA numerators over
   the sum of the LA denominators, before rounding) and withheld (``c``)
   wherever their numerator or denominator count is withheld; ``z`` where the
   denominator is zero, ``k`` where a positive rate rounds to 0. Where the
   table declares a rate's scale (``rate_cols={"value": ("numerator",
   "denominator", 100)}``) the attacker uses it: a shown percentage ``p``
   (0 decimals) means ``(p - 0.5) x denominator <= 100 x numerator <= (p + 0.5)
   x denominator``, a linear bound that can narrow rounded counts (an England
   row's count known to +-5 and its exact percentage). Without a scale the
   attacker ignores the rate (weaker: declare the scale).

Protection criterion
--------------------
For each withheld cell the attacker computes the interval ``[lower, upper]``
of values consistent with everything published: every equation, the published
values (or their rounding intervals), the published rates whose scale is
declared, non-negativity, and what the rules themselves reveal (a shown count
is 0 or at least the threshold; a withheld count is at least 1 when zeros are
shown). A withheld cell is protected when ``lower >= threshold`` (it is known
only to be large, which discloses nothing small) or ``upper >= threshold and
upper - lower >= protection_level``. A primary cell always has ``lower <
threshold``, so it needs the second clause: the attacker cannot rule out that
it is at or above the threshold, nor narrow it to fewer than
``protection_level`` values. So an exact England total lets an attacker
difference out a single withheld LA; a total rounded to 10 narrows it to an
interval of width 9 (still narrower than a protection level of 10), which is
why rule 2 still applies to rounded totals. The criterion needs only the published tables and
their structure, so :func:`check_disclosure` can apply it to any output.

Suppressed cells are published as the token ``c`` (see :data:`KEY`), never as
zero or blank.
"""
from __future__ import annotations

import fnmatch
import math
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd
import yaml

from analysis.core.errors import DataError
from analysis.core.paths import DATA_DIR

SETTINGS_PATH = DATA_DIR / "disclosure.yaml"

#: DfE/GSS symbols used in published tables, with the key printed under them.
KEY = {
    "c": "confidential: withheld to protect individuals (a count below the threshold, "
         "or a cell withheld so that such a count cannot be worked out from totals)",
    "z": "not applicable (denominator is zero)",
    "k": "rounds to zero but is not zero",
    "x": "not available",
}
SUPPRESSED = "c"
_TOKENS = set(KEY)
_EPS = 1e-6


# --------------------------------------------------------------------------- settings

#: Geographic levels of table rows, for rounding by level (``TableSpec.level_col``).
LEVELS = ("national", "regional", "local_authority")
#: DfE's practice in the looked-after children and children in need releases:
#: national and regional counts rounded to the nearest 10, LA counts unrounded.
DEFAULT_ROUNDING = {"national": 10, "regional": 10, "local_authority": None}


def _level_name(value: Any) -> str:
    """``'Local authority'``, ``'local_authority'`` -> ``'local_authority'``; DataError if unknown."""
    s = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if s not in LEVELS:
        raise DataError(f"unknown geographic level {value!r} (known: {', '.join(LEVELS)})")
    return s


def _check_base(value: Any, what: str) -> None:
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
        raise DataError(f"{what} must be null or a whole number >= 1, got {value!r}")


@dataclass(frozen=True)
class DisclosureSettings:
    """The disclosure rules; defaults equal ``data/disclosure.yaml``.

    ``rounding`` is either one base for every count (a whole number, or None
    for none), or a base per geographic level, ``{"national": 10, "regional":
    10, "local_authority": None}`` (levels left out are unrounded); see
    :meth:`rounding_for`.
    """

    threshold: int = 10
    protection_level: float = 10
    suppress_zeros: bool = False
    rounding: int | Mapping[str, int | None] | None = field(
        default_factory=lambda: dict(DEFAULT_ROUNDING))
    rate_decimals: int = 0
    attacker_integer: bool = False
    count_columns: tuple[str, ...] = ()
    rate_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not (isinstance(self.threshold, int) and self.threshold >= 1):
            raise DataError(f"disclosure threshold must be a whole number >= 1, got {self.threshold!r}")
        if not (isinstance(self.protection_level, (int, float)) and self.protection_level >= 0):
            raise DataError(f"protection_level must be >= 0, got {self.protection_level!r}")
        if isinstance(self.rounding, Mapping):
            unknown = sorted(str(k) for k in self.rounding if k not in LEVELS)
            if unknown:
                raise DataError(f"rounding: unknown level {unknown[0]!r} "
                                f"(known: {', '.join(LEVELS)})")
            for k, v in self.rounding.items():
                _check_base(v, f"rounding of {k}")
            object.__setattr__(self, "rounding", {k: self.rounding.get(k) for k in LEVELS})
        else:
            _check_base(self.rounding, "rounding")
        if not (isinstance(self.rate_decimals, int) and self.rate_decimals >= 0):
            raise DataError(f"rate_decimals must be a whole number >= 0, got {self.rate_decimals!r}")

    def rounding_for(self, level: str | None = None) -> int | None:
        """The rounding base of a count at ``level``.

        ``level`` None is a row with no declared level, treated as
        ``local_authority``; a single base applies to every level.
        """
        if not isinstance(self.rounding, Mapping):
            return self.rounding
        return self.rounding[_level_name(level or "local_authority")]

    def is_count(self, column: str) -> bool:
        """Whether ``column`` is a count column by the ``count_columns`` patterns."""
        return any(fnmatch.fnmatchcase(column, p) for p in self.count_columns)

    def is_rate(self, column: str) -> bool:
        """Whether ``column`` is a rate column by the ``rate_columns`` patterns."""
        return any(fnmatch.fnmatchcase(column, p) for p in self.rate_columns)


def load_settings(path: Path | str = SETTINGS_PATH) -> DisclosureSettings:
    """Read ``data/disclosure.yaml`` (or ``path``); DataError naming file and key if bad."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise DataError("disclosure settings file not found", file=str(path)) from None
    except yaml.YAMLError as exc:
        raise DataError(f"not valid YAML: {exc}", file=str(path)) from None
    if not isinstance(raw, dict):
        raise DataError("expected a mapping of settings", file=str(path))
    known = {f.name for f in fields(DisclosureSettings)}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise DataError(f"unknown key {unknown[0]!r} (known: {', '.join(sorted(known))})",
                        file=str(path))
    for k in ("count_columns", "rate_columns"):
        if k in raw:
            if not isinstance(raw[k], list) or not all(isinstance(x, str) for x in raw[k]):
                raise DataError(f"{k} must be a list of column patterns", file=str(path))
            raw[k] = tuple(raw[k])
    if "rounding" in raw and not (raw["rounding"] is None or isinstance(raw["rounding"], (int, dict))):
        raise DataError("rounding must be null, a whole number, or a mapping of level to base "
                        f"({', '.join(LEVELS)})", file=str(path))
    try:
        return DisclosureSettings(**raw)
    except DataError as exc:
        raise DataError(str(exc), file=str(path)) from None


def _settings(settings: DisclosureSettings | None, **override: Any) -> DisclosureSettings:
    base = settings if settings is not None else (
        load_settings() if SETTINGS_PATH.exists() else DisclosureSettings())
    return replace(base, **{k: v for k, v in override.items() if v is not None})


# --------------------------------------------------------------------------- structure

@dataclass(frozen=True)
class TableSpec:
    """The structure of one published table.

    ``row_groups`` maps a total row's label to the labels of the rows it sums
    (None: every row that is not itself a group total); ``col_groups`` likewise
    for columns. ``total_row``/``total_col`` are shorthands for one group of
    all other rows/columns. Row labels are the row-key value (one key) or a
    tuple of them. ``rate_cols`` maps a rate column to ``(numerator count
    column, denominator count column or None)`` in the same row, or to
    ``(numerator, denominator, scale)`` when the rate is ``scale * numerator /
    denominator`` (100 for a percentage): with the scale the attacker also
    uses the published rate, a linear bound on numerator / denominator that
    narrows rounded counts (see the module docstring).

    ``level_col`` names a column holding each row's geographic level
    (``national``, ``regional``, ``local_authority``; DfE's spellings
    ``National``, ``Regional``, ``Local authority`` also do), which selects the
    row's rounding base from the settings; without it every row is
    ``local_authority``. ``rounding`` (a base, for every row) overrides the
    settings for this table.
    """

    name: str
    count_cols: tuple[str, ...]
    row_keys: tuple[str, ...]
    total_row: Any = None
    total_col: str | None = None
    row_groups: Mapping[Any, Sequence[Any] | None] | None = None
    col_groups: Mapping[str, Sequence[str] | None] | None = None
    rate_cols: Mapping[str, tuple] | None = None
    rounding: int | None = None     # overrides the settings' rounding for this table
    level_col: str | None = None    # column of each row's geographic level (rounding by level)

    def __post_init__(self) -> None:
        object.__setattr__(self, "count_cols", tuple(self.count_cols))
        rk = (self.row_keys,) if isinstance(self.row_keys, str) else tuple(self.row_keys)
        object.__setattr__(self, "row_keys", rk)
        if not self.count_cols or not self.row_keys:
            raise DataError(f"table {self.name}: needs count columns and row keys")

    def row_group_map(self) -> dict:
        """``row_groups`` with ``total_row`` (if any) added as a group of all other rows."""
        groups = dict(self.row_groups or {})
        if self.total_row is not None:
            groups.setdefault(self.total_row, None)
        return groups

    def col_group_map(self) -> dict:
        """``col_groups`` with ``total_col`` (if any) added as a group of all other columns."""
        groups = dict(self.col_groups or {})
        if self.total_col is not None:
            groups.setdefault(self.total_col, None)
        return groups


@dataclass(frozen=True)
class Link:
    """A tie between published tables (see the module docstring)."""

    kind: str                       # "same" or "sum"
    tables: tuple[str, ...]         # same: (a, b); sum: (total, part, part, ...)
    rows: tuple | None = None       # same: restrict to these row labels
    cols: tuple | None = None       # same: these columns, or (column of a, column of b) pairs

    @classmethod
    def same(cls, a: str, b: str, *, rows: Iterable | None = None,
             cols: Iterable[str] | Mapping[str, str] | None = None) -> "Link":
        """Cells of ``a`` and ``b`` with the same row label and column are one number.

        By default every common cell that is not a total in either table.
        ``cols`` restricts the link to those columns (totals included), or, as
        a mapping ``{column of a: column of b}``, ties differently named
        columns (the numerator of one table is the denominator of another).
        """
        if isinstance(cols, Mapping):
            cols = tuple(cols.items())
        return cls("same", (a, b), None if rows is None else tuple(rows),
                   None if cols is None else tuple(cols))

    @classmethod
    def sum(cls, total: str, parts: Sequence[str]) -> "Link":
        """Table ``total`` is the cell-by-cell sum of tables ``parts`` (common cells)."""
        return cls("sum", (total, *parts))


@dataclass(frozen=True)
class Structure:
    """What an attacker knows besides the published values: specs, links, rules."""

    specs: tuple[TableSpec, ...]
    links: tuple[Link, ...] = ()
    settings: DisclosureSettings = field(default_factory=DisclosureSettings)

    def spec(self, name: str) -> TableSpec:
        """The :class:`TableSpec` called ``name`` (DataError when there is none)."""
        for s in self.specs:
            if s.name == name:
                return s
        raise DataError(f"no table named {name!r} in the structure")

    def rounding(self, spec: TableSpec, level: str | None = None) -> int | None:
        """The rounding base of a row of ``spec`` at ``level`` (None: no level declared)."""
        return spec.rounding if spec.rounding is not None else self.settings.rounding_for(level)

    def row_bases(self, spec: TableSpec, df: pd.DataFrame) -> list[int | None]:
        """The rounding base of each row of ``df`` (DataError on an unknown level)."""
        if spec.level_col is None:
            return [self.rounding(spec)] * len(df)
        if spec.level_col not in df.columns:
            raise DataError(f"table {spec.name}: level column {spec.level_col!r} not found")
        out = []
        for pos, lev in enumerate(df[spec.level_col]):
            try:
                out.append(self.rounding(spec, _level_name(lev)))
            except DataError as exc:
                raise DataError(f"table {spec.name}, row {pos + 1}: {exc}") from None
        return out


def _label(row: Any) -> str:
    return "/".join(map(str, row)) if isinstance(row, tuple) else str(row)


def _row_labels(df: pd.DataFrame, spec: TableSpec) -> list:
    missing = [c for c in (*spec.row_keys, *spec.count_cols) if c not in df.columns]
    if missing:
        raise DataError(f"table {spec.name}: column {missing[0]!r} not found")
    if len(spec.row_keys) == 1:
        labels = list(df[spec.row_keys[0]])
    else:
        labels = list(df[list(spec.row_keys)].itertuples(index=False, name=None))
    seen = set()
    for lab in labels:
        if lab in seen:
            raise DataError(f"table {spec.name}: row {_label(lab)} appears twice")
        seen.add(lab)
    return labels


def _resolve(spec: TableSpec, labels: list, label: Any) -> Any:
    if label in labels:
        return label
    if len(spec.row_keys) > 1 and not isinstance(label, tuple):
        hits = [lab for lab in labels if lab[0] == label]
        if len(hits) == 1:
            return hits[0]
    raise DataError(f"table {spec.name}: total or group row {label!r} not found")


class _Model:
    """Cells as variables (tied cells merged) and the equations between them."""

    def __init__(self, frames: Mapping[str, pd.DataFrame], structure: Structure) -> None:
        self.structure = structure
        self.cells: list[tuple] = []            # cell id -> (table, row, col)
        self.index: dict[tuple, int] = {}
        self.is_total: list[bool] = []
        self.base: list[int | None] = []        # cell id -> rounding base of its row
        self.labels: dict[str, list] = {}
        rates: list[tuple] = []                 # (table, pos, rate col, num cell, den cell, scale)
        self.row_pos: dict[str, dict] = {}
        equations: list[tuple[tuple, tuple, str, str]] = []   # (total cell, part cells, kind, table)
        for spec in structure.specs:
            if spec.name not in frames:
                raise DataError(f"table {spec.name}: not among the published tables")
            df = frames[spec.name]
            labels = _row_labels(df, spec)
            self.labels[spec.name] = labels
            self.row_pos[spec.name] = {lab: i for i, lab in enumerate(labels)}
            rgroups = {_resolve(spec, labels, t): m for t, m in spec.row_group_map().items()}
            cgroups = spec.col_group_map()
            for t in cgroups:
                if t not in spec.count_cols:
                    raise DataError(f"table {spec.name}: total column {t!r} is not a count column")
            total_rows, total_cols = set(rgroups), set(cgroups)
            bases = structure.row_bases(spec, df)
            for lab, base in zip(labels, bases):
                for col in spec.count_cols:
                    cid = (spec.name, lab, col)
                    self.index[cid] = len(self.cells)
                    self.cells.append(cid)
                    self.is_total.append(lab in total_rows or col in total_cols)
                    self.base.append(base)
            for rcol, ref in (spec.rate_cols or {}).items():
                if len(ref) < 3 or ref[1] is None or rcol not in df.columns:
                    continue          # no scale given: the attacker does not use this rate
                num, den, scale = ref[:3]
                if num not in spec.count_cols or den not in spec.count_cols:
                    continue          # reported by _publish / check_disclosure
                for pos, lab in enumerate(labels):
                    rates.append((spec.name, pos, rcol, (spec.name, lab, num),
                                  (spec.name, lab, den), float(scale)))
            for t, members in rgroups.items():
                ms = ([lab for lab in labels if lab not in total_rows] if members is None
                      else [_resolve(spec, labels, m) for m in members])
                for col in spec.count_cols:
                    equations.append(((spec.name, t, col),
                                      tuple((spec.name, m, col) for m in ms), "col", spec.name))
            for t, members in cgroups.items():
                ms = ([c for c in spec.count_cols if c not in total_cols] if members is None
                      else list(members))
                for m in ms:
                    if m not in spec.count_cols:
                        raise DataError(f"table {spec.name}: group column {m!r} is not a count column")
                for lab in labels:
                    equations.append(((spec.name, lab, t),
                                      tuple((spec.name, lab, m) for m in ms), "row", spec.name))
        # union-find for Link.same
        parent = list(range(len(self.cells)))

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for link in structure.links:
            for t in link.tables:
                structure.spec(t)
            if link.kind == "same":
                a, b = (structure.spec(t) for t in link.tables)
                rows = link.rows
                if rows is None:
                    rows = [lab for lab in self.labels[a.name] if lab in self.row_pos[b.name]]
                cols = link.cols if link.cols is not None else [c for c in a.count_cols
                                                                if c in b.count_cols]
                pairs = [c if isinstance(c, tuple) else (c, c) for c in cols]
                for lab in rows:
                    for col, col_b in pairs:
                        ca, cb = (a.name, lab, col), (b.name, lab, col_b)
                        if ca not in self.index or cb not in self.index:
                            raise DataError(f"link {a.name}={b.name}: cell row {_label(lab)}, "
                                            f"column {col if ca not in self.index else col_b} "
                                            f"missing")
                        ia, ib = self.index[ca], self.index[cb]
                        if link.rows is None and link.cols is None and (
                                self.is_total[ia] or self.is_total[ib]):
                            continue
                        parent[find(ia)] = find(ib)
            elif link.kind == "sum":
                total, *parts = (structure.spec(t) for t in link.tables)
                for lab in self.labels[total.name]:
                    for col in total.count_cols:
                        pcs = [(p.name, lab, col) for p in parts]
                        if all(pc in self.index for pc in pcs):
                            equations.append(((total.name, lab, col), tuple(pcs), "link",
                                              total.name))
            else:
                raise DataError(f"unknown link kind {link.kind!r}")
        roots = sorted({find(i) for i in range(len(self.cells))})
        root_var = {r: v for v, r in enumerate(roots)}
        self.var_of = [root_var[find(i)] for i in range(len(self.cells))]
        self.n = len(roots)
        self.members: list[list[int]] = [[] for _ in range(self.n)]
        for i, v in enumerate(self.var_of):
            self.members[v].append(i)
        self.var_total = [any(self.is_total[i] for i in m) for m in self.members]
        self.equations: list[tuple[int, tuple[int, ...], str, str]] = []
        for tot, parts, kind, table in equations:
            self.equations.append((self.var_of[self.index[tot]],
                                   tuple(self.var_of[self.index[p]] for p in parts), kind, table))
        self.eq_of: list[list[int]] = [[] for _ in range(self.n)]
        for k, (tot, parts, _, _) in enumerate(self.equations):
            for v in {tot, *parts}:
                self.eq_of[v].append(k)
        #: published rates with a scale: (table, row position, rate column, numerator
        #: variable, denominator variable, scale)
        self.rates = [(t, pos, rcol, self.var_of[self.index[n]], self.var_of[self.index[d]], sc)
                      for t, pos, rcol, n, d, sc in rates]

    def cell(self, v: int) -> tuple:
        return self.cells[self.members[v][0]]


# --------------------------------------------------------------------------- attacker

class _Attack:
    """The attacker's linear (or integer) programmes for one state of knowledge.

    ``known[v]`` is the interval the attacker knows for variable ``v``
    (a point when shown unrounded). ``ratios`` are published rates as
    ``(numerator variable, denominator variable, scale, low, high)``:
    ``low * denominator <= scale * numerator <= high * denominator``.
    Variables known exactly are constants; the others are joined into
    components by the equations and ratios, and each component's constraint
    matrices are built once and reused for every target.
    """

    def __init__(self, model: _Model, known: list[tuple[float, float]], integer: bool,
                 ratios: Sequence[tuple[int, int, float, float, float]] = ()) -> None:
        self.model, self.known, self.integer = model, known, integer
        self.is_free = [k[1] - k[0] > _EPS for k in known]
        free = [v for v in range(model.n) if self.is_free[v]]
        parent = {v: v for v in free}
        self._parent = parent
        self.rows: list[tuple[dict[int, float], float, int]] = []
        for k, (tot, parts, _, _) in enumerate(model.equations):
            coef: dict[int, float] = {}
            rhs = 0.0
            for v, sgn in ((tot, 1.0), *((q, -1.0) for q in parts)):
                if self.is_free[v]:
                    coef[v] = coef.get(v, 0.0) + sgn
                else:
                    rhs -= sgn * known[v][0]
            coef = {v: c for v, c in coef.items() if c != 0}
            if not coef:
                continue
            self.rows.append((coef, rhs, k))
            self._join(coef)
        # inequalities coef . x <= rhs from the published rates
        self.ub_rows: list[tuple[dict[int, float], float]] = []
        for num, den, scale, lo, hi in ratios:
            for coef_num, coef_den in ((scale, -hi), (-scale, lo)):
                coef, rhs = {}, 0.0
                for v, c in ((num, coef_num), (den, coef_den)):
                    if self.is_free[v]:
                        coef[v] = coef.get(v, 0.0) + c
                    else:
                        rhs -= c * known[v][0]
                coef = {v: c for v, c in coef.items() if c != 0}
                if coef:
                    self.ub_rows.append((coef, rhs))
                    self._join(coef)
        self.comp_rows: dict[int, list[int]] = {}
        for r, (coef, _, _) in enumerate(self.rows):
            self.comp_rows.setdefault(self._find(next(iter(coef))), []).append(r)
        self.comp_ub: dict[int, list[int]] = {}
        for r, (coef, _) in enumerate(self.ub_rows):
            self.comp_ub.setdefault(self._find(next(iter(coef))), []).append(r)
        self.comp_vars: dict[int, list[int]] = {}
        for v in free:
            self.comp_vars.setdefault(self._find(v), []).append(v)
        self.cache: dict[int, tuple] = {}

    def _join(self, coef: dict[int, float]) -> None:
        vs = list(coef)
        for v in vs[1:]:
            self._parent[self._find(v)] = self._find(vs[0])

    def _find(self, v: int) -> int:
        parent = self._parent
        while parent[v] != v:
            parent[v] = parent[parent[v]]
            v = parent[v]
        return v

    @staticmethod
    def _matrix(rows: list[tuple[dict[int, float], float]], pos: dict[int, int]):
        # scipy here, not at the top: the book's chapters import this module for its
        # settings, and scipy.optimize would add a third of a second to each of them
        from scipy import sparse

        data, ri, ci, b = [], [], [], []
        for i, (coef, rhs) in enumerate(rows):
            for v, c in coef.items():
                data.append(c)
                ri.append(i)
                ci.append(pos[v])
            b.append(rhs)
        return sparse.csr_matrix((data, (ri, ci)), shape=(len(rows), len(pos))), np.array(b, float)

    def _component(self, root: int) -> tuple:
        if root not in self.cache:
            vs = self.comp_vars[root]
            pos = {v: j for j, v in enumerate(vs)}
            rs = self.comp_rows.get(root, [])
            a, b = self._matrix([self.rows[r][:2] for r in rs], pos)
            a_ub, b_ub = self._matrix([self.ub_rows[r] for r in self.comp_ub.get(root, [])], pos)
            lb = np.array([self.known[v][0] for v in vs], float)
            ub = np.array([self.known[v][1] for v in vs], float)
            self.cache[root] = (pos, a, b, a_ub, b_ub, lb, ub, [self.rows[r][2] for r in rs])
        return self.cache[root]

    def bound(self, t: int, sense: int) -> tuple[float, set[int]]:
        """Min (sense=+1) or max (sense=-1) of variable ``t``, and the binding equations."""
        lo, hi = self.known[t]
        root = self._find(t) if self.is_free[t] else None
        if root is None or (root not in self.comp_rows and root not in self.comp_ub):
            return (lo if sense > 0 else hi), set()
        # scipy here, not at the top: see _matrix
        from scipy.optimize import Bounds, LinearConstraint, linprog, milp

        pos, a, b, a_ub, b_ub, lb, ub, eqs = self._component(root)
        c = np.zeros(len(pos))
        c[pos[t]] = sense
        if self.integer:
            cons = []
            if a.shape[0]:
                cons.append(LinearConstraint(a, b, b))
            if a_ub.shape[0]:
                cons.append(LinearConstraint(a_ub, -np.inf, b_ub))
            r = milp(c, constraints=cons, integrality=np.ones(len(pos)), bounds=Bounds(lb, ub))
            unbounded = r.status != 0 and "unbounded" in str(r.message).lower()
            duals = None
        else:
            r = linprog(c, A_eq=a if a.shape[0] else None, b_eq=b if a.shape[0] else None,
                        A_ub=a_ub if a_ub.shape[0] else None, b_ub=b_ub if a_ub.shape[0] else None,
                        bounds=list(zip(lb, [None if math.isinf(u) else u for u in ub])),
                        method="highs")
            unbounded = r.status == 3
            duals = getattr(getattr(r, "eqlin", None), "marginals", None)
        if unbounded:
            return (-math.inf if sense > 0 else math.inf), set()
        if r.status != 0:
            raise DataError(f"published tables are inconsistent: no values fit them "
                            f"({r.message}) near {_describe(self.model.cell(t))}")
        binding = (set(eqs) if duals is None or len(duals) != len(eqs)
                   else {eqs[i] for i, d in enumerate(duals) if abs(d) > _EPS})
        value = sense * r.fun
        return (max(lo, value) if sense > 0 else min(hi, value)), binding

    def interval(self, t: int) -> tuple[float, float]:
        return self.bound(t, 1)[0], self.bound(t, -1)[0]


def _intervals(model: _Model, known: list[tuple[float, float]], targets: Iterable[int],
               integer: bool, ratios: Sequence[tuple] = ()) -> dict[int, tuple[float, float]]:
    """Min and max of each target variable subject to the model's constraints.

    The constraints are the equations, the ``known`` bounds and the rate
    bounds ``ratios``.
    """
    attack = _Attack(model, known, integer, ratios)
    return {t: attack.interval(t) for t in targets}


def _describe(cell: tuple) -> str:
    table, row, col = cell
    return f"table {table}, column {col}, row {_label(row)}"


def _parse(value: Any) -> float | str:
    """A published count cell: a float, or its token."""
    if isinstance(value, str):
        s = value.strip().replace(",", "")
        if s in _TOKENS:
            return s
        try:
            return float(s)
        except ValueError:
            raise ValueError(value) from None
    if value is None or (isinstance(value, float) and math.isnan(value)):
        raise ValueError(value)
    return float(value)


def _rounding_interval(r: float, base: int, st: DisclosureSettings) -> tuple[float, float]:
    """Values a count shown as ``r`` after rounding to ``base`` (half up) can have.

    ``r - base//2 .. r + base - base//2 - 1`` (for base 10: ``r-5 .. r+4``),
    narrowed by what the rules reveal: a shown count is 0 or at least the
    threshold (smaller ones are withheld before rounding), so ``r = 10`` means
    ``10 .. 14`` and ``r = 0`` means 0.
    """
    t = st.threshold
    lo, hi = max(0.0, r - base // 2), r + (base - base // 2) - 1
    if r > 0 or st.suppress_zeros:
        lo = max(lo, float(t)) if max(lo, float(t)) <= hi else lo
    elif hi < t:
        hi = 0.0
    return lo, hi


def _rate_bounds(text: Any, decimals: int) -> tuple[float, float] | None:
    """The interval a published rate's exact value lies in; None if it says nothing.

    ``23`` (0 decimals) -> ``22.5 .. 23.5``; ``k`` -> ``0 .. 0.5``; the decimals
    of a string are its own, else ``decimals``.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)):
        return None
    s = str(text).strip().replace(",", "")
    d = len(s.split(".", 1)[1]) if isinstance(text, str) and "." in s else decimals
    h = 0.5 * 10.0 ** -d
    if s == "k":
        return 0.0, h
    try:
        p = float(s)
    except ValueError:
        return None                     # c, x, z, blank
    return max(0.0, p - h), p + h


def _known_from_published(model: _Model, frames: Mapping[str, pd.DataFrame]
                          ) -> tuple[list[tuple[float, float]], set[int], list[tuple]]:
    """What the attacker knows from the published tables.

    Returns the bounds known for each variable, which variables are withheld,
    and the published rates as ratio bounds (see :class:`_Attack`).
    """
    st = model.structure.settings
    lo_hidden = 0.0 if st.suppress_zeros else 1.0
    shown: list[tuple[float, float] | None] = [None] * model.n
    hidden: set[int] = set()
    for spec in model.structure.specs:
        df = frames[spec.name]
        for pos, lab in enumerate(model.labels[spec.name]):
            for col in spec.count_cols:
                cid = model.index[(spec.name, lab, col)]
                v = model.var_of[cid]
                base = model.base[cid]
                raw = df[col].iloc[pos]
                try:
                    x = _parse(raw)
                except ValueError:
                    raise DataError(f"{_describe((spec.name, lab, col))}: unreadable value "
                                    f"{raw!r}") from None
                if isinstance(x, str):
                    hidden.add(v)
                    continue
                iv = _rounding_interval(x, base, st) if base else (x, x)
                old = shown[v]
                if old is not None and max(old[0], iv[0]) <= min(old[1], iv[1]):
                    iv = (max(old[0], iv[0]), min(old[1], iv[1]))
                shown[v] = iv
    # a cell withheld in one table but shown in another is known from the other
    known = [s if s is not None else (lo_hidden, math.inf) for s in shown]
    ratios = []
    for table, pos, rcol, num, den, scale in model.rates:
        b = _rate_bounds(frames[table][rcol].iloc[pos], st.rate_decimals)
        if b is not None:
            ratios.append((num, den, scale, *b))
    return known, hidden, ratios  # type: ignore[return-value]


def recover_suppressed(published: Mapping[str, pd.DataFrame] | "ProtectedSet" | "ProtectedTable",
                       structure: Structure | None = None, *, integer: bool | None = None
                       ) -> dict[tuple, tuple[float, float]]:
    """The attacker: bounds on every withheld cell from the published tables.

    For each cell published as a token, the minimum and maximum of its value
    over all non-negative values consistent with the published tables: every
    total, group and link equation of ``structure``, the published values
    (intervals when rounded: ``r-5 .. r+4`` for a count shown as ``r`` in a row
    rounded to 10), the published rates whose scale the structure declares
    (``lower x denominator <= scale x numerator <= upper x denominator``), a
    shown count being 0 or at least the threshold, and a withheld count being
    at least 1 when zeros are shown. Solved by
    linear programming (``scipy.optimize.linprog``, HiGHS), or by integer
    programming (``milp``) when ``integer`` (default: the settings).

    Returns ``{(table, row label, column): (lower, upper)}``; ``upper`` may be
    ``inf``. A cell withheld in one table but shown in another gets the shown
    value as both bounds.
    """
    frames, structure = _unpack(published, structure)
    model = _Model(frames, structure)
    known, hidden, ratios = _known_from_published(model, frames)
    integer = structure.settings.attacker_integer if integer is None else integer
    iv = _intervals(model, known, sorted(hidden), integer, ratios)
    out = {}
    for spec in structure.specs:
        df = frames[spec.name]
        for pos, lab in enumerate(model.labels[spec.name]):
            for col in spec.count_cols:
                raw = df[col].iloc[pos]
                if isinstance(raw, str) and raw.strip() in _TOKENS:
                    out[(spec.name, lab, col)] = iv[model.var_of[model.index[(spec.name, lab, col)]]]
    return out


def protected(bounds: tuple[float, float], settings: DisclosureSettings) -> bool:
    """The protection criterion for one withheld cell's attacker interval."""
    lo, hi = bounds
    t, p = settings.threshold, settings.protection_level
    return lo >= t - _EPS or (hi >= t - _EPS and hi - lo >= p - _EPS)


# --------------------------------------------------------------------------- protection

@dataclass
class ProtectedTable:
    """One table after disclosure control.

    ``published``: the table to publish (row keys, then counts and rates as
    strings with tokens); ``mask``: True where a count is withheld (same index,
    count columns); ``audit``: one row per withheld cell with ``reason``
    (``primary``, ``secondary:row``, ``secondary:col``, ``secondary:link``,
    ``secondary:audit``) and the cell it ``protects``.
    """

    name: str
    published: pd.DataFrame
    mask: pd.DataFrame
    audit: pd.DataFrame
    structure: Structure
    key: dict = field(default_factory=lambda: dict(KEY))

    @property
    def key_text(self) -> str:
        """The key of the tokens used in :attr:`published`, as ``token = meaning; ...``."""
        used = {str(x).strip() for x in self.published.to_numpy().ravel()} & set(self.key)
        return "; ".join(f"{k} = {self.key[k]}" for k in sorted(used))


@dataclass
class ProtectedSet:
    """Several linked tables protected together (see :func:`protect_tables`)."""

    tables: dict[str, ProtectedTable]
    structure: Structure

    @property
    def published(self) -> dict[str, pd.DataFrame]:
        """Each table's published frame, by table name."""
        return {n: t.published for n, t in self.tables.items()}

    @property
    def audit(self) -> pd.DataFrame:
        """The audit rows of every table, stacked."""
        return pd.concat([t.audit for t in self.tables.values()], ignore_index=True)

    def __getitem__(self, name: str) -> ProtectedTable:
        return self.tables[name]


def _round(x: float, base: int | None) -> int:
    return int(x) if not base else int(math.floor(x / base + 0.5)) * base


def _values(model: _Model, frames: Mapping[str, pd.DataFrame]) -> list[float]:
    vals: list[float | None] = [None] * model.n
    for spec in model.structure.specs:
        df = frames[spec.name]
        for col in spec.count_cols:
            series = pd.to_numeric(df[col], errors="coerce")
            for pos, (raw, x) in enumerate(zip(df[col], series)):
                lab = model.labels[spec.name][pos]
                where = _describe((spec.name, lab, col))
                if pd.isna(x) or x < 0 or x != int(x):
                    raise DataError(f"{where}: a count must be a whole number >= 0, got {raw!r}")
                v = model.var_of[model.index[(spec.name, lab, col)]]
                if vals[v] is not None and vals[v] != x:
                    raise DataError(f"{where}: {int(x)} but the same cell is "
                                    f"{int(vals[v])} in another table")
                vals[v] = float(x)
    for tot, parts, kind, table in model.equations:
        s = sum(vals[p] for p in parts)
        if abs(vals[tot] - s) > _EPS:
            raise DataError(f"{_describe(model.cell(tot))}: total {int(vals[tot])} is not the "
                            f"sum of its parts ({int(s)})")
    return vals  # type: ignore[return-value]


def _closure(model: _Model, vals: list[float], hidden: set[int], reasons: dict,
             st: DisclosureSettings) -> None:
    """Rule 2: until stable, every equation with a withheld cell has at least two."""
    changed = True
    while changed:
        changed = False
        for tot, parts, kind, _ in model.equations:
            cells = [tot, *parts]
            inside = [v for v in cells if v in hidden]
            if len(set(inside)) != 1:
                continue
            cand = sorted({v for v in cells if v not in hidden
                           and (vals[v] > 0 or st.suppress_zeros)},
                          key=lambda v: (model.var_total[v], vals[v], v))
            if not cand:
                continue      # cannot happen: a non-zero withheld cell has a non-zero partner
            pick = cand[0]
            hidden.add(pick)
            reasons[pick] = (f"secondary:{kind}", inside[0])
            changed = True


def _attacker_view(model: _Model, vals: list[float], hidden: set[int]
                   ) -> list[tuple[float, float]]:
    """What the attacker would know if ``hidden`` were withheld (rules as published)."""
    st = model.structure.settings
    lo_hidden = 0.0 if st.suppress_zeros else 1.0
    known = []
    for v in range(model.n):
        if v in hidden:
            known.append((lo_hidden, math.inf))
            continue
        # a variable may span tables (or rows) with different rounding: intersect
        lo, hi = 0.0, math.inf
        for i in model.members[v]:
            base = model.base[i]
            if not base:
                lo, hi = vals[v], vals[v]
                break
            a, b = _rounding_interval(_round(vals[v], base), base, st)
            lo, hi = max(lo, a), min(hi, b)
        known.append((lo, hi))
    return known


def _ratios_view(model: _Model, frames: Mapping[str, pd.DataFrame], vals: list[float],
                 hidden: set[int]) -> list[tuple]:
    """The rates that would be published if ``hidden`` were withheld, as ratio bounds."""
    d = model.structure.settings.rate_decimals
    out = []
    for table, pos, rcol, num, den, scale in model.rates:
        if num in hidden or den in hidden:
            continue
        b = _rate_bounds(_format_rate(frames[table][rcol].iloc[pos], vals[den], d), d)
        if b is not None:
            out.append((num, den, scale, *b))
    return out


def _attack_on(model: _Model, frames: Mapping[str, pd.DataFrame], vals: list[float],
               hidden: set[int]) -> _Attack:
    """The attacker facing the output that withholds ``hidden``."""
    return _Attack(model, _attacker_view(model, vals, hidden),
                   model.structure.settings.attacker_integer,
                   _ratios_view(model, frames, vals, hidden))


def protect_tables(frames: Mapping[str, pd.DataFrame], specs: Sequence[TableSpec],
                   links: Sequence[Link] = (), *, settings: DisclosureSettings | None = None,
                   threshold: int | None = None, protection_level: float | None = None,
                   rounding: int | None = None, suppress_zeros: bool | None = None,
                   secondary: bool = True, audit: bool = True) -> ProtectedSet:
    """Protect a set of tables that share cells, consistently.

    Parameters
    ----------
    frames
        ``{table name: DataFrame of true (unrounded) counts and rates}``.
    specs, links
        The structure (:class:`TableSpec`, :class:`Link`).
    settings
        Default: ``data/disclosure.yaml``; the keyword arguments override it.
    secondary
        False publishes primary suppression only: unsafe, for demonstrations
        and tests of the attacker.
    audit
        Run the attacker on the output and withhold more cells until every
        withheld cell meets the protection criterion (rule 3).

    Raises
    ------
    DataError
        Bad counts (negative, fractional, missing), totals that do not add up,
        tied cells that differ, or tables that cannot be protected.
    """
    st = _settings(settings, threshold=threshold, protection_level=protection_level,
                   rounding=rounding, suppress_zeros=suppress_zeros)
    structure = Structure(tuple(specs), tuple(links), st)
    model = _Model(frames, structure)
    vals = _values(model, frames)
    t = st.threshold
    hidden = {v for v in range(model.n)
              if 0 < vals[v] < t or (st.suppress_zeros and vals[v] == 0)}
    reasons: dict[int, tuple[str, int | None]] = {v: ("primary", None) for v in hidden}
    if secondary:
        _closure(model, vals, hidden, reasons, st)
        while audit:
            failing = _failing(model, frames, vals, hidden, st)
            if not failing:
                break
            for target, before, binding in failing:
                attack = _attack_on(model, frames, vals, hidden)
                check = _check_one(attack, target, vals[target], st)
                if check is None:
                    continue          # fixed by an earlier addition in this round
                before, binding = check
                cands = _audit_candidates(model, vals, hidden, target, st, binding)
                if not cands:
                    raise DataError(f"{_describe(model.cell(target))}: cannot be protected "
                                    f"(attacker interval {before[0]:g}..{before[1]:g})")
                chosen = None
                for c in cands[:_MAX_TRIALS]:
                    trial, tr = set(hidden) | {c}, dict(reasons)
                    tr[c] = ("secondary:audit", target)
                    _closure(model, vals, trial, tr, st)
                    after = _attack_on(model, frames, vals, trial).interval(target)
                    if (after[1] > before[1] + _EPS
                            or after[1] - after[0] > before[1] - before[0] + _EPS):
                        chosen = (trial, tr)
                        break
                if chosen is None:    # nothing single helps: take the cheapest and go on
                    c = cands[0]
                    trial, tr = set(hidden) | {c}, dict(reasons)
                    tr[c] = ("secondary:audit", target)
                    _closure(model, vals, trial, tr, st)
                    chosen = (trial, tr)
                hidden, reasons = chosen
    return _publish(model, frames, vals, hidden, reasons, structure)


_MAX_TRIALS = 40


def _check_one(attack: _Attack, v: int, x: float, st: DisclosureSettings
               ) -> tuple[tuple[float, float], set[int]] | None:
    """Check whether withheld variable ``v`` (true value ``x``) is protected.

    Returns None if it is, else its interval and the equations binding it.
    Uses ``lower <= x``: when ``upper >= threshold`` and ``upper - x >=
    protection_level`` the cell passes without the minimisation.
    """
    hi, bind_hi = attack.bound(v, -1)
    if hi >= st.threshold - _EPS and hi - x >= st.protection_level - _EPS:
        return None
    lo, bind_lo = attack.bound(v, 1)
    if protected((lo, hi), st):
        return None
    return (lo, hi), bind_hi | bind_lo


def _failing(model: _Model, frames: Mapping[str, pd.DataFrame], vals: list[float],
             hidden: set[int], st: DisclosureSettings
             ) -> list[tuple[int, tuple[float, float], set[int]]]:
    attack = _attack_on(model, frames, vals, hidden)
    out = []
    for v in sorted(hidden):
        r = _check_one(attack, v, vals[v], st)
        if r is not None:
            out.append((v, *r))
    return out


def _audit_candidates(model: _Model, vals: list[float], hidden: set[int], target: int,
                      st: DisclosureSettings, binding: set[int] = frozenset()) -> list[int]:
    """Shown cells in the equations of the withheld cells connected to ``target``.

    Cells of equations that bind the attacker's bound (non-zero dual) come first;
    within each group, interior cells before totals, smallest first.
    """
    comp, todo = {target}, [target]
    while todo:
        v = todo.pop()
        for k in model.eq_of[v]:
            tot, parts, _, _ = model.equations[k]
            for w in (tot, *parts):
                if w in hidden and w not in comp:
                    comp.add(w)
                    todo.append(w)
    eqs = {k for v in comp for k in model.eq_of[v]} | set(binding)
    cands: dict[int, bool] = {}
    for k in sorted(eqs):
        tot, parts, _, _ = model.equations[k]
        for w in (tot, *parts):
            if w not in hidden and (vals[w] > 0 or st.suppress_zeros):
                cands[w] = cands.get(w, False) or k in binding
    return sorted(cands, key=lambda v: (not cands[v], model.var_total[v], vals[v], v))


def _format_rate(x: Any, den: float | None, decimals: int) -> str:
    if den is not None and den == 0:
        return "z"
    if x is None or pd.isna(x):
        return "x"
    s = f"{float(x):.{decimals}f}"
    if float(x) != 0 and float(s) == 0:
        return "k"
    return s


def _publish(model: _Model, frames: Mapping[str, pd.DataFrame], vals: list[float],
             hidden: set[int], reasons: dict, structure: Structure) -> ProtectedSet:
    st = structure.settings
    out = {}
    for spec in structure.specs:
        df = frames[spec.name]
        labels = model.labels[spec.name]
        pub = df.copy()
        mask = pd.DataFrame(False, index=df.index, columns=list(spec.count_cols))
        rows = []
        for col in spec.count_cols:
            texts = []
            for pos, lab in enumerate(labels):
                v = model.var_of[model.index[(spec.name, lab, col)]]
                if v in hidden:
                    texts.append(SUPPRESSED)
                    mask.iloc[pos, mask.columns.get_loc(col)] = True
                    reason, prot = reasons[v]
                    rows.append({"table": spec.name, "row": lab, "column": col,
                                 "value": int(vals[v]), "reason": reason,
                                 "protects": "" if prot is None else _describe(model.cell(prot)),
                                 "_order": (pos, spec.count_cols.index(col))})
                else:
                    base = model.base[model.index[(spec.name, lab, col)]]
                    texts.append(str(_round(vals[v], base)))
            pub[col] = pd.Series(texts, index=df.index, dtype=object)
        for rcol, (num, den, *_) in (spec.rate_cols or {}).items():
            if rcol not in df.columns:
                raise DataError(f"table {spec.name}: rate column {rcol!r} not found")
            for c in (num, den):
                if c is not None and c not in spec.count_cols:
                    raise DataError(f"table {spec.name}: rate {rcol!r} refers to {c!r}, "
                                    f"which is not a count column")
            texts = []
            for pos in range(len(df)):
                if mask[num].iloc[pos] or (den is not None and mask[den].iloc[pos]):
                    texts.append(SUPPRESSED)
                else:
                    d = None if den is None else float(pd.to_numeric(df[den].iloc[pos]))
                    texts.append(_format_rate(df[rcol].iloc[pos], d, st.rate_decimals))
            pub[rcol] = pd.Series(texts, index=df.index, dtype=object)
        audit = (pd.DataFrame(rows, columns=["table", "row", "column", "value", "reason",
                                             "protects", "_order"])
                 .sort_values("_order", kind="stable").drop(columns="_order")
                 .reset_index(drop=True))
        out[spec.name] = ProtectedTable(spec.name, pub, mask, audit, structure)
    return ProtectedSet(out, structure)


def protect_table(df: pd.DataFrame, *, count_cols: Sequence[str], row_keys: Sequence[str] | str,
                  total_row: Any = None, total_col: str | None = None,
                  row_groups: Mapping | None = None, col_groups: Mapping | None = None,
                  rate_cols: Mapping[str, tuple] | None = None, level_col: str | None = None,
                  name: str = "table", threshold: int | None = None,
                  protection_level: float | None = None, rounding: int | None = None,
                  suppress_zeros: bool | None = None, settings: DisclosureSettings | None = None,
                  secondary: bool = True, audit: bool = True) -> ProtectedTable:
    """Protect one table (see :func:`protect_tables` and the module docstring)."""
    spec = TableSpec(name, tuple(count_cols), row_keys, total_row, total_col, row_groups,
                     col_groups, rate_cols, level_col=level_col)
    return protect_tables({name: df}, [spec], settings=settings, threshold=threshold,
                          protection_level=protection_level, rounding=rounding,
                          suppress_zeros=suppress_zeros, secondary=secondary,
                          audit=audit)[name]


def protect_rates(rates: pd.DataFrame, counts: ProtectedTable, *, cols: Sequence[str],
                  denominator: ProtectedTable | None = None,
                  decimals: int | None = None) -> pd.DataFrame:
    """Publish a table of rates shaped like ``counts``: ``c`` wherever its count is withheld.

    ``rates`` has the same index and the columns ``cols`` of ``counts.mask``;
    the rates are computed by the caller on unrounded counts.
    """
    d = counts.structure.settings.rate_decimals if decimals is None else decimals
    if not rates.index.equals(counts.mask.index):
        raise DataError(f"rates for table {counts.name}: rows differ from the count table")
    pub = rates.copy()
    for col in cols:
        if col not in counts.mask.columns:
            raise DataError(f"rates for table {counts.name}: column {col!r} is not a count column")
        hide = counts.mask[col].copy()
        if denominator is not None:
            hide |= denominator.mask[col]
        pub[col] = pd.Series([SUPPRESSED if h else _format_rate(x, None, d)
                              for h, x in zip(hide, rates[col])], index=rates.index, dtype=object)
    return pub


# --------------------------------------------------------------------------- checking

def _unpack(published: Any, structure: Structure | None
            ) -> tuple[dict[str, pd.DataFrame], Structure]:
    if isinstance(published, (ProtectedSet, ProtectedTable)):
        frames = (published.published if isinstance(published, ProtectedSet)
                  else {published.name: published.published})
        return frames, structure or published.structure
    if isinstance(published, (list, tuple)) and all(isinstance(p, ProtectedTable) for p in published):
        if structure is None:
            structs = {id(p.structure): p.structure for p in published}
            if len(structs) != 1:
                raise DataError("tables protected separately: pass their joint structure")
            structure = next(iter(structs.values()))
        return {p.name: p.published for p in published}, structure
    if structure is None:
        raise DataError("check_disclosure needs the tables' structure")
    return dict(published), structure


def check_disclosure(published: Any, structure: Structure | None = None) -> list[str]:
    """Every disclosure problem of a set of published tables, one line each.

    ``published`` is a :class:`ProtectedSet`, a :class:`ProtectedTable`, a list of
    them, or ``{name: published DataFrame}`` with ``structure``. Checks, from
    the published tables alone: no shown count is 1 .. threshold-1 (nor 0 when
    zeros are suppressed); rounded tables show only multiples of the base; no
    rate is shown where its numerator or denominator count is withheld; and the
    attacker of :func:`recover_suppressed` cannot narrow any withheld cell
    beyond the protection criterion (see the module docstring).
    """
    frames, structure = _unpack(published, structure)
    st = structure.settings
    problems: list[str] = []
    unreadable = False
    for spec in structure.specs:
        if spec.name not in frames:
            problems.append(f"table {spec.name}: not among the published tables")
            unreadable = True
            continue
        df = frames[spec.name]
        try:
            labels = _row_labels(df, spec)
        except DataError as exc:
            problems.append(str(exc))
            unreadable = True
            continue
        try:
            bases = structure.row_bases(spec, df)
        except DataError as exc:
            problems.append(str(exc))
            unreadable = True
            continue
        hidden_mask: dict[str, list[bool]] = {}
        for col in spec.count_cols:
            hidden_mask[col] = []
            for lab, raw, base in zip(labels, df[col], bases):
                where = _describe((spec.name, lab, col))
                try:
                    x = _parse(raw)
                except ValueError:
                    problems.append(f"{where}: unreadable count {raw!r}")
                    unreadable = True
                    hidden_mask[col].append(True)
                    continue
                hidden_mask[col].append(isinstance(x, str))
                if isinstance(x, str):
                    continue
                if x < 0 or x != int(x):
                    problems.append(f"{where}: count {raw!r} is not a whole number >= 0")
                elif 0 < x < st.threshold:
                    problems.append(f"{where}: count {int(x)} below threshold {st.threshold} "
                                    f"published")
                elif x == 0 and st.suppress_zeros:
                    problems.append(f"{where}: zero published but zeros are suppressed")
                elif base and x % base:
                    problems.append(f"{where}: count {int(x)} not rounded to base {base}")
        for rcol, (num, den, *_) in (spec.rate_cols or {}).items():
            if rcol not in df.columns:
                problems.append(f"table {spec.name}: rate column {rcol!r} not found")
                continue
            for pos, (lab, raw) in enumerate(zip(labels, df[rcol])):
                src = hidden_mask.get(num, [False] * len(labels))[pos] or (
                    den is not None and hidden_mask.get(den, [False] * len(labels))[pos])
                if src and str(raw).strip() != SUPPRESSED:
                    problems.append(f"{_describe((spec.name, lab, rcol))}: rate {raw!r} published "
                                    f"from a withheld count")
    if not unreadable:
        try:
            bounds = recover_suppressed(frames, structure)
        except DataError as exc:
            problems.append(str(exc))
        else:
            for cell, (lo, hi) in bounds.items():
                if not protected((lo, hi), st):
                    problems.append(
                        f"{_describe(cell)}: withheld count can be narrowed to {lo:g}..{hi:g} "
                        f"(needs upper >= {st.threshold} and width >= {st.protection_level:g})")
    return problems


def assert_publishable(published: Any, structure: Structure | None = None) -> None:
    """Raise DataError naming the first problem of :func:`check_disclosure`, if any."""
    problems = check_disclosure(published, structure)
    if problems:
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        raise DataError(f"not publishable: {problems[0]}{more}")
