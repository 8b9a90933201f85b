"""Child-level difference-in-differences: a linear probability model with LA and year effects.

:func:`child_lpm_did` fits, on one row per child (or child-event),

    y_i = a_LA(i) + l_year(i) + b * D_i + e_i,     D_i = 1 if LA(i) is treated and year(i) >= first treated year,

by least squares (optionally weighted), and clusters by LA with the CR1
covariance of :mod:`analysis.methods.estimation`: factor ``G/(G-1) * (N-1)/(N-K)`` with
G the number of LAs, N the number of child rows and K = 1 (the treatment
dummy) + the year effects not nested in LAs + 1 for the intercept (the rank of
the fixed-effect dummies minus G, plus one), the convention of Stata
``reghdfe`` and R ``fixest``; tests and intervals use t with G - 1 degrees of
freedom. The published evaluation (WWCSC ``R code/07_main_regressions.R``) fitted
a weighted LPM of the outcome on a pilot-group dummy, a post-period dummy, their
product and year dummies, with child and LA covariates and CEM weights, SEs
clustered by LA. LA fixed effects here absorb the pilot-group dummy and every
other fixed difference between LAs; child covariates are not used.

How it is computed, and why the LA-year aggregate gives the same estimate
-------------------------------------------------------------------------
Every regressor -- the treatment dummy and the LA and year dummies -- is
constant within an LA-year cell c. The normal equations of the child-level
regression therefore involve the data only through the cell sums
``W_c = sum_i w_i`` and ``W_c * ybar_c = sum_i w_i y_i``: they are exactly the
normal equations of a weighted regression of the cell means ``ybar_c`` on the
same regressors with weights ``W_c`` (the number of children when unweighted).
The two regressions have the same coefficient, and their cluster scores are
equal too: for LA g, ``sum_{i in g} w_i x~_i e_i = sum_{c in g} x~_c W_c
(ybar_c - fit_c)``, because the residualized regressor ``x~`` is constant in a
cell and the child residuals of a cell sum to ``W_c`` times the cell-mean
residual. Only the small-sample factor differs (N children against N cells).

So :func:`child_lpm_did` aggregates to cells, runs the LA-level machinery of
:mod:`analysis.methods.estimation` (exact projection of the fixed effects, which is
needed when cells are missing) on the cell means with weights ``W_c``, and
rescales the covariance to the child-level N: exact, and fast on millions of
rows. It follows that :func:`analysis.methods.estimation.twfe_did` on the LA-year
shares of a 0/1 outcome with ``weights`` = number of children in the LA-year
gives the child-level point estimate, for a balanced or an unbalanced panel
of cells; unweighted, it gives it only when every cell has the same number of
children. The tests check both against ``pyfixest``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd
from scipy import stats

from analysis.core.errors import DataError
from analysis.methods.estimation import FWLDesign, cr1_factor, prepare_panel

__all__ = ["ChildDiDResult", "child_lpm_did", "child_lpm_from_counts", "cell_means"]


@dataclass(frozen=True)
class ChildDiDResult:
    """Child-level DiD estimate (a difference in probability, 0-1 scale) and its inference.

    ``ci`` is the (1 - alpha) interval from t(G - 1); ``p`` the two-sided
    p-value of zero effect; ``n_children`` the child rows used (outcome not
    missing), ``n_las`` the LAs (clusters), ``n_treated_las`` the treated
    ones, ``n_cells`` the LA-years.
    """

    estimate: float
    se: float
    ci: tuple[float, float]
    p: float
    n_children: int
    n_las: int
    n_treated_las: int
    n_cells: int
    df: float
    alpha: float = 0.05
    method: str = "LPM, LA and year fixed effects, CR1 clustered by LA, t(G-1)"

    @property
    def ci_low(self) -> float:
        """Lower end of :attr:`ci`."""
        return self.ci[0]

    @property
    def ci_high(self) -> float:
        """Upper end of :attr:`ci`."""
        return self.ci[1]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a flat dict, with ``ci`` replaced by ``ci_low`` and ``ci_high``."""
        d = dict(self.__dict__)
        d["ci_low"], d["ci_high"] = self.ci
        del d["ci"]
        return d


def cell_means(df: pd.DataFrame, outcome: str, la_col: str, year_col: str,
               first_treated_col: str, weights: str | None = None) -> pd.DataFrame:
    """Collapse child rows to LA-year cells.

    Columns ``la, year, first_treated, y`` (weighted mean), ``w`` (sum of
    weights), ``n`` (child rows). Rows with a missing outcome are dropped first.
    """
    cols = [outcome, la_col, year_col, first_treated_col] + ([weights] if weights else [])
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise DataError(f"child-level data lacks column(s) {', '.join(missing)} "
                        f"(has: {', '.join(map(str, df.columns))})")
    d = df[cols].copy()
    y = pd.to_numeric(d[outcome], errors="coerce")
    if (y.isna() & d[outcome].notna()).any():
        raise DataError("outcome must be numeric (0/1)", column=outcome)
    d = d[y.notna()].assign(_y=y[y.notna()].astype(float))
    if not len(d):
        raise DataError("the outcome is missing in every row", column=outcome)
    if weights:
        w = pd.to_numeric(d[weights], errors="coerce")
        if w.isna().any() or (w <= 0).any():
            raise DataError("weights must be positive numbers", column=weights)
        d["_w"] = w.astype(float)
    else:
        d["_w"] = 1.0
    d["_g"] = pd.to_numeric(d[first_treated_col], errors="coerce").fillna(0.0)
    if d.groupby(la_col)["_g"].nunique().gt(1).any():
        la = d.groupby(la_col)["_g"].nunique().gt(1).idxmax()
        raise DataError(f"first treated year varies within LA {la}", column=first_treated_col)
    d["_wy"] = d["_w"] * d["_y"]
    c = d.groupby([la_col, year_col], sort=True).agg(
        first_treated=("_g", "first"), w=("_w", "sum"), wy=("_wy", "sum"), n=("_y", "size"))
    c["y"] = c["wy"] / c["w"]
    c = c.reset_index().rename(columns={la_col: "la", year_col: "year"})
    return c[["la", "year", "first_treated", "y", "w", "n"]]


def child_lpm_did(df: pd.DataFrame, outcome: str, la_col: str, year_col: str,
                  first_treated_col: str, weights: str | None = None, *,
                  alpha: float = 0.05) -> ChildDiDResult:
    """Linear probability DiD on child-level rows; see the module docstring.

    Parameters
    ----------
    df : DataFrame
        One row per child (or child-event) with a 0/1 ``outcome``, the LA, the
        reporting year and the LA's first treated year (0 or blank: never treated).
    weights : str, optional
        Column of positive analytic weights per child row.

    Raises
    ------
    DataError
        Missing columns, non-numeric outcome, first treated year varying within
        an LA, and every design :func:`analysis.methods.estimation.prepare_panel`
        refuses (no treated or no untreated LA, a treated LA without a pre-period).
    """
    cells = cell_means(df, outcome, la_col, year_col, first_treated_col, weights)
    return _fit_cells(cells, alpha)


def child_lpm_from_counts(counts: pd.DataFrame, *, numerator: str = "numerator",
                          denominator: str = "denominator", la_col: str = "la_code",
                          year_col: str = "year", first_treated_col: str = "first_treated",
                          weights: str | None = None, scale: float = 1.0,
                          alpha: float = 0.05) -> ChildDiDResult:
    """The child-level LPM of :func:`child_lpm_did` from LA-year counts of a 0/1 outcome.

    Each LA-year row says that ``numerator`` of its ``denominator`` child rows
    have the outcome. By the argument of the module docstring the child-level
    estimate, its clustered standard error (with the child-level small-sample
    factor, N = the sum of the denominators) and its interval depend on the
    records only through these counts, so this gives exactly what
    :func:`child_lpm_did` gives on the child rows, without them.

    Parameters
    ----------
    counts : DataFrame
        One row per LA-year: the counts, the LA, the year, the LA's first
        treated year (0 or blank: never treated) and optionally ``weights``,
        an analytic weight for every child of the LA-year (e.g. the LA's
        matching weight).
    scale : float
        Multiplies the outcome: 100 gives the estimate in percentage points.

    Raises
    ------
    DataError
        Missing columns, negative counts or a numerator above its denominator,
        non-positive weights, and the designs :func:`analysis.methods.estimation.prepare_panel`
        refuses.
    """
    cols = [numerator, denominator, la_col, year_col, first_treated_col] + ([weights] if weights else [])
    missing = [c for c in cols if c not in counts.columns]
    if missing:
        raise DataError(f"counts lack column(s) {', '.join(missing)} "
                        f"(has: {', '.join(map(str, counts.columns))})")
    num = pd.to_numeric(counts[numerator], errors="coerce")
    den = pd.to_numeric(counts[denominator], errors="coerce")
    keep = den.notna() & num.notna() & (den > 0)
    bad = keep & ((num < 0) | (num > den))
    if bad.any():
        raise DataError(f"numerator outside 0..denominator ({num[bad].iloc[0]:g} of "
                        f"{den[bad].iloc[0]:g})", column=numerator, row=int(bad.idxmax()))
    d = counts.loc[keep]
    w = pd.Series(1.0, index=d.index)
    if weights:
        w = pd.to_numeric(d[weights], errors="coerce")
        if w.isna().any() or (w <= 0).any():
            raise DataError("weights must be positive numbers", column=weights)
    cells = pd.DataFrame({
        "la": d[la_col].to_numpy(), "year": d[year_col].to_numpy(),
        "first_treated": pd.to_numeric(d[first_treated_col], errors="coerce").fillna(0.0).to_numpy(),
        "y": (scale * num[keep] / den[keep]).to_numpy(dtype=float),
        "w": (den[keep] * w).to_numpy(dtype=float),
        "n": den[keep].to_numpy(dtype=float)})
    if not len(cells):
        raise DataError("no LA-year with a positive denominator", column=denominator)
    return _fit_cells(cells, alpha)


def _fit_cells(cells: pd.DataFrame, alpha: float) -> ChildDiDResult:
    """Weighted cell-mean regression with the child-level CR1 factor (module docstring)."""
    panel = prepare_panel(cells, outcome="y", unit="la", time="year",
                          first_treated="first_treated", weights="w")
    design = FWLDesign.build(panel, panel.treatment[:, None], ["treated_post"])
    n = int(round(float(cells["n"].sum())))
    g = panel.n_units
    ssc_child = cr1_factor(n, g, design.df_k)
    V = design.vcov / design.ssc * ssc_child
    est = float(design.beta[0])
    se = math.sqrt(float(V[0, 0]))
    dof = g - 1
    crit = stats.t(dof).ppf(1 - alpha / 2)
    p = float(2 * stats.t(dof).sf(abs(est / se))) if se > 0 else float("nan")
    return ChildDiDResult(estimate=est, se=se, ci=(float(est - crit * se), float(est + crit * se)), p=p,
                          n_children=n, n_las=g, n_treated_las=panel.n_treated,
                          n_cells=panel.n_obs, df=float(dof), alpha=alpha)
