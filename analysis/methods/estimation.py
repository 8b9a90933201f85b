"""Difference-in-differences estimators on a long unit-by-period panel.

Three estimators, all returning tidy dataclasses:

* :func:`twfe_did` -- two-way fixed effects DiD (unit and period fixed effects),
  optional analytic weights, fitted with statsmodels (WLS on unit and period
  dummies) and a cluster-robust covariance by unit;
* :func:`event_study` -- the same regression with leads and lags of each
  treated unit's first-treated period (reference period -1) and a joint Wald
  test that all leads are zero;
* :func:`callaway_santanna` -- group-time ATT(g,t) in the manner of Callaway and
  Sant'Anna (2021) with never-treated comparisons, following R ``did``'s
  defaults, aggregated to an overall ATT and to event time, with analytic
  influence-function standard errors.

Conventions
-----------
Cluster-robust covariance (TWFE and event study) is CR1, clustered by unit, with
the small-sample factor that Stata (``xtreg, fe vce(cluster)`` /
``reghdfe``) and R ``fixest`` (default ``ssc()``) apply::

    G / (G - 1) * (N - 1) / (N - K)

where G is the number of units (clusters), N the number of observations and
K = (number of regressors) + (number of period fixed effects): unit fixed
effects are nested in the clusters and not counted, and one degree of freedom
stands for the intercept. Tests and intervals use Student's t with G - 1
degrees of freedom, the joint lead test F(q, G - 1), as Stata and fixest do.

Weights are analytic (WLS) weights, one per row; for the staggered estimator
they must be constant within a unit (as R ``did`` requires).

Missing outcomes: rows with a missing outcome are dropped before anything is
estimated, so the panel may be unbalanced. The fixed effects are then projected
out exactly (QR of the weighted dummy matrix), never by one-pass demeaning,
which is only exact for balanced panels.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse
from scipy import stats

from analysis.core.errors import DataError

__all__ = [
    "Panel", "prepare_panel", "DiDResult", "EventStudyResult", "StaggeredResult",
    "FWLDesign", "twfe_did", "event_study", "callaway_santanna", "cr1_factor",
]


# --------------------------------------------------------------------------
# Panel preparation and validation
# --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class Panel:
    """A validated long panel, rows with a missing outcome already dropped.

    Build it with :func:`prepare_panel`. Arrays indexed by row have length
    ``n_obs``; arrays indexed by unit have length ``n_units``.

    Attributes
    ----------
    y : ndarray (n_obs,)
        Outcome.
    unit_index, time_index : ndarray of int (n_obs,)
        Row's unit (0..n_units-1) and period (0..n_periods-1).
    units : ndarray (n_units,)
        Unit labels in ``unit_index`` order.
    times : ndarray (n_periods,)
        Sorted period values present after dropping missing outcomes.
    first_treated : ndarray of float (n_units,)
        First treated period; 0 for never treated (including units first
        treated after the last period, as R ``did`` does).
    weights : ndarray (n_obs,) or None
        Positive analytic weights, or None for unweighted.
    n_dropped : int
        Rows dropped because the outcome was missing.
    columns : dict
        The column names this panel was built from (for messages and output).
    """

    y: np.ndarray
    unit_index: np.ndarray
    time_index: np.ndarray
    units: np.ndarray
    times: np.ndarray
    first_treated: np.ndarray
    weights: np.ndarray | None
    n_dropped: int = 0
    columns: dict = field(default_factory=dict)

    @property
    def n_obs(self) -> int:
        """Number of rows."""
        return int(self.y.shape[0])

    @property
    def n_units(self) -> int:
        """Number of units."""
        return int(self.units.shape[0])

    @property
    def n_periods(self) -> int:
        """Number of periods."""
        return int(self.times.shape[0])

    @property
    def treated(self) -> np.ndarray:
        """Boolean per unit: ever treated within the panel."""
        return self.first_treated > 0

    @property
    def n_treated(self) -> int:
        """Number of units ever treated within the panel."""
        return int(self.treated.sum())

    @property
    def time(self) -> np.ndarray:
        """Period value of each row."""
        return self.times[self.time_index]

    @cached_property
    def treatment(self) -> np.ndarray:
        """Treatment indicator D of each row: treated unit at or after its start."""
        return treatment_indicator(self.first_treated, self.unit_index, self.time)

    @property
    def balanced(self) -> bool:
        """Whether there is a row for every unit in every period."""
        return self.n_obs == self.n_units * self.n_periods

    @property
    def sqrt_w(self) -> np.ndarray:
        """Square root of each row's weight (ones when unweighted)."""
        return np.ones(self.n_obs) if self.weights is None else np.sqrt(self.weights)

    @cached_property
    def fe_basis(self) -> np.ndarray:
        """Orthonormal basis (n_obs x rank) of the weighted unit+period dummy space.

        Pivoted QR of sqrt(w) * [unit dummies, period dummies], so the rank is
        found numerically even when an unbalanced panel makes the dummies
        collinear beyond the usual one column.
        """
        F = np.zeros((self.n_obs, self.n_units + self.n_periods))
        rows = np.arange(self.n_obs)
        F[rows, self.unit_index] = 1.0
        F[rows, self.n_units + self.time_index] = 1.0
        F *= self.sqrt_w[:, None]
        Q, R, _ = scipy.linalg.qr(F, mode="economic", pivoting=True)
        d = np.abs(np.diag(R))
        rank = int((d > d[0] * 1e-10).sum())
        return np.ascontiguousarray(Q[:, :rank])

    def residualize(self, v: np.ndarray) -> np.ndarray:
        """Weighted residual of ``sqrt(w) * v`` on the unit and period dummies.

        ``v`` is (n_obs,) or (n_obs, m); the result is in the whitened (sqrt(w)
        scaled) space used by every estimator here.
        """
        sw = self.sqrt_w if v.ndim == 1 else self.sqrt_w[:, None]
        vw = v * sw
        Q = self.fe_basis
        return vw - Q @ (Q.T @ vw)

    @cached_property
    def cluster_matrix(self) -> scipy.sparse.csr_matrix:
        """Sparse (n_units x n_obs) 0/1 matrix summing rows within each unit."""
        return scipy.sparse.csr_matrix(
            (np.ones(self.n_obs), (self.unit_index, np.arange(self.n_obs))),
            shape=(self.n_units, self.n_obs))

    def with_first_treated(self, first_treated: np.ndarray) -> "Panel":
        """Copy of the panel with another first-treated vector (for placebos)."""
        new = Panel(self.y, self.unit_index, self.time_index, self.units, self.times,
                    np.asarray(first_treated, float), self.weights, self.n_dropped,
                    dict(self.columns))
        for name in ("fe_basis", "cluster_matrix"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name]
        return new

    def with_outcome(self, y: np.ndarray) -> "Panel":
        """Copy of the panel with another outcome vector (same rows).

        The fixed-effect basis and cluster matrix depend only on the rows and
        weights, so the copy reuses them (Monte Carlo loops stay cheap).
        """
        new = Panel(np.asarray(y, float), self.unit_index, self.time_index, self.units,
                    self.times, self.first_treated, self.weights, self.n_dropped,
                    dict(self.columns))
        for name in ("fe_basis", "cluster_matrix", "treatment"):
            if name in self.__dict__:
                new.__dict__[name] = self.__dict__[name]
        return new


def treatment_indicator(first_treated: np.ndarray, unit_index: np.ndarray,
                        time: np.ndarray) -> np.ndarray:
    """D = 1 for rows of treated units at or after their first treated period."""
    g = np.asarray(first_treated, float)[unit_index]
    return ((g > 0) & (time >= g)).astype(float)


def _row_ref(df: pd.DataFrame, pos: int, file: str | None) -> dict[str, Any]:
    """Where a bad cell is: the file's line number when reading a file, else the index."""
    if file is not None:
        return {"row": int(pos) + 2}  # line 1 is the CSV header
    return {"row": int(pos)}


def _numeric(df: pd.DataFrame, col: str, file: str | None, what: str) -> np.ndarray:
    """Column as float; blanks become NaN; any other non-number is a DataError."""
    raw = df[col]
    if pd.api.types.is_bool_dtype(raw):
        raise DataError(f"{what} must be numeric, found true/false values", file=file, column=col)
    if pd.api.types.is_numeric_dtype(raw):
        return raw.to_numpy(dtype=float, na_value=np.nan)
    text = raw.astype("string").str.strip()
    num = pd.to_numeric(text.where(text != ""), errors="coerce")
    bad = num.isna().to_numpy() & text.notna().to_numpy() & (text != "").fillna(False).to_numpy()
    if bad.any():
        pos = int(np.flatnonzero(bad)[0])
        raise DataError(f"{what} must be numeric, found '{text.iloc[pos]}'",
                        file=file, column=col, **_row_ref(df, pos, file))
    return num.to_numpy(dtype=float, na_value=np.nan)


def prepare_panel(df: pd.DataFrame, *, outcome: str, unit: str, time: str,
                  first_treated: str, weights: str | None = None,
                  file: str | None = None) -> Panel:
    """Validate a long panel and return a :class:`Panel` ready for estimation.

    Parameters
    ----------
    df : DataFrame
        One row per unit and period.
    outcome, unit, time, first_treated : str
        Column names. ``first_treated`` holds the first treated period of the
        row's unit; 0 or blank means never treated.
    weights : str, optional
        Column of positive analytic weights.
    file : str, optional
        Name of the file ``df`` came from; error messages then give its line numbers.

    Returns
    -------
    Panel

    Raises
    ------
    DataError
        A column is missing; the outcome, period, first-treated or weight
        column holds a non-number; a unit-period pair appears twice;
        ``first_treated`` varies within a unit; weights are missing or not
        positive; there is no treated or no never-treated unit; a treated unit
        is first treated at or before the panel's first period, or has no
        observed outcome before its first treated period (no pre-period).
    """
    needed = [("outcome", outcome), ("unit", unit), ("time", time),
              ("first-treated", first_treated)]
    if weights is not None:
        needed.append(("weights", weights))
    for role, col in needed:
        if col not in df.columns:
            raise DataError(f"{role} column not found (columns: {', '.join(map(str, df.columns))})",
                            file=file, column=col)
    if len(df) == 0:
        raise DataError("the panel has no rows", file=file)
    df = df.reset_index(drop=True)
    y = _numeric(df, outcome, file, "outcome")
    t = _numeric(df, time, file, "period")
    g = _numeric(df, first_treated, file, "first treated period")
    if np.isnan(t).any():
        pos = int(np.flatnonzero(np.isnan(t))[0])
        raise DataError("period is missing", file=file, column=time, **_row_ref(df, pos, file))
    if np.isinf(y).any():
        pos = int(np.flatnonzero(np.isinf(y))[0])
        raise DataError("outcome is infinite", file=file, column=outcome, **_row_ref(df, pos, file))
    g = np.where(np.isnan(g), 0.0, g)
    if (g < 0).any():
        pos = int(np.flatnonzero(g < 0)[0])
        raise DataError("first treated period is negative", file=file, column=first_treated,
                        **_row_ref(df, pos, file))
    units_raw = df[unit]
    if units_raw.isna().any():
        pos = int(np.flatnonzero(units_raw.isna().to_numpy())[0])
        raise DataError("unit is missing", file=file, column=unit, **_row_ref(df, pos, file))
    codes, units = pd.factorize(units_raw, sort=True)
    units = np.asarray(units)

    dup = pd.DataFrame({"u": codes, "t": t}).duplicated()
    if dup.any():
        pos = int(np.flatnonzero(dup.to_numpy())[0])
        raise DataError(f"unit {units[codes[pos]]} appears twice in period {t[pos]:g}",
                        file=file, column=time, **_row_ref(df, pos, file))

    # first_treated must be a property of the unit, not of the row
    gmin = np.full(len(units), np.inf)
    gmax = np.full(len(units), -np.inf)
    np.minimum.at(gmin, codes, g)
    np.maximum.at(gmax, codes, g)
    varying = np.flatnonzero(gmin != gmax)
    if varying.size:
        u = units[varying[0]]
        raise DataError(f"first treated period varies within unit {u}", file=file,
                        column=first_treated)
    g_unit = gmin

    w = None
    if weights is not None:
        w = _numeric(df, weights, file, "weight")
        bad = ~np.isfinite(w) | (w <= 0)
        if bad.any():
            pos = int(np.flatnonzero(bad)[0])
            raise DataError(f"weights must be positive numbers, found {w[pos]}", file=file,
                            column=weights, **_row_ref(df, pos, file))

    # Drop rows with a missing outcome, then look at what is left.
    keep = ~np.isnan(y)
    n_dropped = int((~keep).sum())
    if not keep.any():
        raise DataError("the outcome is missing in every row", file=file, column=outcome)
    t_all_first = float(t.min())
    y, t, codes = y[keep], t[keep], codes[keep]
    if w is not None:
        w = w[keep]
    # Units with no observed outcome at all carry no information: drop them.
    present = np.unique(codes)
    if present.size < units.size:
        remap = np.full(units.size, -1)
        remap[present] = np.arange(present.size)
        codes = remap[codes]
        units = units[present]
        g_unit = g_unit[present]
    times, t_index = np.unique(t, return_inverse=True)
    first_period = min(float(times[0]), t_all_first)

    # Treated after the last period = never treated within the window (R did).
    g_unit = np.where(g_unit > times[-1], 0.0, g_unit)
    treated = g_unit > 0
    early = np.flatnonzero(treated & (g_unit <= first_period))
    if early.size:
        u = units[early[0]]
        raise DataError(
            f"unit {u} is first treated in {g_unit[early[0]]:g}, at or before the panel's "
            f"first period {first_period:g}: it has no pre-period, so its effect cannot be "
            "estimated by difference-in-differences", file=file, column=first_treated,
            hint="start the panel earlier or drop the unit")
    if not treated.any():
        raise DataError("no treated units (every first treated period is 0 or blank)",
                        file=file, column=first_treated)
    if treated.all():
        raise DataError("no never-treated units to compare with (every unit has a "
                        "first treated period within the panel)", file=file, column=first_treated)
    # A treated unit whose outcome is only observed from its start has no pre-period either.
    obs_first = np.full(units.size, np.inf)
    np.minimum.at(obs_first, codes, times[t_index])
    nopre = np.flatnonzero(treated & (obs_first >= g_unit))
    if nopre.size:
        u = units[nopre[0]]
        raise DataError(
            f"treated unit {u} has no observed outcome before its first treated period "
            f"{g_unit[nopre[0]]:g}: no pre-period", file=file, column=outcome)
    return Panel(y=y, unit_index=codes.astype(np.intp), time_index=t_index.astype(np.intp),
                 units=units, times=times, first_treated=g_unit.astype(float), weights=w,
                 n_dropped=n_dropped,
                 columns={"outcome": outcome, "unit": unit, "time": time,
                          "first_treated": first_treated, "weights": weights})


def _as_panel(panel: Panel | pd.DataFrame, columns: dict[str, Any]) -> Panel:
    if isinstance(panel, Panel):
        if columns:
            raise TypeError("column names are only accepted with a DataFrame, not a Panel")
        return panel
    return prepare_panel(panel, **columns)


# --------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------

@dataclass(frozen=True)
class DiDResult:
    """One estimate with its interval and test of zero effect.

    Attributes
    ----------
    estimate, std_error, ci_low, ci_high, p_value : float
        Point estimate, its standard error, the (1 - alpha) interval and the
        two-sided p-value of zero effect.
    n_units, n_treated, n_obs : int
        Units (clusters), treated units and observations used.
    alpha : float
        Significance level of the interval.
    method : str
        What the interval and p-value are based on.
    df : float
        Degrees of freedom of the reference t distribution (inf for normal).
    """

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    n_units: int
    n_treated: int
    n_obs: int
    alpha: float = 0.05
    method: str = ""
    df: float = math.inf

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict, with numpy floats converted to Python floats."""
        return {k: (float(v) if isinstance(v, (float, np.floating)) else v)
                for k, v in self.__dict__.items()}


@dataclass(frozen=True)
class EventStudyResult:
    """Event-study coefficients and the joint pre-trend test.

    Attributes
    ----------
    coefficients : DataFrame
        One row per event time (reference -1 included with estimate 0 and NaN
        SE): ``event_time, estimate, std_error, ci_low, ci_high, p_value,
        n_obs`` (treated observations at that event time), ``binned``.
    pretrend_stat, pretrend_df1, pretrend_df2, pretrend_p : float
        Joint Wald test that all leads (event times <= -2) are zero:
        ``F = b' V^-1 b / q`` with the CR1 cluster covariance, referred to
        F(q, G - 1). NaN when there is no lead.
    n_units, n_treated, n_obs : int
    vcov : DataFrame
        CR1 cluster covariance of the event-time coefficients.
    """

    coefficients: pd.DataFrame
    pretrend_stat: float
    pretrend_df1: float
    pretrend_df2: float
    pretrend_p: float
    n_units: int
    n_treated: int
    n_obs: int
    vcov: pd.DataFrame
    alpha: float = 0.05


@dataclass(frozen=True)
class StaggeredResult:
    """Callaway and Sant'Anna group-time ATTs and their aggregations.

    Attributes
    ----------
    overall : DiDResult
        Simple aggregated ATT (R ``did`` ``aggte(type = "simple")``): post-treatment
        ATT(g,t) averaged with weights proportional to group size; normal interval
        from the analytic influence-function SE.
    group_time : DataFrame
        ``group, time, base_period, att, se, ci_low, ci_high, post, n_treated,
        n_control`` (units in the 2x2 comparison).
    event_time : DataFrame
        ``event_time, att, se, ci_low, ci_high`` (``aggte(type = "dynamic")``).
    event_overall : DiDResult
        Average of the event-time ATTs for event times >= 0 (R's dynamic overall).
    influence : ndarray (n_units, n_cells)
        Influence functions of ATT(g,t) (R's ``inffunc``), for bootstraps.
    influence_overall : ndarray (n_units,)
        Influence function of the simple aggregated ATT.
    """

    overall: DiDResult
    group_time: pd.DataFrame
    event_time: pd.DataFrame
    event_overall: DiDResult
    influence: np.ndarray
    influence_overall: np.ndarray


# --------------------------------------------------------------------------
# Fixed-effects regressions
# --------------------------------------------------------------------------

def cr1_factor(n_obs: int, n_clusters: int, k: int) -> float:
    """Stata/fixest CR1 small-sample factor ``G/(G-1) * (N-1)/(N-K)``."""
    return n_clusters / (n_clusters - 1) * (n_obs - 1) / (n_obs - k)


@dataclass(eq=False)
class FWLDesign:
    """A fixed-effects regression with the unit and period effects projected out.

    By Frisch-Waugh-Lovell, the coefficients, residuals and cluster scores of
    ``y ~ X + unit FE + period FE`` equal those of ``y~ ~ X~`` where ``~``
    means the weighted residual on the fixed-effect dummies. Inference
    routines (wild bootstrap, randomization) start from here.

    Attributes
    ----------
    panel : Panel
    X : ndarray (n_obs, k)
        Regressors of interest, whitened and residualized.
    y : ndarray (n_obs,)
        Outcome, whitened and residualized.
    names : list of str
    """

    panel: Panel
    X: np.ndarray
    y: np.ndarray
    names: list[str]

    @classmethod
    def build(cls, panel: Panel, X: np.ndarray, names: list[str]) -> "FWLDesign":
        """Whiten and residualize ``panel.y`` and the regressors ``X`` (one column per name)."""
        X = np.asarray(X, float).reshape(panel.n_obs, -1)
        return cls(panel, panel.residualize(X), panel.residualize(panel.y), list(names))

    @property
    def k(self) -> int:
        """Number of regressors of interest."""
        return self.X.shape[1]

    @property
    def n_clusters(self) -> int:
        """Number of clusters (the panel's units)."""
        return self.panel.n_units

    @property
    def df_k(self) -> int:
        """K of the CR1 factor: regressors + fixed effects not nested in units."""
        rank_fe = self.panel.fe_basis.shape[1]
        return self.k + rank_fe - self.panel.n_units + 1

    @property
    def ssc(self) -> float:
        """CR1 small-sample correction factor (see :func:`cr1_factor`)."""
        return cr1_factor(self.panel.n_obs, self.n_clusters, self.df_k)

    @cached_property
    def XtX_inv(self) -> np.ndarray:
        """Inverse of ``X'X`` (k x k)."""
        return np.linalg.inv(self.X.T @ self.X)

    @cached_property
    def beta(self) -> np.ndarray:
        """OLS coefficients of ``y`` on ``X`` (the fixed-effects estimates)."""
        return self.XtX_inv @ (self.X.T @ self.y)

    @cached_property
    def resid(self) -> np.ndarray:
        """Residuals ``y - X beta`` (whitened)."""
        return self.y - self.X @ self.beta

    @cached_property
    def vcov(self) -> np.ndarray:
        """CR1 cluster-robust covariance (clustered by unit)."""
        S = self.panel.cluster_matrix @ (self.X * self.resid[:, None])  # G x k scores
        H = self.XtX_inv
        return self.ssc * H @ (S.T @ S) @ H


def _dummy_fit(panel: Panel, X: np.ndarray):
    """Statsmodels WLS of y on X + unit dummies + period dummies; CR1 by unit.

    Returns (params of X, CR1 covariance of X, df_k). statsmodels gives the
    uncorrected cluster sandwich (``use_correction=False``); we multiply by the
    Stata/fixest factor ourselves because statsmodels' own correction would
    count the unit dummies in K.
    """
    import statsmodels.api as sm

    n, k = X.shape
    D_unit = np.zeros((n, panel.n_units))
    D_unit[np.arange(n), panel.unit_index] = 1.0
    D_time = np.zeros((n, panel.n_periods))
    D_time[np.arange(n), panel.time_index] = 1.0
    exog = np.column_stack([X, D_unit, D_time[:, 1:]])
    w = np.ones(n) if panel.weights is None else panel.weights
    rank_fe = panel.fe_basis.shape[1]
    # QR is exact and faster than statsmodels' default pinv when the dummies have
    # full column rank (always, unless an unbalanced panel is disconnected).
    method = "qr" if rank_fe == panel.n_units + panel.n_periods - 1 else "pinv"
    fit = sm.WLS(panel.y, exog, weights=w, hasconst=True).fit(
        method=method, cov_type="cluster",
        cov_kwds={"groups": panel.unit_index, "use_correction": False})
    df_k = k + rank_fe - panel.n_units + 1
    V = np.asarray(fit.cov_params())[:k, :k] * cr1_factor(n, panel.n_units, df_k)
    return np.asarray(fit.params)[:k], V, df_k


def _t_result(est: float, se: float, df: float, alpha: float, panel: Panel,
              method: str) -> DiDResult:
    dist = stats.t(df) if np.isfinite(df) else stats.norm()
    crit = dist.ppf(1 - alpha / 2)
    p = 2 * dist.sf(abs(est / se)) if se > 0 else float("nan")
    return DiDResult(estimate=float(est), std_error=float(se), ci_low=float(est - crit * se),
                     ci_high=float(est + crit * se), p_value=float(p), n_units=panel.n_units,
                     n_treated=panel.n_treated, n_obs=panel.n_obs, alpha=alpha,
                     method=method, df=float(df))


def twfe_did(panel: Panel | pd.DataFrame, *, alpha: float = 0.05, **columns: Any) -> DiDResult:
    """Two-way fixed effects difference-in-differences.

    Fits ``y_it = a_i + l_t + b D_it + e_it`` by WLS (statsmodels) with
    ``D_it = 1`` for treated units from their first treated period on, and
    clusters by unit (CR1, Stata/fixest small-sample factor; t with G - 1 df).

    Parameters
    ----------
    panel : Panel or DataFrame
        A :func:`prepare_panel` result, or a DataFrame with the column names
        passed as keyword arguments (``outcome``, ``unit``, ``time``,
        ``first_treated``, optional ``weights``).
    alpha : float
        1 - confidence level.

    Returns
    -------
    DiDResult
    """
    p = _as_panel(panel, columns)
    beta, V, _ = _dummy_fit(p, p.treatment[:, None])
    return _t_result(beta[0], math.sqrt(V[0, 0]), p.n_units - 1, alpha, p,
                     "cluster-robust (CR1, by unit), t(G-1)")


def event_time_matrix(panel: Panel, min_event: int | None = None,
                      max_event: int | None = None, reference: int = -1
                      ) -> tuple[np.ndarray, list[int], np.ndarray, np.ndarray]:
    """Event-time dummies of treated units (leads and lags), reference omitted.

    Event times below ``min_event`` (above ``max_event``) are binned into
    ``min_event`` (``max_event``). Returns (X, event_times, binned flags,
    treated observations per event time).
    """
    g = panel.first_treated[panel.unit_index]
    treated_row = g > 0
    e = np.where(treated_row, panel.time - g, np.nan)
    if min_event is not None:
        e = np.where(treated_row & (e < min_event), min_event, e)
    if max_event is not None:
        e = np.where(treated_row & (e > max_event), max_event, e)
    ev = sorted(int(v) for v in np.unique(e[treated_row]) if int(v) != reference)
    X = np.column_stack([(e == v).astype(float) for v in ev]) if ev else np.zeros((panel.n_obs, 0))
    binned = np.array([(min_event is not None and v == min_event) or
                       (max_event is not None and v == max_event) for v in ev], bool)
    counts = X.sum(axis=0)
    return X, ev, binned, counts


def event_study(panel: Panel | pd.DataFrame, *, min_event: int | None = None,
                max_event: int | None = None, reference: int = -1, alpha: float = 0.05,
                **columns: Any) -> EventStudyResult:
    """Event study: leads and lags of the first treated period, reference -1.

    Fits ``y_it = a_i + l_t + sum_e b_e 1[t - g_i = e] + e_it`` (treated units
    only carry event-time dummies; never-treated units identify the period
    effects), WLS via statsmodels, CR1 cluster covariance by unit.

    Parameters
    ----------
    panel : Panel or DataFrame
        As in :func:`twfe_did`.
    min_event, max_event : int, optional
        Bin event times below ``min_event`` / above ``max_event`` into the end
        point (default: no binning, every observed event time gets a dummy).
    reference : int
        Omitted event time (default -1, the last pre-treatment period).
    alpha : float
        1 - confidence level.

    Returns
    -------
    EventStudyResult
        Coefficients, and the joint Wald test that all leads (event times
        <= -2, i.e. before the reference) are zero: F(q, G - 1) with the CR1
        cluster covariance.
    """
    p = _as_panel(panel, columns)
    X, ev, binned, counts = event_time_matrix(p, min_event, max_event, reference)
    if not ev:
        raise DataError("no event time other than the reference period to estimate")
    beta, V, _ = _dummy_fit(p, X)
    se = np.sqrt(np.diag(V))
    G = p.n_units
    dist = stats.t(G - 1)
    crit = dist.ppf(1 - alpha / 2)
    with np.errstate(divide="ignore", invalid="ignore"):
        pv = 2 * dist.sf(np.abs(beta / se))
    coef = pd.DataFrame({"event_time": ev, "estimate": beta, "std_error": se,
                         "ci_low": beta - crit * se, "ci_high": beta + crit * se,
                         "p_value": pv, "n_obs": counts.astype(int), "binned": binned})
    ref_n = int(((p.first_treated[p.unit_index] > 0)
                 & (p.time - p.first_treated[p.unit_index] == reference)).sum())
    ref = pd.DataFrame({"event_time": [reference], "estimate": [0.0], "std_error": [np.nan],
                        "ci_low": [np.nan], "ci_high": [np.nan], "p_value": [np.nan],
                        "n_obs": [ref_n], "binned": [False]})
    coef = pd.concat([coef, ref]).sort_values("event_time").reset_index(drop=True)
    leads = [i for i, v in enumerate(ev) if v < reference]
    if leads:
        b = beta[leads]
        Vl = V[np.ix_(leads, leads)]
        q = len(leads)
        F = float(b @ np.linalg.solve(Vl, b)) / q
        pF = float(stats.f.sf(F, q, G - 1))
    else:
        F, q, pF = float("nan"), 0, float("nan")
    return EventStudyResult(coefficients=coef, pretrend_stat=F, pretrend_df1=float(q),
                            pretrend_df2=float(G - 1), pretrend_p=pF, n_units=p.n_units,
                            n_treated=p.n_treated, n_obs=p.n_obs,
                            vcov=pd.DataFrame(V, index=ev, columns=ev), alpha=alpha)


# --------------------------------------------------------------------------
# Callaway and Sant'Anna
# --------------------------------------------------------------------------

def _unit_weights(panel: Panel) -> np.ndarray:
    """Per-unit weights (must be constant within unit), normalised to mean 1."""
    if panel.weights is None:
        return np.ones(panel.n_units)
    wmin = np.full(panel.n_units, np.inf)
    wmax = np.full(panel.n_units, -np.inf)
    np.minimum.at(wmin, panel.unit_index, panel.weights)
    np.maximum.at(wmax, panel.unit_index, panel.weights)
    bad = np.flatnonzero(~np.isclose(wmin, wmax, rtol=1e-12, atol=0))
    if bad.size:
        raise DataError(f"weights vary within unit {panel.units[bad[0]]}; the staggered "
                        "estimator needs one weight per unit",
                        column=panel.columns.get("weights"))
    return wmin / wmin.mean()


def _wide(panel: Panel) -> np.ndarray:
    Y = np.full((panel.n_units, panel.n_periods), np.nan)
    Y[panel.unit_index, panel.time_index] = panel.y
    return Y


def _cs_cells(times: np.ndarray, cohorts: np.ndarray) -> list[tuple[float, int, int]]:
    """(g, t index, base index) of every ATT(g,t) R ``did`` estimates (varying base).

    For t from the second period on: before treatment (t < g) the base is the
    period just before t; from treatment on it is the last period before g.
    """
    cells = []
    for g in cohorts:
        last_pre = int(np.flatnonzero(times < g)[-1])
        for ti in range(1, len(times)):
            base = ti - 1 if times[ti] < g else last_pre
            cells.append((float(g), ti, base))
    return cells


def callaway_santanna(panel: Panel | pd.DataFrame, *, alpha: float = 0.05,
                      **columns: Any) -> StaggeredResult:
    """Group-time ATTs of Callaway and Sant'Anna with never-treated comparisons.

    Follows R ``did`` (``att_gt`` then ``aggte``) defaults: never-treated
    comparison group, unconditional parallel trends (no covariates), varying
    base period (pre-periods compare t with t-1, post-periods compare t with
    the last period before g), no anticipation, simple aggregation and
    event-time aggregation weighted by group size with the weights' own
    estimation accounted for in the influence function, and analytic
    influence-function standard errors (R's ``bstrap = FALSE``):
    ``se = sqrt(sum_i IF_i^2) / n`` with n the number of units.

    Unbalanced panels: R ``did`` with ``panel = TRUE`` balances the panel by
    dropping every unit with a missing period. Here each ATT(g,t) uses the
    units of cohort g and the never-treated units observed in both t and its
    base period; the influence function of a unit outside a cell is zero, and
    group sizes for aggregation count all units. On a balanced panel the two
    coincide exactly. A cell with no treated or no comparison unit is NaN and
    left out of the aggregations (R's ``na.rm = TRUE``).

    Parameters
    ----------
    panel : Panel or DataFrame
        As in :func:`twfe_did`; weights must be constant within unit.
    alpha : float
        1 - confidence level (normal intervals).

    Returns
    -------
    StaggeredResult
    """
    p = _as_panel(panel, columns)
    w = _unit_weights(p)
    Y = _wide(p)
    n = p.n_units
    gvec = p.first_treated
    never = gvec == 0
    cohorts = np.unique(gvec[gvec > 0])
    cells = _cs_cells(p.times, cohorts)
    m = len(cells)
    att = np.full(m, np.nan)
    IF = np.zeros((n, m))
    n_tr = np.zeros(m, int)
    n_co = np.zeros(m, int)
    for j, (g, ti, bi) in enumerate(cells):
        dy = Y[:, ti] - Y[:, bi]
        ok = np.isfinite(dy)
        tr = ok & (gvec == g)
        co = ok & never
        n_tr[j], n_co[j] = tr.sum(), co.sum()
        if n_tr[j] == 0 or n_co[j] == 0:
            continue
        s1, s0 = w[tr].sum(), w[co].sum()
        mu1 = (w[tr] * dy[tr]).sum() / s1
        mu0 = (w[co] * dy[co]).sum() / s0
        att[j] = mu1 - mu0
        # DRDID panel IF with an intercept only, rescaled by n / n_cell as in did
        IF[tr, j] = n * w[tr] * (dy[tr] - mu1) / s1
        IF[co, j] = -n * w[co] * (dy[co] - mu0) / s0
    se = np.sqrt((IF ** 2).sum(axis=0)) / n
    se = np.where(np.isnan(att), np.nan, se)
    z = stats.norm.ppf(1 - alpha / 2)
    groups = np.array([c[0] for c in cells])
    tvals = p.times[[c[1] for c in cells]]
    gt = pd.DataFrame({"group": groups, "time": tvals,
                       "base_period": p.times[[c[2] for c in cells]], "att": att, "se": se,
                       "ci_low": att - z * se, "ci_high": att + z * se,
                       "post": groups <= tvals, "n_treated": n_tr, "n_control": n_co})

    # Aggregation (R did's compute.aggte): pg = P(G = g) with unit weights.
    pg_cohort = {g: float(np.mean(w * (gvec == g))) for g in cohorts}
    pg = np.array([pg_cohort[g] for g in groups])
    valid = np.isfinite(att)

    def aggregate(keep: np.ndarray) -> tuple[float, np.ndarray]:
        idx = np.flatnonzero(keep & valid)
        s = pg[idx].sum()
        wagg = pg[idx] / s
        est = float(att[idx] @ wagg)
        # influence of estimating the weights (R's wif)
        ind = np.column_stack([w * (gvec == groups[k]) - pg[k] for k in idx])
        wif = ind / s - ind.sum(axis=1, keepdims=True) * (pg[idx] / s ** 2)[None, :]
        inf = IF[:, idx] @ wagg + wif @ att[idx]
        return est, inf

    def as_result(est: float, inf: np.ndarray, method: str) -> DiDResult:
        s = float(np.sqrt((inf ** 2).sum()) / n)
        return _t_result(est, s, math.inf, alpha, p, method)

    est_s, inf_s = aggregate(gt["post"].to_numpy())
    overall = as_result(est_s, inf_s, "analytic influence function (R did, bstrap=FALSE), normal")

    etimes = tvals - groups
    ev_rows, ev_infs = [], {}
    for e in np.unique(etimes[valid]):
        est_e, inf_e = aggregate(etimes == e)
        se_e = float(np.sqrt((inf_e ** 2).sum()) / n)
        ev_rows.append({"event_time": int(e) if float(e).is_integer() else float(e),
                        "att": est_e, "se": se_e,
                        "ci_low": est_e - z * se_e, "ci_high": est_e + z * se_e})
        ev_infs[e] = (est_e, inf_e)
    event = pd.DataFrame(ev_rows, columns=["event_time", "att", "se", "ci_low", "ci_high"])
    post_e = [e for e in ev_infs if e >= 0]
    est_d = float(np.mean([ev_infs[e][0] for e in post_e]))
    inf_d = np.mean(np.column_stack([ev_infs[e][1] for e in post_e]), axis=1)
    event_overall = as_result(est_d, inf_d, "analytic influence function, normal")
    return StaggeredResult(overall=overall, group_time=gt, event_time=event,
                           event_overall=event_overall, influence=IF, influence_overall=inf_s)


# --------------------------------------------------------------------------
# Simulated panels (for tests and benchmarks only; never for the report)
# --------------------------------------------------------------------------

def simulate_panel(n_units: int = 150, n_periods: int = 13, *,
                   cohorts: dict[int, int] | None = None, effect: Any = 0.0,
                   rho: float = 0.5, sigma: float = 1.0, unit_sd: float = 1.0,
                   trend_sd: float = 0.0, start: int = 2013, seed: int | None = 0,
                   missing: float = 0.0) -> pd.DataFrame:
    """Simulate a long panel for validating the estimators.

    ``y_it = unit_i + 0.1 (t - start) + trend_i (t - start) + tau_it + u_it``
    with ``u_it`` AR(1) (coefficient ``rho``, stationary, sd ``sigma``).

    Parameters
    ----------
    n_units, n_periods : int
    cohorts : dict {first treated period: number of units}
        Default ``{start + 6: 10}``; the remaining units are never treated.
    effect : float or callable
        Treatment effect; a callable gets ``(g, t)`` arrays (cohort, period) and
        returns the effect of each treated row (for heterogeneous effects).
    rho, sigma, unit_sd, trend_sd : float
        AR(1) coefficient, innovation scale, sd of unit effects and of unit trends.
    start : int
        First period.
    seed : int
    missing : float
        Share of outcome values set to missing at random (unbalanced panel).

    Returns
    -------
    DataFrame with columns ``unit, year, y, first_treated, effect``.
    """
    rng = np.random.default_rng(seed)
    cohorts = {start + 6: 10} if cohorts is None else cohorts
    g = np.zeros(n_units)
    pos = 0
    for gval, cnt in cohorts.items():
        g[pos:pos + cnt] = gval
        pos += cnt
    g = rng.permutation(g)
    years = start + np.arange(n_periods)
    u = np.empty((n_units, n_periods))
    u[:, 0] = rng.normal(0, sigma / math.sqrt(1 - rho ** 2), n_units)
    eps = rng.normal(0, sigma, (n_units, n_periods))
    for t in range(1, n_periods):
        u[:, t] = rho * u[:, t - 1] + eps[:, t]
    alpha_i = rng.normal(0, unit_sd, n_units)[:, None]
    trend = rng.normal(0, trend_sd, n_units)[:, None] if trend_sd else 0.0
    T = years[None, :] - start
    G = np.repeat(g[:, None], n_periods, axis=1)
    Yr = np.repeat(years[None, :], n_units, axis=0)
    treated = (G > 0) & (Yr >= G)
    tau = np.zeros_like(u)
    if callable(effect):
        tau[treated] = effect(G[treated], Yr[treated])
    else:
        tau[treated] = float(effect)
    y = alpha_i + 0.1 * T + trend * T + tau + u
    df = pd.DataFrame({"unit": np.repeat([f"U{i:03d}" for i in range(n_units)], n_periods),
                       "year": Yr.ravel(), "y": y.ravel(), "first_treated": G.ravel(),
                       "effect": tau.ravel()})
    if missing:
        drop = rng.random(len(df)) < missing
        df.loc[drop, "y"] = np.nan
    return df
