"""Rambachan and Roth (2023) sensitivity of an event study to violations of parallel trends.

Pure numerics: arrays in, a :class:`pandas.DataFrame` or a dict out; numpy, scipy, pandas
and the standard library only.

Conventions follow the R package *HonestDiD* (Rambachan and Roth):

* ``beta`` holds the event-study coefficients, pre-periods first (periods ``-num_pre`` ..
  ``-1``), then post-periods (``1`` .. ``num_post``); the reference period ``0`` is omitted
  and normalised to zero. ``sigma`` is their covariance matrix.
* The target is the scalar ``theta = l' tau_post``; the default ``l`` is the average of the
  post-period effects (R's default is the first post-period, ``l = e_1``).
* ``beta = tau + delta`` with ``tau_pre = 0``: ``delta`` is the violation of parallel trends.

Two families of restrictions on ``delta`` are implemented, each with the confidence interval
that R uses by default for it:

* Relative magnitudes, ``Delta^RM(Mbar)``: every post-period first difference of ``delta`` is
  at most ``Mbar`` times the largest pre-period first difference. Interval: the conditional /
  least-favourable hybrid test of Andrews, Roth and Pakes ("C-LF"), inverted over ``theta``,
  as ``computeConditionalCS_DeltaRM`` does: a union over the location ``s`` and sign of the
  largest pre-period first difference, using the post-period moments only.
* Smoothness, ``Delta^SD(M)``: the slope of ``delta`` changes by at most ``M`` between
  consecutive periods. Interval: the optimal fixed-length confidence interval (FLCI) of
  ``findOptimalFLCI``.

Where this code computes something R approximates, it computes it exactly; each place is
named in the docstring concerned:

* The linear programme of the C-LF test has, for ``Delta^RM``, a closed form: its dual
  polytope has ``num_post + 2`` vertices, written down in :func:`_rm_vertices`. The test
  statistic, the conditioning event (``vlo``, ``vup``) and the least-favourable critical value
  follow from these vertices without a solver, vectorised over ``theta``. R solves one LP
  per grid point and finds ``vlo``/``vup`` by bisection (tolerance ``1e-6``).
* R inverts the test on a fixed grid of 1,000 points on ``[-20 sd, 20 sd]`` around zero and
  reports the smallest and largest accepted grid points. ``grid="exact"`` (default) locates the
  end points to ``~1e-7`` standard errors instead; ``grid="r"`` reproduces R's grid.
* The least-favourable critical value is the ``1 - alpha/10`` quantile of 1,000 simulated
  draws; the draws are R's own (``set.seed(0)``, Mersenne-Twister, inversion ``rnorm``,
  ``mvtnorm::rmvnorm`` with its eigen square root), so the critical value is R's.
* The FLCI minimises a convex function of the estimator's weights directly and uses
  the exact folded-normal quantile; R searches over the estimator's standard deviation with
  numerical derivatives and simulates the quantile (``10^6`` draws).

References
----------
Rambachan, A. and Roth, J. (2023). A More Credible Approach to Parallel Trends. *Review of
Economic Studies* 90(5), 2555-2591.
Andrews, I., Roth, J. and Pakes, A. (2023). Inference for Linear Conditional Moment
Inequalities. *Review of Economic Studies* 90(6), 2763-2791.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Literal, NamedTuple, Sequence

import numpy as np
import pandas as pd
from scipy import optimize, special

__all__ = [
    "DEFAULT_MBAR_GRID",
    "DEFAULT_M_MULTIPLIERS",
    "breakdown_relative_magnitude",
    "honest_did",
    "relative_magnitudes",
    "smoothness",
]

DEFAULT_MBAR_GRID: tuple[float, ...] = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0)
"""Default ``Mbar`` values for relative magnitudes."""

DEFAULT_M_MULTIPLIERS: tuple[float, ...] = (0.0, 0.5, 1.0, 1.5, 2.0)
"""Default multiples of ``m_scale`` for the smoothness bound ``M``."""

_COLUMNS = ["M", "ci_low", "ci_high", "id_low", "id_high", "reason"]
_R_GRID_POINTS = 1000
_R_GRID_HALF_WIDTH_SD = 20.0
_LF_SIMS = 1000
_EXACT_GRID_POINTS = 200
_REFINE_POINTS = 48
_REFINE_LEVELS = 4


# ----------------------------------------------------------------------------------------
# Inputs
# ----------------------------------------------------------------------------------------


class _Inputs(NamedTuple):
    beta: np.ndarray
    sigma: np.ndarray
    num_pre: int
    num_post: int
    l_vec: np.ndarray
    theta: float
    se: float


def _prepare(beta, sigma, num_pre, num_post, l_vec, alpha, *, min_pre: int):
    """Validate inputs: ``(inputs, None)``, or ``(None, reason)`` when the data rule it out.

    Shape and argument errors (the caller's mistake) raise ``ValueError``; properties of the
    data that make the analysis impossible (no pre-period, non-finite or non-PSD covariance)
    return a reason instead, so that callers looping over outcomes get NaN rows.
    """
    num_pre, num_post = int(num_pre), int(num_post)
    if num_pre < 0 or num_post < 0:
        raise ValueError(f"num_pre and num_post must be >= 0, got {num_pre}, {num_post}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    beta = np.asarray(beta, dtype=float).reshape(-1)
    sigma = np.asarray(sigma, dtype=float)
    n = num_pre + num_post
    if beta.size != n:
        raise ValueError(f"beta has {beta.size} entries, num_pre + num_post = {n}")
    if sigma.shape != (n, n):
        raise ValueError(f"sigma has shape {sigma.shape}, expected ({n}, {n})")
    if l_vec is None:
        l_vec = np.full(num_post, 1.0 / num_post) if num_post else np.zeros(0)
    l_vec = np.asarray(l_vec, dtype=float).reshape(-1)
    if l_vec.size != num_post:
        raise ValueError(f"l_vec has {l_vec.size} entries, num_post = {num_post}")
    if num_post == 0:
        return None, "no post-period coefficient (num_post = 0): theta is undefined"
    if not np.all(np.isfinite(l_vec)) or not np.any(l_vec != 0):
        raise ValueError("l_vec must be finite and not all zero")
    if num_pre < min_pre:
        return None, (
            f"needs at least {min_pre} pre-period coefficient(s) besides the omitted reference "
            f"period; got num_pre = {num_pre}"
        )
    if not (np.all(np.isfinite(beta)) and np.all(np.isfinite(sigma))):
        return None, "beta or sigma has non-finite entries"
    sigma = 0.5 * (sigma + sigma.T)
    eig = np.linalg.eigvalsh(sigma)
    if eig[0] < -1e-8 * max(abs(eig[-1]), np.finfo(float).tiny):
        return None, f"sigma is not positive semi-definite (smallest eigenvalue {eig[0]:.3g})"
    s_post = sigma[num_pre:, num_pre:]
    var = float(l_vec @ s_post @ l_vec)
    if not var > 0:
        return None, "theta = l'beta_post has zero variance"
    theta = float(l_vec @ beta[num_pre:])
    return _Inputs(beta, sigma, num_pre, num_post, l_vec, theta, math.sqrt(var)), None


def _nan_frame(ms: Sequence[float], reason: str) -> pd.DataFrame:
    ms = [float(m) for m in ms]
    nan = [math.nan] * len(ms)
    return pd.DataFrame(
        {"M": ms, "ci_low": nan, "ci_high": nan, "id_low": nan, "id_high": nan,
         "reason": [reason] * len(ms)},
        columns=_COLUMNS,
    )


def _period_pos(period: int, num_pre: int) -> int:
    """Position in ``beta`` of event time ``period`` (``!= 0``)."""
    return period + num_pre if period < 0 else num_pre + period - 1


def _post_first_differences(num_pre: int, num_post: int) -> np.ndarray:
    """Rows ``delta_t - delta_{t-1}``, ``t = 1..num_post``, as weights on ``beta``."""
    d = np.zeros((num_post, num_pre + num_post))
    for t in range(1, num_post + 1):
        d[t - 1, _period_pos(t, num_pre)] += 1.0
        if t - 1 != 0:
            d[t - 1, _period_pos(t - 1, num_pre)] -= 1.0
    return d


def _pre_first_difference(s: int, num_pre: int) -> np.ndarray:
    """Row ``delta_s - delta_{s-1}`` for ``s`` in ``-(num_pre - 1)..0`` (``delta_0 = 0``)."""
    v = np.zeros(num_pre)
    for period, coef in ((s, 1.0), (s - 1, -1.0)):
        if period != 0:
            v[_period_pos(period, num_pre)] += coef
    return v


# ----------------------------------------------------------------------------------------
# R's random numbers (for the least-favourable critical value)
# ----------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _r_rnorm(n: int, seed: int = 0) -> np.ndarray:
    """``set.seed(seed); rnorm(n)`` of R (Mersenne-Twister, inversion), read-only."""
    s = seed % 2**32
    for _ in range(50):  # R's initial scrambling of the seed
        s = (69069 * s + 1) % 2**32
    state = []
    for _ in range(625):
        s = (69069 * s + 1) % 2**32
        state.append(s)
    bit_gen = np.random.MT19937(0)
    bit_gen.state = {
        "bit_generator": "MT19937",
        "state": {"key": np.array(state[1:], dtype=np.uint32), "pos": 624},
    }
    raw = bit_gen.random_raw(2 * n).reshape(n, 2).astype(float) * 2.3283064365386963e-10
    raw[raw <= 0.0] = 0.5 * 2.328306437080797e-10  # R's fixup() keeps draws inside (0, 1)
    big = 134217728.0  # 2^27: R combines two uniforms for one normal
    out = special.ndtri((np.floor(big * raw[:, 0]) + raw[:, 1]) / big)
    out.setflags(write=False)
    return out


def _r_rmvnorm_standard(sims: int, dim: int, seed: int = 0) -> np.ndarray:
    """The standard-normal matrix behind ``mvtnorm::rmvnorm(sims, sigma = <dim x dim>)``."""
    return _r_rnorm(sims * dim, seed).reshape(sims, dim)  # filled by row, as rmvnorm does


def _sym_sqrt(s: np.ndarray) -> np.ndarray:
    val, vec = np.linalg.eigh(s)
    return (vec * np.sqrt(np.clip(val, 0.0, None))) @ vec.T


def _truncnorm_ppf(p: float, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Quantile ``p`` of a standard normal truncated to ``[lo, hi]`` (vectorised).

    Computed in log space on the lower tail when ``lo <= 0`` and on the upper tail when
    ``lo > 0``, so that it stays accurate far in either tail.
    """
    lo = np.asarray(lo, dtype=float)
    hi = np.asarray(hi, dtype=float)
    with np.errstate(all="ignore"):
        # lower tail: Phi(q) = Phi(hi) * (p + (1 - p) Phi(lo) / Phi(hi))
        log_lower = special.log_ndtr(hi) + np.log(
            p + (1.0 - p) * np.exp(special.log_ndtr(lo) - special.log_ndtr(hi)))
        # upper tail: S(q) = S(lo) * (1 - p + p S(hi) / S(lo)),  S = 1 - Phi
        log_upper = special.log_ndtr(-lo) + np.log(
            (1.0 - p) + p * np.exp(special.log_ndtr(-hi) - special.log_ndtr(-lo)))
        out = np.where(lo > 0, -special.ndtri_exp(log_upper), special.ndtri_exp(log_lower))
    return np.where(lo < hi, out, np.nan)


# ----------------------------------------------------------------------------------------
# Relative magnitudes: the C-LF test for one component (s, sign) of Delta^RM
# ----------------------------------------------------------------------------------------


def _rm_vertices(sd_plus: np.ndarray, sd_minus: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Vertices of the dual polytope of the ARP linear programme for ``Delta^RM``.

    The moments are ``m_{t+} = y_{t+} - u_t`` and ``m_{t-} = y_{t-} + u_t`` (``t = 1..T``),
    ``u`` the post-period first differences of the nuisance, free except for ``w'u = 0``
    with ``w_t = sum_{k >= t} l_k``. The LP value ``eta = min_u max_j m_j / sd_j`` is the
    smallest ``eta`` for which every box ``[y_{t+} - a_t eta, -y_{t-} + b_t eta]`` is non-empty
    and ``0`` lies between the smallest and largest ``w'u`` over the boxes; each condition is
    ``eta >= gamma'y`` for one ``gamma`` below, so ``eta = max_gamma gamma'y`` over

    * ``(e_{t+} + e_{t-}) / (a_t + b_t)`` for each ``t`` (box ``t`` non-empty),
    * ``(sum_{w>0} w_t e_{t+} + sum_{w<0} |w_t| e_{t-}) / S_a`` (lower end of ``w'u`` <= 0),
    * ``(sum_{w>0} w_t e_{t-} + sum_{w<0} |w_t| e_{t+}) / S_b`` (upper end >= 0),

    each normalised to ``gamma' sd = 1`` with ``gamma' X = 0`` (``a = sd_plus``,
    ``b = sd_minus``). Rows index vertices, columns the ``2T`` moments (``+`` then ``-``).
    """
    t_post = w.size
    g = np.zeros((t_post + 2, 2 * t_post))
    idx = np.arange(t_post)
    g[idx, idx] = 1.0 / (sd_plus + sd_minus)
    g[idx, t_post + idx] = 1.0 / (sd_plus + sd_minus)
    pos, neg = w > 0, w < 0
    s_a = np.sum(w[pos] * sd_plus[pos]) + np.sum(-w[neg] * sd_minus[neg])
    s_b = np.sum(w[pos] * sd_minus[pos]) + np.sum(-w[neg] * sd_plus[neg])
    g[t_post, idx[pos]] = w[pos] / s_a
    g[t_post, t_post + idx[neg]] = -w[neg] / s_a
    g[t_post + 1, t_post + idx[pos]] = w[pos] / s_b
    g[t_post + 1, idx[neg]] = -w[neg] / s_b
    return g


class _RMComponent:
    """The C-LF test of ``theta`` for one component ``Delta^RM_{s,sign}(Mbar)``.

    Mirrors ``.computeConditionalCS_DeltaRM_fixedS`` (R, ``postPeriodMomentsOnly = TRUE``):
    more than one post-period -> ``.ARP_computeCI`` (nuisance parameters, LF hybrid);
    one post-period -> ``.APR_computeCI_NoNuis`` with ``.testInIdentifiedSet_LF_Hybrid``.
    """

    def __init__(self, inp: _Inputs, mbar: float, s: int, sign: float, alpha: float,
                 lf_sims: int, seed: int):
        num_pre, t_post = inp.num_pre, inp.num_post
        bound = np.zeros(num_pre + t_post)
        bound[:num_pre] = sign * mbar * _pre_first_difference(s, num_pre)
        fd = _post_first_differences(num_pre, t_post)
        a_mat = np.vstack([fd - bound, -fd - bound])  # A delta <= 0, post-period rows only
        s_y = a_mat @ inp.sigma @ a_mat.T
        s_y = 0.5 * (s_y + s_y.T)
        sd = np.sqrt(np.clip(np.diag(s_y), 0.0, None))
        self.valid = bool(np.all(sd > 1e-12 * inp.se))
        if not self.valid:
            return
        self.alpha = alpha
        self.no_nuisance = t_post == 1
        tau0 = inp.l_vec / (inp.l_vec @ inp.l_vec)  # any tau with l'tau = 1 gives the same test
        y0 = a_mat @ inp.beta
        k = a_mat[:, num_pre:] @ tau0  # y(theta) = y0 - theta * k
        if self.no_nuisance:
            g = np.diag(1.0 / sd)  # R: normalised moments, no nuisance parameter
        else:
            w = np.cumsum(inp.l_vec[::-1])[::-1]
            g = _rm_vertices(sd[:t_post], sd[t_post:], w)
        self.e0 = g @ y0
        self.slope = g @ k  # value of vertex j at theta: e0_j - slope_j * theta
        self.cross = g @ s_y @ g.T
        self.var = np.clip(np.diag(self.cross), 0.0, None)
        # Least-favourable critical value: 1 - kappa quantile of eta(xi), xi ~ N(0, s_y),
        # kappa = alpha / 10, with R's draws (R: eta by LP per draw; here max over vertices).
        xi = _r_rmvnorm_standard(lf_sims, 2 * t_post, seed) @ _sym_sqrt(s_y)
        self.lf_cv = float(np.quantile(np.max(xi @ g.T, axis=1), 1.0 - alpha / 10.0))

    def first_stage_bounds(self) -> tuple[float, float]:
        """The ``theta`` with ``eta <= lf_cv``: outside them the first stage rejects."""
        lo, hi = -math.inf, math.inf
        tol = 1e-14 * max(1.0, float(np.max(np.abs(self.slope))))
        for e0, slope in zip(self.e0, self.slope):
            if slope > tol:
                lo = max(lo, (e0 - self.lf_cv) / slope)
            elif slope < -tol:
                hi = min(hi, (e0 - self.lf_cv) / slope)
            elif e0 > self.lf_cv:
                return math.nan, math.nan
        return lo, hi

    def accept(self, theta: np.ndarray) -> np.ndarray:
        """Whether the hybrid test accepts ``H0: l'tau = theta`` at each ``theta``."""
        theta = np.asarray(theta, dtype=float).reshape(-1)
        vals = self.e0[None, :] - theta[:, None] * self.slope[None, :]
        rows = np.arange(theta.size)
        j = np.argmax(vals, axis=1)
        eta = vals[rows, j]
        first = eta > self.lf_cv
        var_j = self.var[j]
        sig = np.sqrt(var_j)
        degenerate = sig <= 1e-10 * max(1.0, float(np.max(np.sqrt(self.var))))
        # Conditioning event: gamma_j stays the optimal vertex along y(c) = s + b c, where
        # b = S gamma_j / (gamma_j' S gamma_j), s = y - b gamma_j'y; vertex i's value is
        # (vals_i - r_ij eta) + r_ij c with r_ij = gamma_i' S gamma_j / gamma_j' S gamma_j.
        with np.errstate(divide="ignore", invalid="ignore"):
            r = self.cross[:, j].T / var_j[:, None]
            num = vals - r * eta[:, None]
            den = 1.0 - r
            bound = num / den
            vlo = np.max(np.where(den > 1e-10, bound, -np.inf), axis=1)
            vup = np.min(np.where(den < -1e-10, bound, np.inf), axis=1)
            maxstat = eta / sig
            if self.no_nuisance:
                # R's .testInIdentifiedSet_LF_Hybrid: second stage at the full alpha, vup not
                # truncated at lf_cv, critical value not floored at zero.
                zlo, zup = vlo / sig, vup / sig
                cval = _truncnorm_ppf(1.0 - self.alpha, zlo, zup)
                reject = first | (maxstat > cval)
            else:
                # R's .lp_conditional_test_fn with hybrid_flag = "LF".
                kappa = self.alpha / 10.0
                size = (self.alpha - kappa) / (1.0 - kappa)
                zlo, zup = vlo / sig, np.minimum(vup, self.lf_cv) / sig
                inside = (zlo <= maxstat) & (maxstat <= zup) & ~first & ~degenerate
                cval = np.full(theta.size, np.inf)
                if np.any(inside):
                    cval[inside] = np.maximum(0.0, _truncnorm_ppf(1.0 - size, zlo[inside],
                                                                  zup[inside]))
                reject = first | (inside & (maxstat > cval))
        reject = np.where(degenerate, first | (eta > 0.0), reject)
        return ~reject


def _accepted_range_exact(comp: _RMComponent) -> tuple[float, float]:
    """Smallest and largest accepted ``theta`` of one component, to ~1e-7 of its range."""
    lo, hi = comp.first_stage_bounds()
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo > hi:
        return math.nan, math.nan
    grid = np.linspace(lo, hi, _EXACT_GRID_POINTS)
    acc = comp.accept(grid)
    if not acc.any():
        return math.nan, math.nan
    first, last = int(np.argmax(acc)), int(acc.size - 1 - np.argmax(acc[::-1]))
    # Brackets (rejected, accepted) around each end, refined on nested sub-grids.
    low = (grid[first - 1], grid[first]) if first > 0 else (grid[0], grid[0])
    high = (grid[last], grid[last + 1]) if last < acc.size - 1 else (grid[-1], grid[-1])
    for _ in range(_REFINE_LEVELS):
        sub_lo = np.linspace(low[0], low[1], _REFINE_POINTS)
        sub_hi = np.linspace(high[0], high[1], _REFINE_POINTS)
        acc_sub = comp.accept(np.concatenate([sub_lo, sub_hi]))
        a_lo, a_hi = acc_sub[:_REFINE_POINTS], acc_sub[_REFINE_POINTS:]
        if low[0] < low[1] and a_lo.any():
            i = int(np.argmax(a_lo))
            low = (sub_lo[max(i - 1, 0)], sub_lo[i])
        if high[0] < high[1] and a_hi.any():
            i = int(a_hi.size - 1 - np.argmax(a_hi[::-1]))
            high = (sub_hi[i], sub_hi[min(i + 1, a_hi.size - 1)])
    return float(low[1]), float(high[0])


def _rm_components(inp: _Inputs, mbar: float, alpha: float, lf_sims: int, seed: int):
    if mbar == 0.0:  # every (s, sign) gives the same moments when Mbar = 0
        keys = [(0, 1.0)]
    else:
        keys = [(s, sign) for s in range(-(inp.num_pre - 1), 1) for sign in (1.0, -1.0)]
    return [_RMComponent(inp, mbar, s, sign, alpha, lf_sims, seed) for s, sign in keys]


def _rm_interval(inp: _Inputs, mbar: float, alpha: float, grid: str, grid_points: int | None,
                 grid_bounds: tuple[float, float] | None, lf_sims: int,
                 seed: int) -> tuple[float, float, str | None]:
    comps = [c for c in _rm_components(inp, mbar, alpha, lf_sims, seed) if c.valid]
    if not comps:
        return math.nan, math.nan, "a moment of the test has zero variance"
    if grid == "r":
        if grid_bounds is None:
            half = _R_GRID_HALF_WIDTH_SD * inp.se
            grid_bounds = (-half, half)
        points = np.linspace(grid_bounds[0], grid_bounds[1], grid_points or _R_GRID_POINTS)
        acc = np.zeros(points.size, dtype=bool)
        for comp in comps:
            acc |= comp.accept(points)
        if not acc.any():
            return math.nan, math.nan, "no value of theta on the grid is accepted"
        return float(points[acc].min()), float(points[acc].max()), None
    ends = np.array([_accepted_range_exact(c) for c in comps])
    if np.all(np.isnan(ends[:, 0])):
        return math.nan, math.nan, "no value of theta is accepted"
    return float(np.nanmin(ends[:, 0])), float(np.nanmax(ends[:, 1])), None


def _rm_identified_set(inp: _Inputs, mbar: float) -> tuple[float, float]:
    """Identified set of ``theta`` under ``Delta^RM(Mbar)`` with ``delta_pre = beta_pre``.

    Post-period first differences of ``delta`` lie in ``[-B, B]``,
    ``B = Mbar * max_s |first difference s of beta_pre|`` (the union over ``s`` of R's
    ``.compute_IDset_DeltaRM``), and ``l'delta_post = sum_t w_t u_t``, so the set is
    ``theta_hat +- B * sum_t |w_t|``.
    """
    fds = [abs(_pre_first_difference(s, inp.num_pre) @ inp.beta[: inp.num_pre])
           for s in range(-(inp.num_pre - 1), 1)]
    w = np.cumsum(inp.l_vec[::-1])[::-1]
    half = mbar * max(fds) * float(np.sum(np.abs(w)))
    return inp.theta - half, inp.theta + half


def relative_magnitudes(
    beta: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    mbar_grid: Sequence[float] = DEFAULT_MBAR_GRID,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    *,
    grid: Literal["exact", "r"] = "exact",
    grid_points: int | None = None,
    grid_bounds: tuple[float, float] | None = None,
    lf_sims: int = _LF_SIMS,
    seed: int = 0,
) -> pd.DataFrame:
    """Robust confidence sets for ``theta = l'tau_post`` under relative magnitudes.

    ``Delta^RM(Mbar)``: for every ``t >= 0``,
    ``|delta_{t+1} - delta_t| <= Mbar * max_{s<0} |delta_{s+1} - delta_s|``. The interval
    inverts the conditional least-favourable hybrid test ("C-LF", R's default for this
    restriction) as ``HonestDiD::computeConditionalCS_DeltaRM`` does: the union over the
    location and sign of the largest pre-period first difference, post-period moments only,
    first-stage size ``alpha / 10``.

    Parameters
    ----------
    beta : array_like
        Event-study coefficients, ``num_pre`` pre-periods then ``num_post`` post-periods
        (reference period omitted).
    sigma : numpy.ndarray
        Covariance matrix of ``beta``.
    num_pre, num_post : int
        Number of pre- and post-period coefficients. ``num_pre >= 1`` is needed.
    mbar_grid : sequence of float, optional
        Values of ``Mbar``; default ``0, 0.25, ..., 2``.
    l_vec : array_like, optional
        Weights defining ``theta``; default the average of the post-period effects.
    alpha : float, optional
        One minus the coverage.
    grid : {"exact", "r"}, optional
        ``"exact"`` (default): end points located to ~1e-7 of the accepted range by nested
        grids inside the first-stage acceptance region. ``"r"``: R's grid (``grid_points``,
        default 1000, on ``grid_bounds``, default ``+-20`` standard errors of ``theta_hat``
        around zero) and its smallest and largest accepted points, to reproduce R.
    grid_points : int, optional
        Number of grid points for ``grid="r"``.
    grid_bounds : tuple of float, optional
        Grid bounds for ``grid="r"``.
    lf_sims : int, optional
        Simulations for the least-favourable critical value (R: 1000).
    seed : int, optional
        Seed of R's generator for those simulations (R: 0).

    Returns
    -------
    pandas.DataFrame
        One row per ``Mbar``: ``M`` (= ``Mbar``), ``ci_low``, ``ci_high``, the identified set
        ``id_low``, ``id_high`` (``delta_pre = beta_pre``), and ``reason`` (``None``, or why
        the row is NaN).

    Notes
    -----
    With ``num_pre = 1`` the largest pre-period first difference is ``|beta_{-1}|`` (the
    change from period ``-1`` to the reference period). With one post-period R tests without
    nuisance parameters, on the post-period moments only (as R's current code does; earlier
    versions also kept the pre-period moments there); its quirks are kept: second stage at
    level ``alpha``, no truncation at the first-stage critical value.
    """
    inp, reason = _prepare(beta, sigma, num_pre, num_post, l_vec, alpha, min_pre=1)
    if grid not in ("exact", "r"):
        raise ValueError(f"grid must be 'exact' or 'r', got {grid!r}")
    mbars = [float(m) for m in mbar_grid]
    if any(m < 0 or not np.isfinite(m) for m in mbars):
        raise ValueError("Mbar values must be finite and >= 0")
    if inp is None:
        return _nan_frame(mbars, f"relative magnitudes: {reason}")
    rows = []
    for mbar in mbars:
        lo, hi, why = _rm_interval(inp, mbar, alpha, grid, grid_points, grid_bounds, lf_sims,
                                   seed)
        id_lo, id_hi = _rm_identified_set(inp, mbar)
        rows.append((mbar, lo, hi, id_lo, id_hi, why))
    return pd.DataFrame(rows, columns=_COLUMNS)


def _covers_zero(inp: _Inputs, mbar: float, alpha: float, lf_sims: int, seed: int) -> bool:
    lo, hi, _ = _rm_interval(inp, mbar, alpha, "exact", None, None, lf_sims, seed)
    return bool(np.isfinite(lo) and np.isfinite(hi) and lo <= 0.0 <= hi)


def breakdown_relative_magnitude(
    beta: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    *,
    mbar_max: float = 10.0,
    tol: float = 1e-3,
    lf_sims: int = _LF_SIMS,
    seed: int = 0,
) -> float | None:
    """Breakdown value of ``Mbar``: the smallest ``Mbar`` whose robust interval covers zero.

    The C-LF interval of :func:`relative_magnitudes` is evaluated on the grid
    ``0.25, 0.5, 0.75, 1, 1.5, 2, 3, 5, 10`` (up to ``mbar_max``) until it first covers zero;
    the crossing is then located by bisection between that grid point and the previous one.

    Parameters
    ----------
    beta, sigma, num_pre, num_post, l_vec, alpha
        As in :func:`relative_magnitudes`.
    mbar_max : float, optional
        Largest ``Mbar`` searched.
    tol : float, optional
        Width of the final bisection bracket; the upper end (an ``Mbar`` whose interval covers
        zero) is returned.
    lf_sims, seed : int, optional
        As in :func:`relative_magnitudes`.

    Returns
    -------
    float or None
        ``None`` when the interval at ``Mbar = 0`` already covers zero (no significant effect
        to break down); ``math.inf`` when it excludes zero for every ``Mbar <= mbar_max``;
        ``math.nan`` when the inputs rule the analysis out (e.g. ``num_pre = 0``).
    """
    inp, _ = _prepare(beta, sigma, num_pre, num_post, l_vec, alpha, min_pre=1)
    if inp is None:
        return math.nan
    if _covers_zero(inp, 0.0, alpha, lf_sims, seed):
        return None
    coarse = [m for m in (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0) if m < mbar_max]
    lo = 0.0
    for hi in [*coarse, float(mbar_max)]:
        if _covers_zero(inp, hi, alpha, lf_sims, seed):
            break
        lo = hi
    else:
        return math.inf
    while hi - lo > tol:
        mid = 0.5 * (lo + hi)
        if _covers_zero(inp, mid, alpha, lf_sims, seed):
            hi = mid
        else:
            lo = mid
    return float(hi)


# ----------------------------------------------------------------------------------------
# Smoothness: the optimal FLCI
# ----------------------------------------------------------------------------------------


def _folded_normal_quantile(t: float, alpha: float) -> tuple[float, float]:
    """``cv`` with ``P(|N(t, 1)| <= cv) = 1 - alpha``, and ``d cv / d t``.

    Safeguarded Newton iterations on the bracket ``[t + z_{1-alpha}, t + z_{1-alpha/2}]``.
    """
    t = abs(t)
    lo = t + special.ndtri(1.0 - alpha)
    hi = t + special.ndtri(1.0 - alpha / 2.0)
    x = hi
    for _ in range(100):
        f = special.ndtr(x - t) - special.ndtr(-x - t) - (1.0 - alpha)
        if f > 0:
            hi = x
        else:
            lo = x
        fp = math.exp(-0.5 * (x - t) ** 2) + math.exp(-0.5 * (x + t) ** 2)
        step = f / (fp / math.sqrt(2.0 * math.pi)) if fp > 0 else math.inf
        x_new = x - step
        if not lo <= x_new <= hi:
            x_new = 0.5 * (lo + hi)
        if abs(x_new - x) <= 1e-15 * max(1.0, x) or hi - lo <= 1e-15 * max(1.0, x):
            x = x_new
            break
        x = x_new
    pm, pp = math.exp(-0.5 * (x - t) ** 2), math.exp(-0.5 * (x + t) ** 2)
    return x, (pm - pp) / (pm + pp)


class _FLCIProblem:
    """The FLCI of ``theta`` under ``Delta^SD(M)`` (R's ``findOptimalFLCI``).

    Affine estimators ``v'beta`` with ``v = (v_pre, l)``. Unbiasedness under linear trends
    fixes ``sum_m m v_{-m} = L1 = sum_t t l_t``. Writing ``c = cumsum(cumsum(v_pre))`` (oldest
    period first; its last entry is ``L1``), the worst-case bias over ``Delta^SD(M)`` is
    ``M (K + sum_{i < num_pre} |c_i|)`` with ``K = sum_{k=0}^{T-1} |sum_{t>k} (t-k) l_t|``
    (R's ``.createObjectiveObjectForBias``; identical for ``l >= 0``, R is conservative
    otherwise). The half-length ``h cv_alpha(bias / h)``, ``h`` the estimator's standard
    deviation and ``cv_alpha`` the folded-normal quantile, is convex in ``c``; it is
    minimised over the free ``c_1..c_{num_pre-1}`` (none when ``num_pre = 1``; bounded Brent
    for one, truncated Newton from two starting points for more).
    """

    def __init__(self, inp: _Inputs):
        self.inp = inp
        n_pre, n_post, lv = inp.num_pre, inp.num_post, inp.l_vec
        t = np.arange(1, n_post + 1)
        self.l1 = float(t @ lv)
        self.k_const = float(sum(abs(np.sum((t[k:] - k) * lv[k:])) for k in range(n_post)))
        self.n_free = n_pre - 1
        p0 = self._v_pre(np.zeros(self.n_free))
        cols = [self._v_pre(e) - p0 for e in np.eye(self.n_free)]
        p_mat = np.column_stack(cols) if cols else np.zeros((n_pre, 0))
        scale = inp.se  # work in units of se(theta_hat)
        s = inp.sigma / scale**2
        s_pp, s_pq, s_qq = s[:n_pre, :n_pre], s[:n_pre, n_pre:], s[n_pre:, n_pre:]
        self.q_mat = p_mat.T @ s_pp @ p_mat
        self.q_vec = 2.0 * p_mat.T @ (s_pp @ p0 + s_pq @ lv)
        self.r0 = float(p0 @ s_pp @ p0 + 2.0 * p0 @ s_pq @ lv + lv @ s_qq @ lv)
        self.p_mat, self.p0, self.scale = p_mat, p0, scale

    def _v_pre(self, c: np.ndarray) -> np.ndarray:
        w = np.diff(np.append(c, self.l1), prepend=0.0)
        return np.diff(w, prepend=0.0)

    def _var(self, c: np.ndarray) -> float:
        return float(c @ self.q_mat @ c + self.q_vec @ c + self.r0)

    def _min_var_c(self) -> np.ndarray:
        if self.n_free == 0:
            return np.zeros(0)
        return np.linalg.lstsq(2.0 * self.q_mat, -self.q_vec, rcond=None)[0]

    def solve(self, m: float, alpha: float) -> tuple[float, float, float]:
        """Return ``(center, half_length, worst_case_bias)`` in the units of ``beta``."""
        m_s = m / self.scale
        c_minvar = self._min_var_c()
        if self.n_free == 0 or m_s == 0.0:
            c = c_minvar if m_s == 0.0 else np.zeros(0)
        else:
            c = self._optimise(m_s, alpha, c_minvar)
        h = math.sqrt(max(self._var(c), 0.0))
        bias = m_s * (self.k_const + float(np.sum(np.abs(c))))
        if h <= 0.0:
            return math.nan, math.nan, math.nan
        cv, _ = _folded_normal_quantile(bias / h, alpha)
        v = np.concatenate([self.p_mat @ c + self.p0, self.inp.l_vec])
        return float(v @ self.inp.beta), cv * h * self.scale, bias * self.scale

    def _objective(self, m_s: float, alpha: float, c: np.ndarray) -> float:
        h = math.sqrt(max(self._var(c), 1e-300))
        bias = m_s * (self.k_const + float(np.sum(np.abs(c))))
        return h * _folded_normal_quantile(bias / h, alpha)[0]

    def _optimise(self, m_s: float, alpha: float, c_minvar: np.ndarray) -> np.ndarray:
        nf = self.n_free
        if nf == 1:
            # The optimum lies between the minimum-bias (0) and minimum-variance weights:
            # outside that segment both the bias and the variance grow.
            a, b = sorted((0.0, float(c_minvar[0])))
            if b - a <= 1e-14:
                return np.array([a])
            res = optimize.minimize_scalar(
                lambda x: self._objective(m_s, alpha, np.array([x])), bounds=(a, b),
                method="bounded", options={"xatol": 1e-12 * max(1.0, b - a)})
            cands = [np.array([res.x]), np.array([a]), np.array([b])]
            return min(cands, key=lambda c: self._objective(m_s, alpha, c))

        def fun(x):
            c = x[:nf] - x[nf:]
            h = math.sqrt(max(self._var(c), 1e-300))
            b = m_s * (self.k_const + float(np.sum(x)))
            cv, dcv = _folded_normal_quantile(b / h, alpha)
            t = b / h
            df_db = m_s * dcv
            df_dh = cv - t * dcv
            dh_dc = (2.0 * self.q_mat @ c + self.q_vec) / (2.0 * h)
            grad = np.concatenate([df_dh * dh_dc + df_db, -df_dh * dh_dc + df_db])
            return float(h * cv), grad

        best = None
        for c0 in (c_minvar, np.zeros(nf)):
            x0 = np.concatenate([np.clip(c0, 0, None), np.clip(-c0, 0, None)])
            res = optimize.minimize(fun, x0, jac=True, method="TNC",
                                    bounds=[(0.0, None)] * (2 * nf),
                                    options={"maxfun": 5000, "ftol": 1e-14, "xtol": 1e-12,
                                             "gtol": 1e-10})
            if best is None or res.fun < best.fun:
                best = res
        return best.x[:nf] - best.x[nf:]


def _sd_identified_set(inp: _Inputs, m: float) -> tuple[float, float]:
    """Identified set of ``theta`` under ``Delta^SD(M)`` with ``delta_pre = beta_pre``.

    ``delta_t = -t beta_{-1} + sum_{k=0}^{t-1} (t - k) d_k`` for ``t >= 1`` (``d_k`` the second
    differences, ``|d_k| <= M``), so
    ``theta in theta_hat + L1 beta_{-1} +- M sum_k |sum_{t>k} (t-k) l_t|``; empty (NaN) when a
    pre-period second difference of ``beta`` exceeds ``M``.
    """
    n_pre, lv = inp.num_pre, inp.l_vec
    path = np.append(inp.beta[:n_pre], 0.0)  # delta_{-num_pre} .. delta_0
    if n_pre >= 2 and np.max(np.abs(np.diff(path, 2))) > m * (1 + 1e-12) + 1e-15:
        return math.nan, math.nan
    t = np.arange(1, inp.num_post + 1)
    spread = float(sum(abs(np.sum((t[k:] - k) * lv[k:])) for k in range(inp.num_post)))
    centre = inp.theta + float(t @ lv) * inp.beta[n_pre - 1]
    return centre - m * spread, centre + m * spread


def smoothness(
    beta: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    m_grid: Sequence[float] | None = None,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    *,
    m_scale: float | None = None,
    m_multipliers: Sequence[float] = DEFAULT_M_MULTIPLIERS,
) -> pd.DataFrame:
    """Optimal fixed-length confidence intervals for ``theta`` under smoothness.

    ``Delta^SD(M)``: ``|(delta_{t+1} - delta_t) - (delta_t - delta_{t-1})| <= M`` for all
    ``t`` (``M = 0``: the violation is a linear trend). The interval is the FLCI of
    ``HonestDiD::findOptimalFLCI`` (R's default for this restriction): the affine estimator
    ``v'beta`` and half-length minimising ``sd(v'beta) * cv_alpha(bias / sd)``, ``cv_alpha``
    the ``1 - alpha`` quantile of ``|N(bias / sd, 1)|``.

    Parameters
    ----------
    beta, sigma, num_pre, num_post
        As in :func:`relative_magnitudes`; ``num_pre >= 1`` is needed (with one pre-period the
        estimator extrapolates the single pre-period slope linearly, and ``M`` bounds the
        change of slope).
    m_grid : sequence of float, optional
        Values of ``M`` in the units of ``beta`` per period squared. Default:
        ``m_multipliers * m_scale``.
    l_vec : array_like, optional
        Weights defining ``theta``; default the average of the post-period effects.
    alpha : float, optional
        One minus the coverage.
    m_scale : float, optional
        Scale of the default grid; default the standard error of ``beta_{-1}`` (the last
        pre-period coefficient: the standard error of the observed slope into the reference
        period), which is R's default scale when ``num_pre = 1``.
    m_multipliers : sequence of float, optional
        Multiples of ``m_scale`` for the default grid; default ``0, 0.5, 1, 1.5, 2``.

    Returns
    -------
    pandas.DataFrame
        One row per ``M``: ``M``, ``ci_low``, ``ci_high``, the identified set ``id_low``,
        ``id_high`` (NaN when the pre-period coefficients themselves violate ``Delta^SD(M)``;
        the FLCI is still defined), and ``reason``. ``DataFrame.attrs["m_scale"]`` holds the
        scale used (NaN when ``m_grid`` was given).
    """
    inp, reason = _prepare(beta, sigma, num_pre, num_post, l_vec, alpha, min_pre=1)
    if m_grid is None:
        if m_scale is None:
            ok = int(num_pre) >= 1 and np.asarray(sigma).shape[0] >= int(num_pre)
            m_scale = math.sqrt(float(np.asarray(sigma)[num_pre - 1, num_pre - 1])) if ok \
                else math.nan
        ms = [float(k) * float(m_scale) for k in m_multipliers]
    else:
        m_scale = math.nan
        ms = [float(m) for m in m_grid]
    if any(m < 0 for m in ms if np.isfinite(m)):
        raise ValueError("M values must be >= 0")
    if inp is None:
        out = _nan_frame(ms, f"smoothness: {reason}")
    elif not all(np.isfinite(ms)):
        out = _nan_frame(ms, "smoothness: the M grid is not finite (m_scale undefined)")
    else:
        problem = _FLCIProblem(inp)
        rows = []
        for m in ms:
            centre, half, _ = problem.solve(m, alpha)
            why = None if np.isfinite(half) else "the FLCI estimator has zero variance"
            id_lo, id_hi = _sd_identified_set(inp, m)
            rows.append((m, centre - half, centre + half, id_lo, id_hi, why))
        out = pd.DataFrame(rows, columns=_COLUMNS)
    out.attrs["m_scale"] = float(m_scale)
    return out


# ----------------------------------------------------------------------------------------
# Convenience
# ----------------------------------------------------------------------------------------


def _records(frame: pd.DataFrame) -> list[dict]:
    out = []
    for row in frame.itertuples(index=False):
        out.append({
            "M": float(row.M), "ci_low": float(row.ci_low), "ci_high": float(row.ci_high),
            "id_low": float(row.id_low), "id_high": float(row.id_high), "reason": row.reason,
        })
    return out


def honest_did(
    beta: Sequence[float] | np.ndarray,
    sigma: np.ndarray,
    num_pre: int,
    num_post: int,
    *,
    l_vec: Sequence[float] | np.ndarray | None = None,
    alpha: float = 0.05,
    mbar_grid: Sequence[float] = DEFAULT_MBAR_GRID,
    m_grid: Sequence[float] | None = None,
    m_scale: float | None = None,
    m_multipliers: Sequence[float] = DEFAULT_M_MULTIPLIERS,
    breakdown: bool = True,
) -> dict:
    """Relative-magnitudes and smoothness sensitivity of one event study, as plain data.

    Parameters
    ----------
    beta, sigma, num_pre, num_post, l_vec, alpha
        As in :func:`relative_magnitudes`.
    mbar_grid : sequence of float, optional
        ``Mbar`` values for :func:`relative_magnitudes`.
    m_grid, m_scale, m_multipliers : optional
        ``M`` values, or their scale and multiples, for :func:`smoothness`.
    breakdown : bool, optional
        Whether to compute the relative-magnitudes breakdown value.

    Returns
    -------
    dict
        ``estimate`` (``l'beta_post``), ``se``, ``conventional_ci`` (``estimate +-
        z_{1-alpha/2} se``), ``m_scale``, ``relative_magnitudes`` and ``smoothness`` (lists of
        ``{"M", "ci_low", "ci_high", "id_low", "id_high", "reason"}``) and ``breakdown_rm``
        (see :func:`breakdown_relative_magnitude`; ``None`` also when not computed).
    """
    inp, _ = _prepare(beta, sigma, num_pre, num_post, l_vec, alpha, min_pre=0)
    rm = relative_magnitudes(beta, sigma, num_pre, num_post, mbar_grid, l_vec, alpha)
    sd = smoothness(beta, sigma, num_pre, num_post, m_grid, l_vec, alpha, m_scale=m_scale,
                    m_multipliers=m_multipliers)
    z = float(special.ndtri(1.0 - alpha / 2.0))
    est = inp.theta if inp is not None else math.nan
    se = inp.se if inp is not None else math.nan
    bd = (breakdown_relative_magnitude(beta, sigma, num_pre, num_post, l_vec, alpha)
          if breakdown else None)
    return {
        "estimate": est,
        "se": se,
        "conventional_ci": (est - z * se, est + z * se),
        "m_scale": sd.attrs["m_scale"],
        "relative_magnitudes": _records(rm),
        "smoothness": _records(sd),
        "breakdown_rm": bd,
    }
