"""Inference that stays honest with few treated units.

* :func:`wild_cluster_bootstrap` -- wild cluster bootstrap of the TWFE DiD
  coefficient, restricted by the null (WCR; Cameron, Gelbach and Miller 2008;
  Roodman, MacKinnon, Nielsen and Webb 2019, "fast and wild"), Rademacher or
  Webb weights by unit, p-value and interval by test inversion.
* :func:`wild_bootstrap_pretrend` -- the same bootstrap for the event study's
  joint Wald test that all leads are zero.
* :func:`randomization_inference` -- re-assigns the observed first-treated
  periods among the eligible units (placebo assignments), exact enumeration
  when the number of distinct assignments is small, interval by inverting the
  test of a constant additive effect.
* :func:`staggered_randomization_inference` and :func:`multiplier_bootstrap`
  -- the same randomization test for the Callaway and Sant'Anna simple ATT, and
  R ``did``'s multiplier bootstrap of its influence function.

Everything is vectorised: the pieces that depend on the data are computed once
per cluster (unit); every bootstrap draw or placebo assignment is then a
column of a matrix product. No model is refitted per draw. All random draws
come from ``numpy.random.default_rng(seed)``, so results are reproducible; with
the default seed they are deterministic.

Conventions
-----------
Wild bootstrap: the bootstrap DGP is the restricted fit (null imposed) plus
restricted residuals times a unit-level weight; each draw's t statistic uses
the CR1 cluster covariance of :mod:`analysis.methods.estimation`, as the observed t
does (the common small-sample factor cancels from the p-value). The p-value is
the symmetric one (boottest's default): the share of draws with
``|t*| >= |t|``; a draw within 1e-10 (relative) of ``|t|`` counts as at least
as extreme, so the identity draw of an enumeration always counts. With
Rademacher weights and ``2**G <= draws`` all ``2**G`` sign vectors are
enumerated and the p-value is exact and seed-free. The interval is the set of
null values not rejected at level alpha, its bounds found by bisection on the
bootstrap p-value with the same draws (as boottest does); it can be infinite
when too few draws are possible.

Randomization inference: the statistic is the DiD estimate itself
(``statistic="estimate"``, primary) or its cluster-robust t statistic
(``statistic="t"``). The p-value is two-sided: the share of assignments whose
``|statistic|`` is at least the observed one. Under exact enumeration the
observed assignment is one of the enumerated ones; with random assignments the
observed one is added, ``p = (1 + #{|T*| >= |T|}) / (draws + 1)``.
"""
from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from analysis.core.errors import DataError
from analysis.methods.estimation import (
    FWLDesign,
    Panel,
    StaggeredResult,
    _as_panel,
    _cs_cells,
    _unit_weights,
    _wide,
    callaway_santanna,
    event_time_matrix,
)

__all__ = [
    "DEFAULT_SEED", "BootstrapResult", "WaldBootstrapResult", "RandomizationResult",
    "bootstrap_weights", "WildClusterBootstrap", "wild_cluster_bootstrap",
    "wild_bootstrap_pretrend", "wild_bootstrap_null", "wild_bootstrap_event_study", "WildBootstrapNull",
    "randomization_inference", "count_assignments",
    "enumerate_assignments", "staggered_randomization_inference", "multiplier_bootstrap",
]

#: Seed used when none is given, so that every result is reproducible.
DEFAULT_SEED = 20210129

_TIE = 1e-10          # relative tolerance for "at least as extreme"
_CHUNK = 2000         # draws per block, to bound memory (G x chunk matrices)
_WEBB = np.array([-math.sqrt(1.5), -1.0, -math.sqrt(0.5), math.sqrt(0.5), 1.0, math.sqrt(1.5)])


@dataclass(frozen=True)
class BootstrapResult:
    """Wild cluster bootstrap (WCR) test of one coefficient.

    Attributes
    ----------
    estimate, t_stat : float
        The coefficient and its CR1 t statistic against ``null``.
    p_value : float
        Symmetric bootstrap p-value of ``coefficient = null``.
    ci_low, ci_high : float
        (1 - alpha) interval by test inversion (may be infinite).
    draws : int
        Bootstrap draws used (``2**G`` when enumerated).
    enumerated : bool
        True when every Rademacher sign vector was used.
    weight_type : str
    null, alpha : float
    seed : int or None
    """

    estimate: float
    t_stat: float
    p_value: float
    ci_low: float
    ci_high: float
    draws: int
    enumerated: bool
    weight_type: str
    null: float = 0.0
    alpha: float = 0.05
    seed: int | None = None
    method: str = "wild cluster bootstrap, restricted (WCR), by unit"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return dict(self.__dict__)


@dataclass(frozen=True)
class WaldBootstrapResult:
    """Wild cluster bootstrap (WCR) of a joint Wald test of q restrictions."""

    stat: float
    q: int
    p_value: float
    draws: int
    enumerated: bool
    weight_type: str
    seed: int | None = None


@dataclass(frozen=True)
class RandomizationResult:
    """Randomization (placebo assignment) inference.

    Attributes
    ----------
    estimate : float
        Observed estimate.
    p_value : float
        Two-sided randomization p-value of no effect.
    ci_low, ci_high : float
        (1 - alpha) interval: the constant additive effects not rejected.
    draws : int
        Assignments compared (all of them when enumerated).
    n_assignments : int
        Number of distinct assignments of the first-treated periods to the
        eligible units.
    enumerated : bool
    statistic : str
        ``"estimate"`` or ``"t"``.
    """

    estimate: float
    p_value: float
    ci_low: float
    ci_high: float
    draws: int
    n_assignments: int
    enumerated: bool
    statistic: str
    alpha: float = 0.05
    seed: int | None = None
    method: str = "randomization inference (re-assigned first-treated periods)"

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict."""
        return dict(self.__dict__)


# --------------------------------------------------------------------------
# Wild cluster bootstrap
# --------------------------------------------------------------------------

def bootstrap_weights(n_clusters: int, draws: int, weight_type: str = "rademacher",
                      seed: int | None = DEFAULT_SEED) -> tuple[np.ndarray, bool]:
    """Unit-level bootstrap weights, (n_clusters x B), and whether enumerated.

    Rademacher weights are enumerated (all ``2**G`` sign vectors, B = 2**G)
    when ``2**G <= draws``; otherwise, and for Webb's six-point weights, B =
    ``draws`` columns are drawn from ``default_rng(seed)``.
    """
    if draws < 1:
        raise ValueError("draws must be positive")
    wt = weight_type.lower()
    if wt == "rademacher":
        if n_clusters < 63 and 2 ** n_clusters <= draws:
            codes = np.arange(2 ** n_clusters, dtype=np.int64)
            bits = (codes[None, :] >> np.arange(n_clusters, dtype=np.int64)[:, None]) & 1
            return 1.0 - 2.0 * bits, True  # column 0 is the identity draw
        rng = np.random.default_rng(seed)
        return rng.integers(0, 2, size=(n_clusters, draws)) * 2.0 - 1.0, False
    if wt == "webb":
        rng = np.random.default_rng(seed)
        return _WEBB[rng.integers(0, 6, size=(n_clusters, draws))], False
    raise ValueError(f"unknown weight type '{weight_type}' (rademacher or webb)")


class WildClusterBootstrap:
    """Restricted wild cluster bootstrap of ``R beta = r`` in a fixed-effects regression.

    Implements the WCR bootstrap exactly as a per-draw refit of the full
    dummy-variable model would (``y* = X b~ + F g~ + u~ * v``, refit, CR1
    t or Wald statistic), without refitting: with X~ the regressors after
    projecting out the fixed effects F (basis Q), the bootstrap cluster
    scores are linear in the draw, ``S*_g = K_g v``, where

    ``K_g v = a_g v_g - (X~_g' Q_g) (c' v) - (X~_g' X~_g) H (a' v)``,

    ``a_h = X~_h' u~_h``, ``c_h = Q_h' u~_h`` and ``H = (X~'X~)^-1``. The
    G x G matrices (one per restriction) are built once; all draws are then
    one matrix product. For a single restriction everything is affine in
    ``r``, so the p-value at any null costs O(draws) (used for test inversion).

    Parameters
    ----------
    design : FWLDesign
    R : array (q, k) or (k,)
        Restriction matrix.
    draws, weight_type, seed
        See :func:`bootstrap_weights`.
    """

    def __init__(self, design: FWLDesign, R: np.ndarray, *, draws: int = 9999,
                 weight_type: str = "rademacher", seed: int | None = DEFAULT_SEED) -> None:
        self.design = design
        self.R = np.atleast_2d(np.asarray(R, float))
        self.q = self.R.shape[0]
        self.V, self.enumerated = bootstrap_weights(design.n_clusters, draws, weight_type, seed)
        self.B = self.V.shape[1]
        self.weight_type = weight_type
        X, Q = design.X, design.panel.fe_basis
        Cm = design.panel.cluster_matrix
        k, r_fe = X.shape[1], Q.shape[1]
        H = design.XtX_inv
        self._rho = H @ self.R.T                                  # k x q
        XQ = np.asarray(Cm @ (X[:, :, None] * Q[:, None, :]).reshape(len(X), k * r_fe))
        XQ = XQ.reshape(-1, k, r_fe)                              # G x k x r
        XX = np.asarray(Cm @ (X[:, :, None] * X[:, None, :]).reshape(len(X), k * k))
        XX = XX.reshape(-1, k, k)                                 # G x k x k
        self._Phi = np.einsum("kq,gkr->qgr", self._rho, XQ)       # q x G x r
        self._Psi = np.einsum("kq,gkl,lm->qgm", self._rho, XX, H)  # q x G x k
        self._RHR_inv = np.linalg.inv(self.R @ H @ self.R.T)
        self._Rb = self.R @ design.beta
        self._RVR = self.R @ design.vcov @ self.R.T
        self._affine: tuple | None = None

    # pieces at a given null value r (q-vector)
    def _K(self, r: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        d = self.design
        beta_r = d.beta - d.XtX_inv @ self.R.T @ self._RHR_inv @ (self._Rb - r)
        u = d.y - d.X @ beta_r                                    # restricted residuals
        Cm = d.panel.cluster_matrix
        a = np.asarray(Cm @ (d.X * u[:, None]))                   # G x k
        c = np.asarray(Cm @ (d.panel.fe_basis * u[:, None]))      # G x r
        alpha = a @ self._rho                                     # G x q
        K = (np.einsum("gq,gh->qgh", alpha, np.eye(len(a)))
             - np.einsum("qgr,hr->qgh", self._Phi, c)
             - np.einsum("qgk,hk->qgh", self._Psi, a))
        return K, alpha

    def wald_stat(self, r: np.ndarray | float = 0.0) -> float:
        """Observed Wald statistic (t squared when q = 1) with the CR1 covariance."""
        dev = self._Rb - np.broadcast_to(np.asarray(r, float), (self.q,))
        return float(dev @ np.linalg.solve(self._RVR, dev))

    def pvalue(self, r: np.ndarray | float = 0.0) -> float:
        """Bootstrap p-value of ``R beta = r``: share of draws with Wald* >= Wald."""
        if self.q == 1:
            return float(self.pvalues([float(np.ravel(r)[0])])[0])
        r = np.broadcast_to(np.asarray(r, float), (self.q,))
        K, alpha = self._K(r)
        ssc = self.design.ssc
        obs = self.wald_stat(r)
        count = 0
        for s in range(0, self.B, _CHUNK):
            v = self.V[:, s:s + _CHUNK]
            num = alpha.T @ v                                     # q x b
            W = K @ v                                             # q x G x b
            M = ssc * np.einsum("qgb,pgb->bqp", W, W)
            with np.errstate(invalid="ignore"):
                wald = np.einsum("qb,bq->b", num, np.linalg.solve(M, num.T[:, :, None])[:, :, 0])
            count += int((wald >= obs * (1 - _TIE)).sum())
        return count / self.B

    def _pieces(self) -> tuple:
        """Per-draw numerator and squared-score sums as affine/quadratic in r (q = 1)."""
        if self._affine is None:
            K0, al0 = self._K(np.zeros(1))
            K1, al1 = self._K(np.ones(1))
            K0, Kd = K0[0], K1[0] - K0[0]
            al0, ald = al0[:, 0], al1[:, 0] - al0[:, 0]
            n0 = al0 @ self.V
            nd = ald @ self.V
            A = np.empty(self.B)
            Bq = np.empty(self.B)
            C = np.empty(self.B)
            for s in range(0, self.B, _CHUNK):
                v = self.V[:, s:s + _CHUNK]
                W0, Wd = K0 @ v, Kd @ v
                A[s:s + _CHUNK] = (W0 * W0).sum(0)
                Bq[s:s + _CHUNK] = (W0 * Wd).sum(0)
                C[s:s + _CHUNK] = (Wd * Wd).sum(0)
            self._affine = (n0, nd, A, Bq, C)
        return self._affine

    def t_boot(self, r: float) -> np.ndarray:
        """Bootstrap t statistics at null value r (q = 1)."""
        n0, nd, A, Bq, C = self._pieces()
        var = self.design.ssc * np.maximum(A + 2 * r * Bq + r * r * C, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return (n0 + r * nd) / np.sqrt(var)

    def t_stat(self, r: float) -> float:
        """Observed t statistic of ``R beta = r`` with the CR1 standard error (q = 1)."""
        return float((self._Rb[0] - r) / math.sqrt(self._RVR[0, 0]))

    def pvalues(self, rs: Sequence[float] | np.ndarray) -> np.ndarray:
        """Bootstrap p-values of ``R beta = r`` at many null values at once (q = 1).

        One implementation with :meth:`BootstrapBatch.pvalues` (this bootstrap is a batch
        of one outcome), so :meth:`pvalue`, the interval and the simulated power agree
        to the last digit.
        """
        if self.q != 1:
            raise ValueError("pvalues needs a single restriction")
        n0, nd, A, Bq, C = self._pieces()
        one = BootstrapBatch(n0=n0[None, :], nd=nd, A=A[None, :], Bq=Bq[None, :], C=C,
                             estimate=np.array([self._Rb[0]]),
                             std_error=np.array([math.sqrt(self._RVR[0, 0])]), ssc=self.design.ssc)
        return one.pvalues(rs)[0]

    def many_outcomes(self, Y: np.ndarray) -> "BootstrapBatch":
        """The bootstrap's pieces for many outcome vectors at once (one restriction, ``beta = r``).

        Everything in :meth:`_pieces` is linear in the outcome, and the step from one
        null value to the next does not depend on it, so many outcomes (simulated
        panels, :mod:`analysis.methods.mde`) cost one batched matrix product instead of
        one bootstrap each. The same draws serve every outcome.

        Parameters
        ----------
        Y : ndarray (m, n_obs)
            One outcome per row, in the panel's row order (not whitened).

        Returns
        -------
        BootstrapBatch
        """
        d = self.design
        if self.q != 1 or d.k != 1 or float(self.R[0, 0]) != 1.0:
            raise ValueError("many_outcomes needs one regressor and the restriction beta = r")
        p = d.panel
        Yt = p.residualize(np.asarray(Y, float).T)               # n x m, whitened, residualized
        X, H, Cm = d.X, float(d.XtX_inv[0, 0]), p.cluster_matrix
        G, n = d.n_clusters, p.n_obs
        est = H * (X[:, 0] @ Yt)
        S = np.asarray(Cm @ (X * (Yt - X * est[None, :])))        # G x m cluster scores
        se = np.sqrt(d.ssc * H * H * (S * S).sum(0))
        PQ = self._Phi[0] @ p.fe_basis.T                           # G x n
        psi = self._Psi[0, :, 0]
        diag = np.arange(G)
        # slots[g, l]: the l-th row of cluster g (ascending), -1 past the cluster's end
        unit = np.asarray(p.unit_index)
        rows = np.argsort(unit, kind="stable")
        sizes = np.bincount(unit, minlength=G)
        slots = np.full((G, int(sizes.max(initial=0))), -1)
        slots[unit[rows], np.arange(n) - np.repeat(np.cumsum(sizes) - sizes, sizes)] = rows

        def k_matrices(U: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            # K of _K for restricted residuals U (n x m): (m, G, G), and alpha (G, m).
            # K[i, h, g] = -sum over the rows r of cluster g of PQ[h, r] U[r, i] (minus the
            # psi term): summed slot by slot, in the rows' order, so the sums are those of
            # the sparse cluster sum (Cm) to the last bit, without an (m G x n) product.
            m = U.shape[1]
            a = np.asarray(Cm @ (X * U))
            alpha = a * self._rho[0, 0]
            S = np.zeros((m, G, G))
            for slot in slots.T:
                g = np.flatnonzero(slot >= 0)
                r = slot[g]
                S[:, :, g] += PQ[None, :, r] * U[r, :].T[:, None, :]
            K = -S - psi[None, :, None] * a.T[:, None, :]
            K[:, diag, diag] += alpha.T
            return K, alpha

        Kd, ald = k_matrices(-X)                                   # a unit step of the null value
        Wd = Kd[0] @ self.V
        nd, C = ald[:, 0] @ self.V, (Wd * Wd).sum(0)
        m_all = Yt.shape[1]
        n0, A, Bq = (np.empty((m_all, self.B)) for _ in range(3))
        step = max(1, int(4e6 // max(G * max(n, self.B), 1)))
        for s in range(0, m_all, step):
            K0, al0 = k_matrices(Yt[:, s:s + step])
            W0 = (K0.reshape(-1, G) @ self.V).reshape(-1, G, self.B)  # m x G x B, one product
            n0[s:s + step] = al0.T @ self.V
            A[s:s + step] = np.einsum("mgb,mgb->mb", W0, W0)
            Bq[s:s + step] = np.einsum("mgb,gb->mb", W0, Wd)
        return BootstrapBatch(n0=n0, nd=nd, A=A, Bq=Bq, C=C, estimate=est, std_error=se, ssc=d.ssc)

    def with_outcome(self, y: np.ndarray) -> "WildClusterBootstrap":
        """The same bootstrap (regressors, restriction, draws) on another outcome vector.

        What depends only on the regressors, the fixed effects and the draws is
        reused. One outcome at a time: the reference :meth:`many_outcomes` (the batched
        path of :mod:`analysis.methods.mde`) is checked against in the tests.

        Parameters
        ----------
        y : ndarray (n_obs,)
            The new outcome, in the panel's row order (not whitened).
        """
        d = self.design
        panel = d.panel.with_outcome(y)
        new = copy.copy(self)
        new.design = FWLDesign(panel, d.X, panel.residualize(panel.y), d.names)
        new._Rb = new.R @ new.design.beta
        new._RVR = new.R @ new.design.vcov @ new.R.T
        new._affine = None
        return new

    def confint(self, alpha: float = 0.05, *, tol: float = 1e-9) -> tuple[float, float]:
        """Interval of null values with bootstrap p-value > alpha (q = 1).

        Bisection from the estimate (p = 1) outwards to a point with p <=
        alpha, found by doubling steps of the cluster-robust half-width; the
        bound is located to ``tol`` times the standard error. Infinite when
        no finite null value is rejected (too few possible draws).
        """
        if self.q != 1:
            raise ValueError("confint needs a single restriction")
        b = float(self._Rb[0])
        se = math.sqrt(self._RVR[0, 0])
        step = max(se, 1e-12) * stats.t(self.design.n_clusters - 1).ppf(1 - alpha / 2)

        def bound(sign: float) -> float:
            inner, outer = b, None
            for m in range(40):
                cand = b + sign * step * 2.0 ** m
                if self.pvalue(cand) <= alpha:
                    outer = cand
                    break
                inner = cand
            if outer is None:
                return sign * math.inf
            while abs(outer - inner) > tol * max(se, 1e-12):
                mid = 0.5 * (inner + outer)
                if self.pvalue(mid) <= alpha:
                    outer = mid
                else:
                    inner = mid
            return 0.5 * (inner + outer)

        return bound(-1.0), bound(1.0)


@dataclass(frozen=True)
class BootstrapBatch:
    """Wild bootstrap t statistics of many outcomes, as functions of the null value.

    Built by :meth:`WildClusterBootstrap.many_outcomes`; row ``i`` holds what
    :meth:`WildClusterBootstrap._pieces` holds for outcome ``i``.
    """

    n0: np.ndarray        # (m, B) numerators at null 0
    nd: np.ndarray        # (B,) their change per unit of the null value
    A: np.ndarray         # (m, B) squared-score sums: A + 2 r Bq + r^2 C
    Bq: np.ndarray        # (m, B)
    C: np.ndarray         # (B,)
    estimate: np.ndarray  # (m,)
    std_error: np.ndarray  # (m,) CR1
    ssc: float

    def pvalues(self, rs: Sequence[float] | np.ndarray) -> np.ndarray:
        """Bootstrap p-values of ``beta = r``, (m, len(rs)), as :meth:`WildClusterBootstrap.pvalues`."""
        rs = np.asarray(rs, float).reshape(-1)
        out = np.empty((len(self.estimate), len(rs)))
        for j, r in enumerate(rs):
            var = self.ssc * np.maximum(self.A + 2 * r * self.Bq + r * r * self.C, 0.0)
            with np.errstate(divide="ignore", invalid="ignore"):
                tb = np.abs((self.n0 + r * self.nd) / np.sqrt(var))
                t = np.abs((self.estimate - r) / self.std_error)
            out[:, j] = np.mean(tb >= (t * (1 - _TIE))[:, None], axis=1)
        return out


def wild_cluster_bootstrap(panel: Panel | pd.DataFrame, *, draws: int = 9999,
                           weight_type: str = "rademacher", seed: int | None = DEFAULT_SEED,
                           alpha: float = 0.05, null: float = 0.0, ci: bool = True,
                           **columns: Any) -> BootstrapResult:
    """Wild cluster bootstrap (restricted, WCR) for the TWFE DiD coefficient.

    Parameters
    ----------
    panel : Panel or DataFrame
        A :func:`analysis.methods.estimation.prepare_panel` result, or a DataFrame with
        the column names as keyword arguments.
    draws : int
        Bootstrap draws (default 9,999); all ``2**G`` Rademacher sign vectors
        instead when that is no more.
    weight_type : {"rademacher", "webb"}
    seed : int
        Seed of ``numpy.random.default_rng``.
    alpha : float
        1 - confidence level of the interval.
    null : float
        Null value for the p-value (default 0, no effect).
    ci : bool
        Compute the interval by test inversion (default True).

    Returns
    -------
    BootstrapResult
    """
    p = _as_panel(panel, columns)
    design = FWLDesign.build(p, p.treatment[:, None], ["treated"])
    wb = WildClusterBootstrap(design, np.ones((1, 1)), draws=draws, weight_type=weight_type,
                              seed=seed)
    lo, hi = wb.confint(alpha) if ci else (math.nan, math.nan)
    return BootstrapResult(estimate=float(design.beta[0]), t_stat=wb.t_stat(null),
                           p_value=wb.pvalue(null), ci_low=float(lo), ci_high=float(hi),
                           draws=wb.B,
                           enumerated=wb.enumerated, weight_type=weight_type, null=null,
                           alpha=alpha, seed=None if wb.enumerated else seed)


def wild_bootstrap_pretrend(panel: Panel | pd.DataFrame, *, min_event: int | None = None,
                            max_event: int | None = None, reference: int = -1,
                            draws: int = 9999, weight_type: str = "rademacher",
                            seed: int | None = DEFAULT_SEED, **columns: Any
                            ) -> WaldBootstrapResult:
    """WCR bootstrap p-value of the event study's joint test that all leads are zero.

    The bootstrap DGP imposes all leads = 0; each draw's Wald statistic uses
    the CR1 cluster covariance, as the observed one does.

    Parameters
    ----------
    panel, min_event, max_event, reference
        As in :func:`analysis.methods.estimation.event_study`.
    draws, weight_type, seed
        As in :func:`wild_cluster_bootstrap`.

    Returns
    -------
    WaldBootstrapResult
        Observed Wald statistic (q times the F of ``event_study``), q and the
        bootstrap p-value.
    """
    p = _as_panel(panel, columns)
    X, ev, _, _ = event_time_matrix(p, min_event, max_event, reference)
    leads = [i for i, e in enumerate(ev) if e < reference]
    if not leads:
        raise DataError("no lead (event time before the reference period) to test")
    design = FWLDesign.build(p, X, [str(e) for e in ev])
    R = np.zeros((len(leads), len(ev)))
    R[np.arange(len(leads)), leads] = 1.0
    wb = WildClusterBootstrap(design, R, draws=draws, weight_type=weight_type, seed=seed)
    return WaldBootstrapResult(stat=wb.wald_stat(np.zeros(len(leads))), q=len(leads),
                               p_value=wb.pvalue(np.zeros(len(leads))), draws=wb.B,
                               enumerated=wb.enumerated, weight_type=weight_type,
                               seed=None if wb.enumerated else seed)


# --------------------------------------------------------------------------
# Randomization inference
# --------------------------------------------------------------------------

def count_assignments(values: np.ndarray) -> int:
    """Number of distinct ways to assign the multiset ``values`` to len(values) units."""
    _, counts = np.unique(values, return_counts=True)
    out = math.factorial(len(values))
    for c in counts:
        out //= math.factorial(int(c))
    return out


def enumerate_assignments(values: np.ndarray) -> np.ndarray:
    """Every distinct arrangement of ``values`` (n_units x n_assignments).

    Builds the arrangements cohort by cohort (choose the positions of the
    first distinct value, then of the next among the rest, ...), the most
    frequent value (usually 'never treated') last.
    """
    values = np.asarray(values, float)
    n = len(values)
    uniq, counts = np.unique(values, return_counts=True)
    order = np.argsort(counts, kind="stable")
    uniq, counts = uniq[order], counts[order]
    out: list[np.ndarray] = []

    def rec(avail: tuple[int, ...], level: int, cur: np.ndarray) -> None:
        if level == len(uniq) - 1:
            cur = cur.copy()
            cur[list(avail)] = uniq[level]
            out.append(cur)
            return
        for comb in itertools.combinations(avail, int(counts[level])):
            nxt = cur.copy()
            nxt[list(comb)] = uniq[level]
            chosen = set(comb)
            rec(tuple(a for a in avail if a not in chosen), level + 1, nxt)

    rec(tuple(range(n)), 0, np.zeros(n))
    return np.column_stack(out) if out else np.zeros((n, 0))


def _assignments(panel: Panel, eligible: Sequence | np.ndarray | None, draws: int,
                 seed: int | None) -> tuple[np.ndarray, bool, int]:
    """Placebo first-treated matrices (n_units x B), enumerated flag, number possible."""
    g = panel.first_treated
    if eligible is None:
        elig = np.ones(panel.n_units, bool)
    else:
        elig = np.isin(panel.units, np.asarray(eligible))
        if not elig[panel.treated].all():
            raise DataError("every treated unit must be eligible for placebo assignment")
    idx = np.flatnonzero(elig)
    vals = g[idx]
    n_possible = count_assignments(vals)
    if n_possible <= draws:
        sub = enumerate_assignments(vals)
        enumerated = True
    else:
        rng = np.random.default_rng(seed)
        perm = np.argsort(rng.random((draws, len(idx))), axis=1)
        sub = vals[perm].T
        enumerated = False
    full = np.repeat(g[:, None], sub.shape[1], axis=1)
    full[idx, :] = sub
    return full, enumerated, n_possible


def _ri_pvalue(stat_b: np.ndarray, stat_obs: float, enumerated: bool) -> float:
    extreme = int((np.abs(stat_b) >= abs(stat_obs) * (1 - _TIE)).sum())
    if enumerated:
        return extreme / len(stat_b)
    return (1 + extreme) / (len(stat_b) + 1)


def _invert(pfun: Callable[[float], float], center: float, scale: float, alpha: float,
            tol: float = 1e-9) -> tuple[float, float]:
    """Bounds of {d : pfun(d) > alpha} by bracketing outwards and bisection."""
    scale = max(scale, 1e-12)

    def bound(sign: float) -> float:
        inner, outer = center, None
        if pfun(center) <= alpha:
            return math.nan
        for m in range(40):
            cand = center + sign * scale * 2.0 ** m
            if pfun(cand) <= alpha:
                outer = cand
                break
            inner = cand
        if outer is None:
            return sign * math.inf
        while abs(outer - inner) > tol * scale:
            mid = 0.5 * (inner + outer)
            if pfun(mid) <= alpha:
                outer = mid
            else:
                inner = mid
        return 0.5 * (inner + outer)

    return bound(-1.0), bound(1.0)


class _TWFEPlacebo:
    """TWFE estimates for many first-treated assignments, affine in the effect delta.

    For assignment b, with D~_b the treatment indicator after projecting out
    the fixed effects and y~(delta) = y~ - delta D~_obs (the outcome with a
    constant effect delta removed from the actually treated rows),
    ``est_b(delta) = e0_b - delta e1_b`` and, for the t statistic, the CR1
    cluster scores are affine in delta too. Projection of all assignments is
    one matrix product with the fixed-effect basis.
    """

    def __init__(self, panel: Panel, gmat: np.ndarray, with_t: bool) -> None:
        self.panel = panel
        d_obs = FWLDesign.build(panel, panel.treatment[:, None], ["treated"])
        self.design = d_obs
        y_t, Dobs_t = d_obs.y, d_obs.X[:, 0]
        Q, sw, Cm = panel.fe_basis, panel.sqrt_w, panel.cluster_matrix
        time = panel.time
        B = gmat.shape[1]
        self.e0, self.e1 = np.empty(B), np.empty(B)
        self.q0 = self.q1 = self.q2 = None
        if with_t:
            self.q0, self.q1, self.q2 = np.empty(B), np.empty(B), np.empty(B)
        for s in range(0, B, 500):
            gb = gmat[:, s:s + 500][panel.unit_index]                     # N x b
            Dw = (((gb > 0) & (time[:, None] >= gb)) * sw[:, None])
            QtD = Q.T @ Dw
            den = (Dw * Dw).sum(0) - (QtD * QtD).sum(0)
            e0 = (Dw.T @ y_t) / den
            e1 = (Dw.T @ Dobs_t) / den
            self.e0[s:s + 500], self.e1[s:s + 500] = e0, e1
            if with_t:
                Dt = Dw - Q @ QtD
                P = np.asarray(Cm @ (Dt * y_t[:, None]))
                Pm = np.asarray(Cm @ (Dt * Dobs_t[:, None]))
                Rr = np.asarray(Cm @ (Dt * Dt))
                s0 = (P - e0 * Rr) / den                                   # G x b
                s1 = (e1 * Rr - Pm) / den
                self.q0[s:s + 500] = (s0 * s0).sum(0)
                self.q1[s:s + 500] = (s0 * s1).sum(0)
                self.q2[s:s + 500] = (s1 * s1).sum(0)

    def stat(self, delta: float, statistic: str) -> np.ndarray:
        est = self.e0 - delta * self.e1
        if statistic == "estimate":
            return est
        var = self.design.ssc * np.maximum(self.q0 + 2 * delta * self.q1
                                           + delta * delta * self.q2, 0.0)
        with np.errstate(divide="ignore", invalid="ignore"):
            return est / np.sqrt(var)


def randomization_inference(panel: Panel | pd.DataFrame, *, draws: int = 5000,
                            seed: int | None = DEFAULT_SEED, alpha: float = 0.05,
                            statistic: str = "estimate",
                            eligible: Sequence | np.ndarray | None = None, ci: bool = True,
                            **columns: Any) -> RandomizationResult:
    """Randomization inference for the TWFE DiD estimate.

    Placebo assignments permute the first-treated vector across the eligible
    units (each placebo-treated unit takes one of the observed treatment
    timings; the number of units per timing is kept), and the TWFE estimate
    is recomputed for each, as matrix products on the fixed-effects-projected
    data (no refit). When the number of distinct assignments is at most
    ``draws`` they are all enumerated (exact test).

    Parameters
    ----------
    panel : Panel or DataFrame
        As in :func:`wild_cluster_bootstrap`.
    draws : int
        Random assignments (default 5,000) when not enumerating.
    seed : int
    alpha : float
    statistic : {"estimate", "t"}
        Test statistic: the DiD estimate (default, primary) or its CR1 t statistic.
    eligible : sequence of unit labels, optional
        Units that may be placebo-treated (default all); every treated unit
        must be among them. Other units keep their status.
    ci : bool
        Invert the test under a constant additive effect (subtract delta from
        the outcome of treated rows) to get the interval.

    Returns
    -------
    RandomizationResult
    """
    if statistic not in ("estimate", "t"):
        raise ValueError("statistic must be 'estimate' or 't'")
    p = _as_panel(panel, columns)
    gmat, enumerated, n_possible = _assignments(p, eligible, draws, seed)
    placebo = _TWFEPlacebo(p, gmat, with_t=statistic == "t")
    obs = _TWFEPlacebo(p, p.first_treated[:, None], with_t=statistic == "t")
    est = float(placebo.design.beta[0])

    def pfun(delta: float) -> float:
        return _ri_pvalue(placebo.stat(delta, statistic), float(obs.stat(delta, statistic)[0]),
                          enumerated)

    se = math.sqrt(placebo.design.vcov[0, 0])
    lo, hi = _invert(pfun, est, se, alpha) if ci else (math.nan, math.nan)
    return RandomizationResult(estimate=est, p_value=pfun(0.0), ci_low=lo, ci_high=hi,
                               draws=gmat.shape[1], n_assignments=n_possible,
                               enumerated=enumerated, statistic=statistic, alpha=alpha,
                               seed=None if enumerated else seed)


# --------------------------------------------------------------------------
# Staggered estimator: randomization inference and multiplier bootstrap
# --------------------------------------------------------------------------

def _cs_simple_many(panel: Panel, gmat: np.ndarray, Y: np.ndarray) -> np.ndarray:
    """Callaway-Sant'Anna simple ATT of outcome matrix Y for each assignment column.

    Cells (g, t, base) are those of the observed cohorts; availability of a
    unit in a cell is taken from the panel's outcome (not from Y), so that
    Y = outcome and Y = treatment indicator give estimates on the same units.
    """
    w = _unit_weights(panel)
    Yobs = _wide(panel)
    times = panel.times
    cohorts = np.unique(panel.first_treated[panel.treated])
    cells = _cs_cells(times, cohorts)
    B = gmat.shape[1]
    n = panel.n_units
    ctrl = (gmat == 0).astype(float)                                   # n x B
    memb = {g: (gmat == g).astype(float) for g in cohorts}
    pg = {g: (w @ memb[g]) / n for g in cohorts}                         # B each
    num = np.zeros(B)
    den = np.zeros(B)
    for g, ti, bi in cells:
        if times[ti] < g:
            continue                                                   # post cells only
        ok = np.isfinite(Yobs[:, ti] - Yobs[:, bi])
        dy = np.where(ok, Y[:, ti] - Y[:, bi], 0.0)
        wa = w * ok
        with np.errstate(invalid="ignore", divide="ignore"):
            att = ((wa * dy) @ memb[g]) / (wa @ memb[g]) - ((wa * dy) @ ctrl) / (wa @ ctrl)
        good = np.isfinite(att)
        num += np.where(good, pg[g] * att, 0.0)
        den += np.where(good, pg[g], 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return num / den


def staggered_randomization_inference(panel: Panel | pd.DataFrame, *, draws: int = 5000,
                                      seed: int | None = DEFAULT_SEED, alpha: float = 0.05,
                                      eligible: Sequence | np.ndarray | None = None,
                                      ci: bool = True, **columns: Any) -> RandomizationResult:
    """Randomization inference for the Callaway-Sant'Anna simple ATT.

    Same placebo assignments as :func:`randomization_inference`; the
    statistic is the simple aggregated ATT, computed for every assignment as
    matrix products (it is linear in the outcome given the assignment).
    The interval inverts the test of a constant additive effect.
    """
    p = _as_panel(panel, columns)
    gmat, enumerated, n_possible = _assignments(p, eligible, draws, seed)
    Y = _wide(p)
    Dw = np.full_like(Y, np.nan)
    Dw[p.unit_index, p.time_index] = p.treatment
    s0 = _cs_simple_many(p, gmat, np.nan_to_num(Y))
    s1 = _cs_simple_many(p, gmat, np.nan_to_num(Dw))
    g_obs = p.first_treated[:, None]
    o0 = float(_cs_simple_many(p, g_obs, np.nan_to_num(Y))[0])
    o1 = float(_cs_simple_many(p, g_obs, np.nan_to_num(Dw))[0])
    ok = np.isfinite(s0) & np.isfinite(s1)
    s0, s1 = s0[ok], s1[ok]

    def pfun(delta: float) -> float:
        return _ri_pvalue(s0 - delta * s1, o0 - delta * o1, enumerated)

    scale = callaway_santanna(p).overall.std_error
    lo, hi = _invert(pfun, o0, scale, alpha) if ci else (math.nan, math.nan)
    return RandomizationResult(estimate=o0, p_value=pfun(0.0), ci_low=lo, ci_high=hi,
                               draws=len(s0), n_assignments=n_possible, enumerated=enumerated,
                               statistic="estimate", alpha=alpha,
                               seed=None if enumerated else seed,
                               method="randomization inference (re-assigned first-treated "
                                      "periods), Callaway-Sant'Anna simple ATT")


def multiplier_bootstrap(result: StaggeredResult, *, draws: int = 9999,
                         weight_type: str = "rademacher", seed: int | None = DEFAULT_SEED,
                         alpha: float = 0.05) -> BootstrapResult:
    """Multiplier (wild) bootstrap of the simple ATT's influence function.

    R ``did``'s bootstrap: ``ATT* - ATT = sum_i IF_i v_i / n`` with unit-level
    weights v, no model refit and no null imposed. The interval is symmetric,
    ``ATT +/- c`` with c the (1 - alpha) quantile of ``|ATT* - ATT|``; the
    p-value is the share of draws with ``|ATT* - ATT| >= |ATT|``.
    """
    inf = result.influence_overall
    n = len(inf)
    V, enumerated = bootstrap_weights(n, draws, weight_type, seed)
    dev = np.abs(inf @ V) / n
    est = result.overall.estimate
    c = float(np.quantile(dev, 1 - alpha))
    p = float(np.mean(dev >= abs(est) * (1 - _TIE)))
    se = result.overall.std_error
    return BootstrapResult(estimate=est, t_stat=est / se if se > 0 else math.nan, p_value=p,
                           ci_low=est - c, ci_high=est + c, draws=V.shape[1],
                           enumerated=enumerated, weight_type=weight_type, alpha=alpha,
                           seed=None if enumerated else seed,
                           method="multiplier bootstrap of the influence function "
                                  "(R did), unrestricted, symmetric interval")


@dataclass(frozen=True)
class WildBootstrapNull:
    """What the primary inference says beyond its test of no effect (issue 13).

    Attributes
    ----------
    std_error : float
        CR1 cluster-robust standard error of the estimate (the scale of the t draws).
    null_estimates : ndarray
        The bootstrap distribution of the estimate under no effect: the restricted
        wild bootstrap t draws at a null of zero times ``std_error``. A planted
        effect shifts this distribution (the location-shift model of the MDE).
    equivalence_p : float
        p-value of two one-sided wild bootstrap tests of an effect as large as the
        smallest effect size of interest (TOST), NaN without one.
    equivalence_lower_p, equivalence_upper_p : float
        Its two one-sided p-values: H0 effect <= -SESOI and H0 effect >= +SESOI.
    """

    std_error: float
    null_estimates: np.ndarray
    equivalence_p: float
    equivalence_lower_p: float
    equivalence_upper_p: float


def wild_bootstrap_null(panel: Panel | pd.DataFrame, *, sesoi: float = math.nan, draws: int = 9999,
                        weight_type: str = "webb", seed: int | None = DEFAULT_SEED,
                        **columns: Any) -> WildBootstrapNull:
    """The primary inference's null distribution and its equivalence test, from one set of draws.

    Parameters
    ----------
    panel : Panel or DataFrame
        As in :func:`wild_cluster_bootstrap`.
    sesoi : float
        Smallest effect size of interest (the measure's units); NaN: no equivalence test.
    draws, weight_type, seed
        As in :func:`wild_cluster_bootstrap` (the same seed gives the same draws).

    Returns
    -------
    WildBootstrapNull
    """
    p = _as_panel(panel, columns)
    design = FWLDesign.build(p, p.treatment[:, None], ["treated"])
    wb = WildClusterBootstrap(design, np.ones((1, 1)), draws=draws, weight_type=weight_type, seed=seed)
    se = math.sqrt(float(wb._RVR[0, 0]))
    null = wb.t_boot(0.0) * se
    lo_p = hi_p = eq_p = math.nan
    if np.isfinite(sesoi) and sesoi > 0:
        # H0: effect <= -SESOI, rejected when the t statistic at -SESOI is large;
        # H0: effect >= +SESOI, rejected when the t statistic at +SESOI is small.
        lo_p = float(np.mean(wb.t_boot(-sesoi) >= wb.t_stat(-sesoi) * (1 - _TIE)))
        hi_p = float(np.mean(wb.t_boot(sesoi) <= wb.t_stat(sesoi) * (1 - _TIE)))
        eq_p = max(lo_p, hi_p)
    return WildBootstrapNull(std_error=se, null_estimates=null, equivalence_p=eq_p,
                             equivalence_lower_p=lo_p, equivalence_upper_p=hi_p)


def wild_bootstrap_event_study(panel: Panel | pd.DataFrame, *, min_event: int | None = None,
                               max_event: int | None = None, reference: int = -1, draws: int = 999,
                               weight_type: str = "webb", seed: int | None = DEFAULT_SEED,
                               alpha: float = 0.05, **columns: Any) -> pd.DataFrame:
    """Wild cluster bootstrap (WCR) p-value and interval of each event-study coefficient.

    The event study of :func:`analysis.methods.estimation.event_study` with the
    primary inference in place of cluster-robust intervals: for each event time,
    the restricted bootstrap imposes that coefficient = r and the interval is the
    set of r not rejected (test inversion), as for the headline estimate.

    Parameters
    ----------
    panel, min_event, max_event, reference
        As in :func:`analysis.methods.estimation.event_study`.
    draws, weight_type, seed, alpha
        As in :func:`wild_cluster_bootstrap`.

    Returns
    -------
    DataFrame
        ``event_time, wb_p_value, wb_ci_low, wb_ci_high`` (the reference period omitted).
    """
    p = _as_panel(panel, columns)
    X, ev, _, _ = event_time_matrix(p, min_event, max_event, reference)
    design = FWLDesign.build(p, X, [str(e) for e in ev])
    rows = []
    for j, e in enumerate(ev):
        R = np.zeros((1, len(ev)))
        R[0, j] = 1.0
        wb = WildClusterBootstrap(design, R, draws=draws, weight_type=weight_type, seed=seed)
        lo, hi = wb.confint(alpha)
        rows.append({"event_time": int(e), "wb_p_value": wb.pvalue(0.0), "wb_ci_low": float(lo),
                     "wb_ci_high": float(hi)})
    return pd.DataFrame(rows, columns=["event_time", "wb_p_value", "wb_ci_low", "wb_ci_high"])
