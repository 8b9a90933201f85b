"""Comparator matching for the pilot LAs and balance diagnostics.

For each treated (pilot) LA, :func:`match_comparators` picks its ``k`` nearest
LAs from a donor pool by Mahalanobis distance on pre-period features of one
outcome, and returns the matched pairs and a weighted matched panel for the
difference-in-differences estimators. :func:`balance_table` and
:func:`pre_trend_table` give the diagnostics (love plot, trend plot).

Conventions (each is stated again where it is applied)
------------------------------------------------------
Features
    ``<outcome>_level``: mean of the outcome over the pre-years;
    ``<outcome>_trend``: OLS slope per year over the pre-years (only when the
    design has two or more pre-years; with one pre-year the level alone is
    used). Each context variable is measured, per ``context_at``, at the
    last pre-year in which it is observed ("last", default), as its mean
    over the pre-years ("mean"), or in the year right after the last
    pre-year ("next": only for variables recorded *at the start* of a year,
    such as the Ofsted judgement in force, whose value there is still fixed
    before any treated LA's first treated year). Child population and
    density enter as natural logs (``log_vars``): they are right-skewed over
    orders of magnitude. Ofsted's overall judgement (1 Outstanding ..
    4 Inadequate) enters as an ordinal score.
Covariance
    The pooled within-group covariance of treated and donors (each group
    centred on its own mean, cross-products summed, divided by ``n - 2``):
    MatchIt's default for ``distance = "mahalanobis"`` (its ``pooled_cov``,
    following Rubin 1980 and optmatch), so that the treated-donor difference we
    are trying to remove does not inflate the scale. A singular matrix (a
    constant feature) is handled with the Moore-Penrose pseudo-inverse, as
    MatchIt falls back to a generalised inverse.
Region
    Region is categorical, so it is not put inside the Mahalanobis form (one
    dummy per region gives rare regions enormous weight). A donor in another
    region is counted ``region_penalty`` further away:
    ``distance = mahalanobis + region_penalty * [regions differ]``, the
    near-exact matching penalty of Rosenbaum (2010, ch. 10) in the units of
    the Mahalanobis distance (1 = one standard deviation of an uncorrelated
    feature). A small penalty is a soft preference for the same region, a
    large one makes a cross-region match a last resort; ``region_penalty=0``
    ignores region; ``region_exact=True`` allows only same-region donors
    (MatchIt's ``exact=``).
Missing data
    A donor lacking any feature is dropped from this outcome's pool (reported
    in ``MatchResult.donors_dropped``); a treated LA lacking one is a
    :class:`~analysis.core.errors.DesignError`, because silently dropping a pilot
    changes the estimand. For context variables listed in
    ``missing_category`` (e.g. Ofsted: "not yet inspected"), missing is a
    category instead: the missing-indicator method, with an indicator feature
    ``<var>_missing`` and the missing values set to the mean of the observed
    ones.
Without replacement
    ``method="optimal"`` (default): each treated LA is repeated ``k`` times
    and :func:`scipy.optimize.linear_sum_assignment` minimises the total
    distance (optmatch's ``pairmatch(controls = k)``), so the result does not
    depend on the order of the treated LAs. Greedy alternatives:
    ``"greedy_closest"`` (repeatedly take the closest available pair) and
    ``"greedy_hardest_first"`` (treated LAs whose nearest donor is farthest
    choose first, each taking its ``k`` nearest still available).
Caliper
    In standard deviations of the distance: a pair is within the caliper when
    its distance is at most ``caliper`` times the SD of all finite
    treated-donor distances of the pool. With ``caliper_action="drop"``
    (default) pairs beyond it are not allowed: a treated LA with no donor
    within it is unmatched and reported, one with fewer than ``k`` gets the
    ones it has. With ``"flag"`` matching ignores the caliper and the pairs
    beyond it are flagged (``beyond_caliper``) and noted.
Weights
    Treated LAs weigh 1. A comparator weighs the sum, over the treated LAs it
    serves, of ``1 / k_i`` (``k_i`` the number of comparators of that treated
    LA), so the comparator weights add up to the number of matched treated
    LAs and each treated LA's comparators together count as one LA (the ATT
    weights of MatchIt's nearest-neighbour matching).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import linear_sum_assignment

from analysis.core.errors import DataError, DesignError

#: Context variables that enter the distance as natural logs.
DEFAULT_LOG_VARS: tuple[str, ...] = ("pop_0_17", "people_per_sqkm")

_KEY = ["la_code", "year"]


@dataclass
class MatchResult:
    """Outcome of :func:`match_comparators` for one outcome.

    Attributes
    ----------
    outcome, pre_years, k, replace, method, caliper, caliper_action, region_penalty, region_exact
        The arguments of the call.
    pairs : DataFrame
        One row per (treated, comparator) pair: ``treated_code``,
        ``treated_name``, ``comparator_code``, ``comparator_name``, ``rank``
        (1 = nearest), ``distance`` (including any region penalty),
        ``mahalanobis`` (features only), ``same_region``, ``beyond_caliper``.
    matched_panel : DataFrame
        Panel rows (all years) of the matched treated LAs and their
        comparators, with ``weight`` (treated 1; comparator: sum of ``1/k_i``
        over the treated it serves), ``first_treated`` (first treated year;
        0 for comparators) and ``treated`` (bool).
    features : DataFrame
        Index ``la_code``; columns ``la_name``, ``region_code``, ``role``
        ("treated" or "donor"), ``first_treated`` and the numeric features
        (:attr:`feature_names`) for every treated LA and every donor kept in
        the pool.
    feature_names : list of str
        The numeric features in the distance, in order.
    covariance : ndarray
        Pooled within-group covariance matrix of the features.
    distances : DataFrame
        Treated x donor distance matrix (``inf`` where not allowed).
    caliper_distance : float or None
        The caliper in distance units (``caliper`` x SD of the distances).
    donors_dropped : dict
        ``{la_code: reason}`` for donors left out of the pool.
    unmatched : list of str
        Treated LAs with no admissible comparator (caliper or exact region).
    notes : list of str
        Plain-English remarks (dropped donors, short matches, unmatched).
    pool_panel : DataFrame
        Panel rows of all treated LAs and all donors kept in the pool (for the
        donor-pool line of :func:`pre_trend_table`).
    """

    outcome: str
    pre_years: list[int]
    k: int
    replace: bool
    method: str
    caliper: float | None
    caliper_action: str
    region_penalty: float
    region_exact: bool
    pairs: pd.DataFrame
    matched_panel: pd.DataFrame
    features: pd.DataFrame
    feature_names: list[str]
    covariance: np.ndarray
    distances: pd.DataFrame
    caliper_distance: float | None
    donors_dropped: dict[str, str]
    unmatched: list[str]
    notes: list[str] = field(default_factory=list)
    pool_panel: pd.DataFrame | None = None

    @property
    def n_donors_dropped(self) -> int:
        """Number of donors left out of this outcome's pool for missing features."""
        return len(self.donors_dropped)

    @property
    def n_donors(self) -> int:
        """Number of donors in the pool after dropping."""
        return int((self.features["role"] == "donor").sum())

    @property
    def n_treated(self) -> int:
        """Number of treated LAs with at least one comparator."""
        return int(self.pairs["treated_code"].nunique())

    @property
    def comparator_weights(self) -> pd.Series:
        """Matching weight of each comparator LA (index ``la_code``); sums to :attr:`n_treated`."""
        k_i = self.pairs.groupby("treated_code")["comparator_code"].transform("size")
        w = (1.0 / k_i).groupby(self.pairs["comparator_code"]).sum()
        w.index.name = "la_code"
        return w.rename("weight")

    def describe(self) -> str:
        """One plain-English sentence on the match, for reports and logs."""
        n_comp = self.pairs["comparator_code"].nunique()
        text = (f"{self.n_treated} treated LA(s) matched on {self.outcome} "
                f"(pre-years {_years_text(self.pre_years)}) to {n_comp} distinct "
                f"comparator LA(s), k = {self.k} "
                f"{'with' if self.replace else 'without'} replacement, from a pool of "
                f"{self.n_donors} donors ({self.n_donors_dropped} dropped for missing data)")
        if self.unmatched:
            text += f"; unmatched: {', '.join(self.unmatched)}"
        return text + "."


def match_comparators(panel: pd.DataFrame, treated: dict[str, int], donors: Sequence[str],
                      outcome: str, pre_years: Sequence[int],
                      context: Sequence[str] = ("pop_0_17", "idaci_score",
                                                "people_per_sqkm", "ofsted_overall"),
                      k: int = 2, replace: bool = True,
                      method: Literal["optimal", "greedy_closest",
                                      "greedy_hardest_first"] = "optimal",
                      caliper: float | None = None,
                      caliper_action: Literal["drop", "flag"] = "drop",
                      region_exact: bool = False, region_penalty: float = 1.0,
                      context_at: str | Mapping[str, str] = "last",
                      log_vars: Sequence[str] = DEFAULT_LOG_VARS,
                      missing_category: Sequence[str] = (),
                      min_pre_years: int | None = None,
                      outcome_trend: bool = True) -> MatchResult:
    """Match each treated LA to its ``k`` nearest donors on pre-period features.

    Parameters
    ----------
    panel : DataFrame
        Long LA-year panel with ``la_code``, ``year``, ``la_name``,
        ``region_code``, the outcome and the context columns (NaN = missing).
    treated : dict
        ``{la_code: first treated reporting year}``.
    donors : sequence of str
        LA codes eligible as comparators (the design's donor pool).
    outcome : str
        Outcome column whose pre-period level and trend are matched on.
    pre_years : sequence of int
        Reporting years before treatment used for the features; every one
        must precede every treated LA's first treated year.
    context : sequence of str
        Context columns (measured per ``context_at``).
    k : int
        Comparators per treated LA.
    replace : bool
        Whether a donor may serve several treated LAs.
    method : {"optimal", "greedy_closest", "greedy_hardest_first"}
        Algorithm without replacement (ignored with replacement, where each
        treated LA simply takes its ``k`` nearest).
    caliper : float, optional
        Caliper in SDs of all treated-donor distances of the pool.
    caliper_action : {"drop", "flag"}
        Disallow pairs beyond the caliper, or only flag them.
    region_exact : bool
        Only donors in the treated LA's region are allowed.
    region_penalty : float
        Added to the distance when regions differ (0 ignores region).
    context_at : str or dict
        "last", "mean" or "next" (see the module notes), for every context
        variable or as ``{variable: rule}`` (variables not named: "last").
    log_vars : sequence of str
        Context columns entered as natural logs (non-positive values count
        as missing).
    missing_category : sequence of str
        Context columns whose missing values form a category (indicator
        feature plus mean imputation) instead of excluding the LA.
    min_pre_years : int, optional
        Minimum number of observed pre-years for the outcome features
        (default: all of them). Fewer than two observed years leaves the
        trend missing when the design has a trend.
    outcome_trend : bool
        Match on the outcome's pre-period slope as well as its level (default).
        False matches on the level only (used when a pilot's pre-period has a
        single observed year, so its trend is unknown).

    Returns
    -------
    MatchResult

    Raises
    ------
    DesignError
        No pre-years, a pre-year not before some treated LA's start, an LA
        missing from the panel, a treated LA also a donor, a treated LA
        missing a feature, too few donors, an unknown option.
    DataError
        Missing or non-numeric panel columns, duplicate LA-years.
    """
    pre_years = sorted(int(y) for y in pre_years)
    treated = {str(c): int(y) for c, y in treated.items()}
    donors = list(dict.fromkeys(str(d) for d in donors))  # dedupe, keep order
    context = list(context)
    rules = _context_rules(context, context_at)
    _check_design(panel, treated, donors, outcome, pre_years, context, k, caliper,
                  region_penalty, rules, method, caliper_action, missing_category)
    use_region = region_exact or region_penalty > 0

    codes = list(treated) + donors
    sub = panel.loc[panel["la_code"].isin(codes)]
    feats, names, missing = _features(sub, codes, outcome, pre_years, context, rules,
                                      set(log_vars), set(missing_category), min_pre_years,
                                      outcome_trend)
    meta = _la_meta(sub, codes)
    if use_region:
        missing = missing.copy()
        missing["region_code"] = meta["region_code"].isna()

    # A treated LA without a feature: refuse, naming LA and feature.
    bad_t = missing.loc[list(treated)]
    if bad_t.to_numpy().any():
        code = bad_t.index[bad_t.any(axis=1).to_numpy()][0]
        what = [c for c in bad_t.columns if bad_t.at[code, c]]
        raise DesignError(
            f"treated LA {code} ({meta.at[code, 'la_name']}) has no value for "
            f"{', '.join(what)} in pre-years {_years_text(pre_years)}: it cannot be matched "
            f"on {outcome!r}", hint="change the pre-years or the context variables for this "
            "outcome, or treat missing as a category")

    dropped: dict[str, str] = {}
    miss_d = missing.loc[donors].to_numpy(bool)
    cols = list(missing.columns)
    for i in np.flatnonzero(miss_d.any(axis=1)):
        dropped[donors[i]] = "missing " + ", ".join(c for c, m in zip(cols, miss_d[i]) if m)
    pool = [d for d in donors if d not in dropped]
    t_codes = list(treated)
    if len(pool) < k:
        raise DesignError(f"only {len(pool)} donors have all features for {outcome!r}; "
                          f"k = {k} comparators are needed")
    if not replace and len(pool) < k * len(t_codes):
        raise DesignError(f"matching without replacement needs k x treated = {k * len(t_codes)} "
                          f"donors; only {len(pool)} have all features for {outcome!r}")

    Xt = feats.loc[t_codes, names].to_numpy(float)
    Xd = feats.loc[pool, names].to_numpy(float)
    cov = _pooled_within_cov(Xt, Xd)
    maha = _mahalanobis_matrix(Xt, Xd, np.linalg.pinv(cov, hermitian=True))

    if use_region:
        reg_t = meta.loc[t_codes, "region_code"].to_numpy()
        reg_d = meta.loc[pool, "region_code"].to_numpy()
        same = reg_t[:, None] == reg_d[None, :]
    else:
        same = np.ones_like(maha, dtype=bool)
    dist = maha + region_penalty * (~same)
    if region_exact:
        dist = np.where(same, dist, np.inf)

    admissible = np.isfinite(dist)
    caliper_distance = None
    if caliper is not None:
        finite = dist[np.isfinite(dist)]
        # SD of the distances themselves, so the caliper scales with the pool.
        caliper_distance = float(caliper * np.std(finite, ddof=1)) if finite.size > 1 else 0.0
        if caliper_action == "drop":
            admissible &= dist <= caliper_distance

    if replace:
        chosen = _match_with_replacement(dist, admissible, k)
    elif method == "optimal":
        chosen = _match_optimal(dist, admissible, k)
    else:
        chosen = _match_greedy(dist, admissible, k, hardest_first=method == "greedy_hardest_first")

    notes: list[str] = []
    if dropped:
        notes.append(f"{len(dropped)} donor(s) dropped from the {outcome} pool for missing "
                     f"features: " + "; ".join(f"{c} ({meta.at[c, 'la_name']}: {why})"
                                               for c, why in dropped.items()))
    rows = []
    unmatched: list[str] = []
    for i, code in enumerate(t_codes):
        name = meta.at[code, "la_name"]
        js = sorted(chosen[i], key=lambda j: (dist[i, j], pool[j]))
        if not js:
            unmatched.append(code)
            why = "within the caliper" if caliper is not None else "in its region"
            notes.append(f"{code} ({name}) has no admissible donor {why}: "
                         "left out of the matched panel")
            continue
        if len(js) < k:
            notes.append(f"{code} ({name}) has only {len(js)} of {k} comparators within the "
                         + ("caliper" if caliper is not None else "region"))
        for r, j in enumerate(js, start=1):
            beyond = caliper_distance is not None and dist[i, j] > caliper_distance
            if beyond:
                notes.append(f"{code} ({name}): comparator {pool[j]} ({meta.at[pool[j], 'la_name']}) "
                             f"is beyond the caliper (distance {dist[i, j]:.2f} > "
                             f"{caliper_distance:.2f})")
            rows.append((code, name, pool[j], meta.at[pool[j], "la_name"], r,
                         float(dist[i, j]), float(maha[i, j]), bool(same[i, j]), bool(beyond)))
    pairs = pd.DataFrame(rows, columns=["treated_code", "treated_name", "comparator_code",
                                        "comparator_name", "rank", "distance", "mahalanobis",
                                        "same_region", "beyond_caliper"])
    if pairs.empty:
        raise DesignError(f"no treated LA has an admissible comparator for {outcome!r}"
                          + (f" within a caliper of {caliper} SD" if caliper is not None else ""),
                          hint="widen the caliper or relax exact region matching")

    features = meta.loc[t_codes + pool, ["la_name", "region_code"]].copy()
    features["role"] = ["treated"] * len(t_codes) + ["donor"] * len(pool)
    features["first_treated"] = [treated[c] for c in t_codes] + [0] * len(pool)
    features = features.join(feats.loc[t_codes + pool, names])
    features.index.name = "la_code"

    result = MatchResult(
        outcome=outcome, pre_years=pre_years, k=k, replace=replace,
        method="nearest" if replace else method, caliper=caliper, caliper_action=caliper_action,
        region_penalty=float(region_penalty), region_exact=region_exact, pairs=pairs,
        matched_panel=pd.DataFrame(), features=features, feature_names=names,
        covariance=cov, distances=pd.DataFrame(dist, index=pd.Index(t_codes, name="treated_code"),
                                               columns=pd.Index(pool, name="comparator_code")),
        caliper_distance=caliper_distance, donors_dropped=dropped, unmatched=unmatched,
        notes=notes, pool_panel=sub.loc[sub["la_code"].isin(t_codes + pool)].reset_index(drop=True))
    result.matched_panel = _matched_panel(sub, pairs, treated)
    return result


def _context_rules(context: list[str], context_at: str | Mapping[str, str]) -> dict[str, str]:
    """Per-variable measurement rule from a single rule or a mapping."""
    if isinstance(context_at, str):
        return {v: context_at for v in context}
    extra = [v for v in context_at if v not in context]
    if extra:
        raise DesignError(f"context_at names variable(s) {extra} that are not in context {context}")
    return {v: context_at.get(v, "last") for v in context}


# ---------------------------------------------------------------- checks

def _check_design(panel: pd.DataFrame, treated: dict[str, int], donors: list[str], outcome: str,
                  pre_years: list[int], context: list[str], k: int, caliper: float | None,
                  region_penalty: float, rules: dict[str, str], method: str,
                  caliper_action: str, missing_category: Sequence[str]) -> None:
    need = ["la_code", "year", "la_name", "region_code", outcome, *context]
    absent = [c for c in dict.fromkeys(need) if c not in panel.columns]
    if absent:
        raise DataError(f"panel lacks column(s) {absent}", column=absent[0])
    if panel.duplicated(_KEY).any():
        row = panel.loc[panel.duplicated(_KEY), _KEY].iloc[0]
        raise DataError(f"panel has duplicate rows for {row['la_code']} in {row['year']}")
    if not treated:
        raise DesignError("no treated LAs to match")
    if not pre_years:
        raise DesignError(f"no pre-treatment years for {outcome!r}: a difference-in-differences "
                          "design needs at least one year before treatment")
    late = {c: y for c, y in treated.items() if y <= pre_years[-1]}
    if late:
        c, y = next(iter(late.items()))
        raise DesignError(f"pre-year {pre_years[-1]} is not before treated LA {c}'s first treated "
                          f"year {y} (outcome {outcome!r}): it has no pre-period of that length")
    years = set(panel["year"].astype(int).unique())
    absent_years = [y for y in pre_years if y not in years]
    if "next" in rules.values() and pre_years[-1] + 1 not in years:
        absent_years.append(pre_years[-1] + 1)
    if absent_years:
        raise DesignError(f"year(s) {absent_years} needed for matching are not in the panel")
    both = sorted(set(treated) & set(donors))
    if both:
        raise DesignError(f"LA(s) {both} are both treated and in the donor pool")
    present = set(panel["la_code"].unique())
    for role, codes in (("treated", list(treated)), ("donor", donors)):
        gone = [c for c in codes if c not in present]
        if gone:
            raise DesignError(f"{role} LA(s) {gone} not in the panel")
    if not isinstance(k, (int, np.integer)) or k < 1:
        raise DesignError(f"k must be a positive integer, got {k!r}")
    if caliper is not None and not caliper > 0:
        raise DesignError(f"caliper must be positive, got {caliper!r}")
    bad_rules = {v: r for v, r in rules.items() if r not in ("last", "mean", "next")}
    if bad_rules:
        raise DesignError(f"context_at must be 'last', 'mean' or 'next', got {bad_rules}")
    if method not in ("optimal", "greedy_closest", "greedy_hardest_first"):
        raise DesignError(f"unknown matching method {method!r}")
    if caliper_action not in ("drop", "flag"):
        raise DesignError(f"caliper_action must be 'drop' or 'flag', got {caliper_action!r}")
    stray = [v for v in missing_category if v not in context]
    if stray:
        raise DesignError(f"missing_category names variable(s) {stray} not in context {context}")
    if not region_penalty >= 0:
        raise DesignError(f"region_penalty must be >= 0, got {region_penalty!r}")


# -------------------------------------------------------------- features

def _la_meta(sub: pd.DataFrame, codes: list[str]) -> pd.DataFrame:
    """Name and region per LA: the latest non-missing value in the panel."""
    last = (sub.sort_values("year").groupby("la_code")[["la_name", "region_code"]].last())
    return last.reindex(codes)


def _features(sub: pd.DataFrame, codes: list[str], outcome: str, pre_years: list[int],
              context: list[str], rules: dict[str, str], log_vars: set[str],
              missing_category: set[str], min_pre_years: int | None,
              outcome_trend: bool = True) -> tuple[pd.DataFrame, list[str], pd.DataFrame]:
    """Feature matrix (index ``codes``), feature names, and a missing-feature mask.

    The mask has one column per source variable (outcome, each context
    variable): True where the LA lacks a feature built from it.
    """
    next_year = pre_years[-1] + 1
    years_needed = pre_years + ([next_year] if "next" in rules.values() else [])
    pre = sub.loc[sub["year"].isin(years_needed)]
    years = np.asarray(pre_years, dtype=float)
    out: dict[str, np.ndarray] = {}
    miss: dict[str, np.ndarray] = {}

    # One reshape for the outcome and every context variable: LA x (variable, year).
    cols = list(dict.fromkeys([outcome, *context]))
    try:
        wide_all = pre.set_index(["la_code", "year"])[cols].astype(float).unstack("year")
    except (TypeError, ValueError):
        bad = next(c for c in cols if not pd.api.types.is_numeric_dtype(pre[c]))
        raise DataError("matching variable is not numeric", column=bad) from None
    col_index = pd.MultiIndex.from_product([cols, years_needed])
    wide_all = wide_all.reindex(index=codes, columns=col_index)

    Y = wide_all[outcome][pre_years].to_numpy(float)
    obs = ~np.isnan(Y)
    n_obs = obs.sum(axis=1)
    need = len(pre_years) if min_pre_years is None else max(1, int(min_pre_years))
    enough = n_obs >= need
    with np.errstate(invalid="ignore", divide="ignore"):
        level = np.where(obs, Y, 0.0).sum(axis=1) / n_obs
    out[f"{outcome}_level"] = np.where(enough, level, np.nan)
    miss[outcome] = ~enough
    if len(pre_years) >= 2 and outcome_trend:
        # OLS slope on the observed years only, vectorised over LAs.
        with np.errstate(invalid="ignore", divide="ignore"):
            xm = (obs * years).sum(axis=1) / n_obs
            dx = np.where(obs, years[None, :] - xm[:, None], 0.0)
            dy = np.where(obs, Y - level[:, None], 0.0)
            slope = (dx * dy).sum(axis=1) / (dx**2).sum(axis=1)
        ok = enough & (n_obs >= 2)
        out[f"{outcome}_trend"] = np.where(ok, slope, np.nan)
        miss[outcome] = ~ok

    for var in context:
        rule = rules[var]
        if rule == "next":
            v = wide_all[var][next_year].to_numpy(float)
        else:
            W = wide_all[var][pre_years].to_numpy(float)
            seen = ~np.isnan(W)
            if rule == "last":
                # Last observed pre-year value: a judgement or estimate carried forward
                # within the pre-period, so one missing year does not lose the LA.
                last = W.shape[1] - 1 - np.argmax(seen[:, ::-1], axis=1)
                v = np.where(seen.any(axis=1), W[np.arange(W.shape[0]), last], np.nan)
            else:  # "mean"
                with np.errstate(invalid="ignore", divide="ignore"):
                    v = np.where(seen, W, 0.0).sum(axis=1) / seen.sum(axis=1)
        name = var
        if var in log_vars:
            with np.errstate(invalid="ignore", divide="ignore"):
                v = np.where(v > 0, np.log(v), np.nan)
            name = f"log_{var}"
        gap = np.isnan(v)
        if var in missing_category and gap.any():
            if gap.all():
                raise DesignError(f"no treated or donor LA has a value for {var!r}")
            # Missing-indicator method: missing is its own category.
            out[name] = np.where(gap, np.nanmean(v), v)
            out[f"{name}_missing"] = gap.astype(float)
            miss[var] = np.zeros_like(gap)
        else:
            out[name] = v
            miss[var] = gap

    feats = pd.DataFrame(out, index=pd.Index(codes, name="la_code"))
    return feats, list(out), pd.DataFrame(miss, index=feats.index)


def _pooled_within_cov(Xt: np.ndarray, Xd: np.ndarray) -> np.ndarray:
    """Pooled within-group covariance (MatchIt ``pooled_cov``): centred per group, / (n - 2)."""
    centred = np.vstack([Xt - Xt.mean(axis=0), Xd - Xd.mean(axis=0)])
    dof = centred.shape[0] - 2
    if dof < 1:
        raise DesignError("too few LAs to estimate the covariance of the matching features")
    return centred.T @ centred / dof


def _mahalanobis_matrix(Xt: np.ndarray, Xd: np.ndarray, VI: np.ndarray) -> np.ndarray:
    """Treated x donor Mahalanobis distances for inverse covariance ``VI``."""
    diff = Xt[:, None, :] - Xd[None, :, :]
    d2 = np.einsum("ijk,kl,ijl->ij", diff, VI, diff)
    return np.sqrt(np.clip(d2, 0.0, None))


# -------------------------------------------------------------- matching

def _match_with_replacement(dist: np.ndarray, admissible: np.ndarray, k: int) -> list[list[int]]:
    """The k nearest admissible donors of each treated LA (ties: pool order)."""
    out = []
    for i in range(dist.shape[0]):
        js = np.flatnonzero(admissible[i])
        order = js[np.argsort(dist[i, js], kind="stable")]
        out.append(list(order[:k]))
    return out


def _match_greedy(dist: np.ndarray, admissible: np.ndarray, k: int,
                  hardest_first: bool) -> list[list[int]]:
    """Greedy 1:k matching without replacement.

    ``hardest_first``: treated LAs in decreasing order of the distance to
    their nearest admissible donor, each taking its k nearest still free.
    Otherwise: repeatedly the closest admissible pair among treated LAs that
    still need a comparator and free donors. Ties: first in pool order.
    """
    n_t = dist.shape[0]
    out: list[list[int]] = [[] for _ in range(n_t)]
    free = np.ones(dist.shape[1], dtype=bool)
    if hardest_first:
        nearest = np.where(admissible, dist, np.inf).min(axis=1)
        for i in np.argsort(-nearest, kind="stable"):
            js = np.flatnonzero(admissible[i] & free)
            js = js[np.argsort(dist[i, js], kind="stable")][:k]
            out[i] = [int(j) for j in js]
            free[js] = False
        return out
    d = np.where(admissible, dist, np.inf)
    for _ in range(n_t * k):
        i, j = np.unravel_index(np.argmin(d), d.shape)
        if not np.isfinite(d[i, j]):
            break
        out[i].append(int(j))
        d[:, j] = np.inf
        if len(out[i]) == k:
            d[i, :] = np.inf
    return out


def _match_optimal(dist: np.ndarray, admissible: np.ndarray, k: int) -> list[list[int]]:
    """Optimal 1:k matching without replacement (minimum total distance).

    Each treated row is repeated k times and solved as an assignment problem.
    Inadmissible pairs cost more than any complete admissible matching, so the
    solution first maximises the number of admissible pairs, then minimises
    their total distance; inadmissible assignments are then discarded.
    """
    n_t = dist.shape[0]
    finite = np.where(admissible, dist, 0.0)
    big = float(finite.sum()) + 1.0
    cost = np.where(admissible, dist, big)
    rows, cols = linear_sum_assignment(np.repeat(cost, k, axis=0))
    out: list[list[int]] = [[] for _ in range(n_t)]
    for r, c in zip(rows, cols):
        i = r // k
        if admissible[i, c]:
            out[i].append(int(c))
    return out


def _matched_panel(sub: pd.DataFrame, pairs: pd.DataFrame, treated: dict[str, int]) -> pd.DataFrame:
    """Panel rows of matched treated LAs and comparators with weight and first_treated."""
    t_codes = list(pairs["treated_code"].unique())
    k_i = pairs.groupby("treated_code")["comparator_code"].transform("size")
    w_comp = (1.0 / k_i).groupby(pairs["comparator_code"]).sum()
    weights = pd.concat([pd.Series(1.0, index=t_codes), w_comp])
    first = pd.concat([pd.Series({c: treated[c] for c in t_codes}, dtype="int64"),
                       pd.Series(0, index=w_comp.index, dtype="int64")])
    mp = sub.loc[sub["la_code"].isin(weights.index)].copy()
    mp["weight"] = mp["la_code"].map(weights).astype(float)
    mp["first_treated"] = mp["la_code"].map(first).astype("int64")
    mp["treated"] = mp["first_treated"] > 0
    return mp.sort_values(["treated", "la_code", "year"], ascending=[False, True, True]
                          ).reset_index(drop=True)


# ------------------------------------------------------------- diagnostics

def balance_table(result: MatchResult, binary: Literal["raw", "std"] = "raw") -> pd.DataFrame:
    """Balance of every matching variable before and after matching.

    Follows cobalt's conventions for the ATT: the standardised mean
    difference (SMD) is (treated mean - control mean) / s*, where s* is the
    standard deviation of the *treated* group in the unmatched sample
    (cobalt's ``s.d.denom = "treated"``, its default when the estimand is the
    ATT) and the same s* is used before and after matching, so a change in
    SMD is a change in the means only. If the treated SD is zero or
    undefined (one treated LA, or all alike) the pooled SD
    ``sqrt((s1^2 + s0^2) / 2)`` is used instead and ``sd_basis`` says so.
    "Before" compares all treated LAs with every donor in the pool; "after"
    compares the matched treated LAs with their comparators weighted by the
    matching weights. Variance ratios are treated over control; weighted
    variances use reliability weights, as cobalt does. Region, matched on as a
    category, appears as one binary indicator per region, and each
    missing-category indicator is binary too; for binary variables, by
    cobalt's default (``binary = "raw"``), the "SMD" columns hold the raw
    difference in proportions and the variance ratios are left empty.

    Parameters
    ----------
    result : MatchResult
    binary : {"raw", "std"}
        Raw or standardised differences for binary variables (region and
        missing-category indicators).

    Returns
    -------
    DataFrame
        One row per variable: ``variable``, ``kind`` (outcome level, outcome
        trend, context, region), ``type`` (continuous/binary),
        ``mean_treated``, ``mean_donors``, ``mean_treated_matched``,
        ``mean_matched``, ``smd_before``, ``smd_after``,
        ``var_ratio_before``, ``var_ratio_after``, ``sd_basis``.
    """
    f = result.features
    t_all = f.loc[f["role"] == "treated"]
    donors = f.loc[f["role"] == "donor"]
    w = result.comparator_weights
    t_m = t_all.loc[t_all.index.isin(result.pairs["treated_code"])]
    comp = f.loc[w.index]
    wv = w.to_numpy(float)

    variables: list[tuple[str, str, str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
    for name in result.feature_names:
        kind = ("outcome level" if name == f"{result.outcome}_level" else
                "outcome trend" if name == f"{result.outcome}_trend" else "context")
        # missing-category indicators are binary, as cobalt would detect them
        typ = "binary" if name.endswith("_missing") else "continuous"
        variables.append((name, kind, typ, t_all[name].to_numpy(float),
                          donors[name].to_numpy(float), t_m[name].to_numpy(float),
                          comp[name].to_numpy(float)))
    if result.region_exact or result.region_penalty > 0:
        regions = sorted(set(f["region_code"].dropna()))
        for reg in regions:
            ind = (f["region_code"] == reg).astype(float)
            variables.append((f"region_{reg}", "region", "binary", ind.loc[t_all.index].to_numpy(),
                              ind.loc[donors.index].to_numpy(), ind.loc[t_m.index].to_numpy(),
                              ind.loc[comp.index].to_numpy()))

    rows = []
    for name, kind, typ, xt, xd, xtm, xc in variables:
        m_t, m_d, m_tm = xt.mean(), xd.mean(), (xtm.mean() if xtm.size else np.nan)
        m_c = float(np.average(xc, weights=wv)) if xc.size else np.nan
        v_t, v_d = _var(xt), _var(xd)
        v_tm, v_c = _var(xtm), _var(xc, wv)
        if typ == "binary" and binary == "raw":
            denom, basis = 1.0, "raw difference"
            vr_b = vr_a = np.nan
        else:
            if typ == "binary":
                s_t = np.sqrt(m_t * (1 - m_t))
                pooled = np.sqrt((m_t * (1 - m_t) + m_d * (1 - m_d)) / 2)
            else:
                s_t = np.sqrt(v_t)
                pooled = np.sqrt((v_t + v_d) / 2) if np.isfinite(v_t) else np.sqrt(v_d)
            if np.isfinite(s_t) and s_t > 0:
                denom, basis = s_t, "treated SD"
            else:
                denom, basis = pooled, "pooled SD"
            with np.errstate(divide="ignore", invalid="ignore"):
                # Python floats raise on /0 whatever errstate says: divide as numpy.
                vr_b = float(np.divide(np.float64(v_t), v_d)) if typ == "continuous" else np.nan
                vr_a = float(np.divide(np.float64(v_tm), v_c)) if typ == "continuous" else np.nan
        with np.errstate(divide="ignore", invalid="ignore"):
            smd_b = (m_t - m_d) / denom if denom > 0 else np.nan
            smd_a = (m_tm - m_c) / denom if denom > 0 else np.nan
        rows.append(dict(variable=name, kind=kind, type=typ, mean_treated=m_t, mean_donors=m_d,
                         mean_treated_matched=m_tm, mean_matched=m_c, smd_before=smd_b,
                         smd_after=smd_a, var_ratio_before=vr_b, var_ratio_after=vr_a,
                         sd_basis=basis))
    return pd.DataFrame(rows)


def _var(x: np.ndarray, w: np.ndarray | None = None) -> float:
    """Sample variance; with weights, the reliability-weights form cobalt uses."""
    if x.size < 2:
        return np.nan
    if w is None:
        return float(np.var(x, ddof=1))
    p = w / w.sum()
    denom = 1.0 - np.sum(p**2)
    if denom <= 0:
        return np.nan
    mu = np.sum(p * x)
    return float(np.sum(p * (x - mu) ** 2) / denom)


def max_abs_smd(table: pd.DataFrame, stage: Literal["before", "after"] = "after",
                include_binary: bool = True) -> float:
    """Largest absolute SMD (or raw binary difference) in a :func:`balance_table`.

    The input to the balance criterion of :func:`analysis.methods.evidence.grade_evidence`.
    """
    t = table if include_binary else table.loc[table["type"] == "continuous"]
    vals = t[f"smd_{stage}"].abs()
    return float(vals.max()) if vals.notna().any() else float("nan")


def love_plot_data(table: pd.DataFrame) -> pd.DataFrame:
    """Long form of a :func:`balance_table` for a love plot.

    Returns columns ``variable``, ``kind``, ``type``, ``stage``
    ("before"/"after") and ``smd``, ``abs_smd``.
    """
    long = table.melt(id_vars=["variable", "kind", "type"], value_vars=["smd_before", "smd_after"],
                      var_name="stage", value_name="smd")
    long["stage"] = long["stage"].str.removeprefix("smd_")
    long["abs_smd"] = long["smd"].abs()
    return long


def pre_trend_table(result: MatchResult, outcome: str | None = None,
                    years: Sequence[int] | None = None, include_pool: bool = False) -> pd.DataFrame:
    """Mean outcome by year for the pilots and their matched comparators.

    Pilots (matched treated LAs) are averaged with equal weight; comparators
    with their matching weights, so each pilot's comparators count as one LA.
    LAs with a missing value in a year are left out of that year's mean and
    the weights of the rest renormalised (``n_las`` says how many entered).

    Parameters
    ----------
    result : MatchResult
    outcome : str, optional
        Column to average (default: the matched outcome).
    years : sequence of int, optional
        Years to include (default: every year in the matched panel).
    include_pool : bool
        Add the unweighted mean of every donor in the pool ("donor pool").

    Returns
    -------
    DataFrame
        Tidy: ``year``, ``group`` ("pilots", "comparators"[, "donor pool"]),
        ``mean``, ``n_las``.
    """
    outcome = result.outcome if outcome is None else outcome
    mp = result.matched_panel
    if outcome not in mp.columns:
        raise DataError(f"panel lacks column {outcome!r}", column=outcome)
    frames = [("pilots", mp.loc[mp["treated"]].assign(weight=1.0)),
              ("comparators", mp.loc[~mp["treated"]])]
    if include_pool:
        pool = result.pool_panel
        donor_codes = result.features.index[result.features["role"] == "donor"]
        frames.append(("donor pool", pool.loc[pool["la_code"].isin(donor_codes)].assign(weight=1.0)))
    out = []
    for label, df in frames:
        if years is not None:
            df = df.loc[df["year"].isin(list(years))]
        d = df.loc[df[outcome].notna(), ["year", "weight", outcome]]
        g = (d.assign(wy=d["weight"] * d[outcome]).groupby("year")
             .agg(wy=("wy", "sum"), w=("weight", "sum"), n_las=(outcome, "size")))
        out.append(pd.DataFrame({"year": g.index.astype(int), "group": label,
                                 "mean": (g["wy"] / g["w"]).to_numpy(), "n_las": g["n_las"].to_numpy()}))
    return pd.concat(out, ignore_index=True).sort_values(["group", "year"]).reset_index(drop=True)


def _years_text(years: Sequence[int]) -> str:
    years = list(years)
    if not years:
        return "none"
    if years == list(range(years[0], years[-1] + 1)) and len(years) > 1:
        return f"{years[0]}-{years[-1]}"
    return ", ".join(str(y) for y in years)
