"""Power, equivalence and multiple testing: the numbers behind an informative null.

Pure numerics: arrays in, floats, arrays or dicts out; numpy, scipy and the standard library
only.

The resampling-based functions take the *null distribution* of an estimate as the run
resampled it: wild cluster bootstrap estimates with the null imposed, or randomization
inference placebo estimates. They rest on the **location-shift model**: the effect is a
constant additive shift ``tau``, so the estimate's sampling distribution under effect ``tau``
is the null distribution shifted by ``tau``. The two-sided test at level ``alpha`` rejects
when the estimate falls outside the central ``1 - alpha`` range ``[q_{alpha/2},
q_{1-alpha/2}]`` of the null draws (quantiles by linear interpolation, numpy's default).
"""

from __future__ import annotations

from typing import Literal, NamedTuple, Sequence

import numpy as np
from scipy import special, stats

__all__ = [
    "RulesOut",
    "benjamini_hochberg",
    "holm",
    "interval_rules_out",
    "minimum_detectable_effect",
    "minimum_detectable_effect_se",
    "power_curve",
    "romano_wolf",
    "tost_equivalence",
]


def _check_level(name: str, value: float) -> None:
    if not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in (0, 1), got {value}")


def _null_draws(null_draws: Sequence[float] | np.ndarray, se: float | None) -> np.ndarray:
    d = np.asarray(null_draws, dtype=float).reshape(-1)
    d = d[np.isfinite(d)]
    if d.size < 2:
        raise ValueError("need at least two finite null draws")
    if se is not None:
        if not (np.isfinite(se) and se > 0):
            raise ValueError(f"se must be finite and > 0, got {se}")
        d = d * float(se)
    return d


def _critical_values(d: np.ndarray, alpha: float) -> tuple[float, float]:
    lo, hi = np.quantile(d, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(lo), float(hi)


# ----------------------------------------------------------------------------------------
# Minimum detectable effect and power
# ----------------------------------------------------------------------------------------


def minimum_detectable_effect(
    null_draws: Sequence[float] | np.ndarray,
    *,
    alpha: float = 0.05,
    power: float = 0.8,
    se: float | None = None,
) -> float:
    """Minimum detectable effect of a two-sided test, from the estimate's null distribution.

    Under the location-shift model (module docstring) the estimate under an effect ``tau``
    is ``tau + D``, ``D`` distributed as the null draws. A positive effect is detected with
    probability ``power`` when ``P(tau + D > q_{1-alpha/2}) = power``, i.e.
    ``tau = q_{1-alpha/2} - q_{1-power}``; a negative one when ``tau = q_{alpha/2} -
    q_{power}``. For a null distribution symmetric about zero both equal
    ``q_{1-alpha/2} + q_{power}`` (``(z_{0.975} + z_{0.8}) sd = 2.80 sd`` for a normal null).

    Parameters
    ----------
    null_draws : array_like
        Draws of the estimate (or, with ``se``, of its t-statistic) when the true effect is
        zero: bootstrap estimates with the null imposed, or placebo (randomization) estimates.
        Non-finite draws are dropped.
    alpha : float, optional
        Size of the two-sided test.
    power : float, optional
        Target power.
    se : float, optional
        If given, the draws are studentized statistics and are multiplied by ``se`` (the
        estimate's standard error, taken to be the same under the alternative) to put the
        MDE on the scale of the estimate.

    Returns
    -------
    float
        The larger of the positive and negative detectable magnitudes (they coincide for a
        symmetric null distribution). The probability of rejecting in the wrong direction is
        ignored; it is below ``alpha / 2``.

    Notes
    -----
    The assumption is a constant additive effect: the estimator's sampling distribution
    under the alternative is the null distribution shifted, with the same spread. Effects
    that are heterogeneous across units, or that change the outcome's variance, break it.
    """
    _check_level("alpha", alpha)
    _check_level("power", power)
    d = _null_draws(null_draws, se)
    lo, hi = _critical_values(d, alpha)
    q_lo, q_hi = np.quantile(d, [1.0 - power, power])
    return float(max(hi - q_lo, q_hi - lo))


def minimum_detectable_effect_se(
    se: float, *, df: float | None = None, alpha: float = 0.05, power: float = 0.8
) -> float:
    """Normal (or t) approximation to the minimum detectable effect, for comparison.

    ``MDE = (t_{1-alpha/2, df} + t_{power, df}) * se``; with ``df=None`` the normal quantiles
    (``(1.96 + 0.84) se = 2.80 se`` at the defaults). For cluster-robust inference with ``G``
    clusters the usual choice is ``df = G - 1``.

    Parameters
    ----------
    se : float
        Standard error of the estimate.
    df : float, optional
        Degrees of freedom of the t reference distribution; normal if ``None``.
    alpha : float, optional
        Size of the two-sided test.
    power : float, optional
        Target power.

    Returns
    -------
    float
        The minimum detectable effect (NaN if ``se`` is not finite).
    """
    _check_level("alpha", alpha)
    _check_level("power", power)
    if df is None:
        mult = special.ndtri(1.0 - alpha / 2.0) + special.ndtri(power)
    else:
        if not df > 0:
            raise ValueError(f"df must be > 0, got {df}")
        mult = stats.t.ppf(1.0 - alpha / 2.0, df) + stats.t.ppf(power, df)
    return float(mult * se)


def power_curve(
    null_draws: Sequence[float] | np.ndarray,
    effects: Sequence[float] | np.ndarray | float,
    *,
    alpha: float = 0.05,
    se: float | None = None,
) -> np.ndarray:
    """Rejection rate of the two-sided test at each effect size, under the location shift.

    ``power(tau) = P(tau + D > q_{1-alpha/2}) + P(tau + D < q_{alpha/2})`` with ``D`` the
    empirical null distribution, so ``power(0)`` is about ``alpha`` and
    ``power(minimum_detectable_effect(...))`` about the target power.

    Parameters
    ----------
    null_draws : array_like
        As in :func:`minimum_detectable_effect`.
    effects : array_like or float
        Effect sizes ``tau`` on the scale of the estimate.
    alpha : float, optional
        Size of the two-sided test.
    se : float, optional
        As in :func:`minimum_detectable_effect`.

    Returns
    -------
    numpy.ndarray
        Share of shifted draws rejected, with the shape of ``effects``.
    """
    _check_level("alpha", alpha)
    d = np.sort(_null_draws(null_draws, se))
    lo, hi = _critical_values(d, alpha)
    tau = np.asarray(effects, dtype=float)
    above = d.size - np.searchsorted(d, hi - tau, side="right")
    below = np.searchsorted(d, lo - tau, side="left")
    out = (above + below) / d.size
    return np.where(np.isfinite(tau), out, np.nan)


# ----------------------------------------------------------------------------------------
# Equivalence
# ----------------------------------------------------------------------------------------


def tost_equivalence(
    estimate: float,
    *,
    sesoi: float | tuple[float, float],
    null_draws: Sequence[float] | np.ndarray | None = None,
    ci: tuple[float, float] | None = None,
    se: float | None = None,
    df: float | None = None,
    alpha: float = 0.05,
) -> dict:
    """Two one-sided tests (TOST) of equivalence to zero within the smallest effect of interest.

    ``H0: theta <= low or theta >= high`` against ``H1: low < theta < high``, with
    ``(low, high) = (-sesoi, sesoi)``. Each bound is tested one-sided at level ``alpha``;
    the equivalence p-value is the larger of the two p-values, and equivalence is declared
    when it is below ``alpha`` -- equivalently, when the ``1 - 2 alpha`` confidence interval
    lies inside the margin.

    Exactly one source of the estimate's distribution is used:

    * ``null_draws`` -- the primary inference's null distribution (bootstrap or placebo
      draws of ``estimate - theta``), under the location-shift model:
      ``p_low = P(D >= estimate - low)``, ``p_high = P(D <= estimate - high)``;
    * ``se`` (and ``df``) -- normal (t) reference: ``p_low = P(T >= (estimate - low) / se)``,
      ``p_high = P(T <= (estimate - high) / se)``;
    * ``ci`` -- a ``1 - 2 alpha`` interval ``(lo, hi)``: the decision is exact
      (``low < lo`` and ``hi < high``); the p-values assume the interval is a symmetric
      normal one, ``se = (hi - lo) / (2 z_{1-alpha})``.

    Parameters
    ----------
    estimate : float
        Point estimate.
    sesoi : float or tuple of float
        Smallest effect size of interest: ``s > 0`` for the margin ``(-s, s)``, or the margin
        ``(low, high)`` itself.
    null_draws : array_like, optional
        Null distribution draws.
    ci : tuple of float, optional
        A ``1 - 2 alpha`` confidence interval.
    se : float, optional
        Standard error.
    df : float, optional
        Degrees of freedom for the t reference (with ``se``).
    alpha : float, optional
        Level of each one-sided test.

    Returns
    -------
    dict
        ``p_value`` (max of the two), ``p_low``, ``p_high``, ``equivalent`` (bool),
        ``margin`` and ``method`` (``"draws"``, ``"normal"``, ``"t"`` or ``"interval"``).
    """
    _check_level("alpha", alpha)
    if np.ndim(sesoi) == 0:
        if not float(sesoi) > 0:
            raise ValueError(f"sesoi must be > 0, got {sesoi}")
        low, high = -float(sesoi), float(sesoi)
    else:
        low, high = (float(x) for x in sesoi)
        if not low < high:
            raise ValueError(f"margin must have low < high, got {sesoi}")
    given = [x is not None for x in (null_draws, ci, se)]
    if sum(given) != 1:
        raise ValueError("give exactly one of null_draws, ci or se")
    est = float(estimate)
    equivalent = None
    if null_draws is not None:
        d = _null_draws(null_draws, None)
        p_low = float(np.mean(d >= est - low))
        p_high = float(np.mean(d <= est - high))
        method = "draws"
    else:
        if ci is not None:
            c_lo, c_hi = (float(x) for x in ci)
            if not c_lo <= c_hi:
                raise ValueError(f"ci must have lower <= upper, got {ci}")
            se = (c_hi - c_lo) / (2.0 * special.ndtri(1.0 - alpha))
            equivalent = bool(low < c_lo and c_hi < high)
            method, dist = "interval", stats.norm
        elif df is None:
            method, dist = "normal", stats.norm
        else:
            method, dist = "t", stats.t(df)
        if not (np.isfinite(se) and se > 0):
            raise ValueError(f"se must be finite and > 0, got {se}")
        p_low = float(dist.sf((est - low) / se))
        p_high = float(dist.cdf((est - high) / se))
    p_value = max(p_low, p_high)
    if equivalent is None:
        equivalent = bool(p_value < alpha)
    return {"p_value": p_value, "p_low": p_low, "p_high": p_high, "equivalent": equivalent,
            "margin": (low, high), "method": method}


# ----------------------------------------------------------------------------------------
# Multiple testing
# ----------------------------------------------------------------------------------------


def _adjust(pvalues, step: Literal["holm", "bh"]) -> np.ndarray:
    p = np.asarray(pvalues, dtype=float)
    flat = p.reshape(-1)
    ok = np.isfinite(flat)
    q = flat[ok]
    if np.any((q < 0) | (q > 1)):
        raise ValueError("p-values must lie in [0, 1]")
    m = q.size
    order = np.argsort(q, kind="mergesort")
    s = q[order]
    if step == "holm":
        adj = np.maximum.accumulate((m - np.arange(m)) * s)
    else:
        adj = np.minimum.accumulate((s * m / np.arange(1, m + 1))[::-1])[::-1]
    res = np.empty(m)
    res[order] = np.minimum(adj, 1.0)
    out = np.full(flat.shape, np.nan)
    out[ok] = res
    return out.reshape(p.shape)


def holm(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Holm (1979) step-down adjusted p-values (family-wise error rate).

    Parameters
    ----------
    pvalues : array_like
        Unadjusted p-values. NaN entries are passed through and do not count in the family.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values, in the input order and shape.
    """
    return _adjust(pvalues, "holm")


def benjamini_hochberg(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p-values (false discovery rate).

    Parameters
    ----------
    pvalues : array_like
        Unadjusted p-values. NaN entries are passed through and do not count in the family.

    Returns
    -------
    numpy.ndarray
        Adjusted p-values (q-values), in the input order and shape.
    """
    return _adjust(pvalues, "bh")


def romano_wolf(
    t_obs: Sequence[float] | np.ndarray,
    t_boot: np.ndarray,
    *,
    two_sided: bool = True,
) -> np.ndarray:
    """Romano-Wolf step-down adjusted p-values from joint bootstrap draws (FWER control).

    Hypotheses are ordered by ``|t_obs|`` (or ``t_obs`` if one-sided), largest first. At step
    ``j`` the p-value is the share of draws in which the largest bootstrap statistic over the
    hypotheses not yet rejected (the ``j``-th largest and smaller) is at least the ``j``-th
    largest observed statistic, ``(1 + #) / (1 + B)``; adjusted p-values are made monotone by
    a running maximum (Romano and Wolf 2005, 2016). Using the joint draws lets the procedure
    exploit the correlation between the statistics, which Bonferroni or Holm ignore.

    Parameters
    ----------
    t_obs : array_like, shape (K,)
        Observed test statistics.
    t_boot : array_like, shape (B, K)
        Bootstrap draws of the statistics under the joint null, drawn jointly (same resample
        in a row), e.g. ``(theta*_b - theta_hat) / se*_b`` or null-imposed wild bootstrap
        t-statistics.
    two_sided : bool, optional
        Use absolute values (two-sided tests); else large positive values reject.

    Returns
    -------
    numpy.ndarray, shape (K,)
        Adjusted p-values in the input order; NaN where ``t_obs`` or its bootstrap column has
        a non-finite value (those hypotheses are left out of the family).
    """
    t = np.asarray(t_obs, dtype=float).reshape(-1)
    boot = np.asarray(t_boot, dtype=float)
    if boot.ndim != 2 or boot.shape[1] != t.size:
        raise ValueError(f"t_boot must have shape (B, {t.size}), got {boot.shape}")
    ok = np.isfinite(t) & np.all(np.isfinite(boot), axis=0)
    out = np.full(t.size, np.nan)
    if not ok.any():
        return out
    stat, draws = t[ok], boot[:, ok]
    if two_sided:
        stat, draws = np.abs(stat), np.abs(draws)
    order = np.argsort(-stat, kind="mergesort")
    stat_sorted = stat[order]
    # column j: max over the hypotheses ranked j, j+1, ... (those still in the family)
    tail_max = np.maximum.accumulate(draws[:, order][:, ::-1], axis=1)[:, ::-1]
    exceed = np.sum(tail_max >= stat_sorted[None, :], axis=0)
    p_step = (1.0 + exceed) / (1.0 + draws.shape[0])
    adj = np.minimum(np.maximum.accumulate(p_step), 1.0)
    res = np.empty(stat.size)
    res[order] = adj
    out[ok] = res
    return out


# ----------------------------------------------------------------------------------------
# Reading an interval
# ----------------------------------------------------------------------------------------


class RulesOut(NamedTuple):
    """What an interval leaves open, in the outcome's direction of benefit.

    The interval rules out improvements larger than ``improvement`` and deteriorations larger
    than ``deterioration`` (both magnitudes, ``>= 0``; zero when the interval excludes every
    effect in that direction).
    """

    improvement: float | np.ndarray
    deterioration: float | np.ndarray


def interval_rules_out(
    ci_low: float | np.ndarray,
    ci_high: float | np.ndarray,
    direction_of_benefit: Literal["higher", "lower"],
) -> RulesOut:
    """Largest improvement and deterioration a confidence interval fails to rule out.

    For an outcome where higher is better, the interval ``[lo, hi]`` is compatible with
    improvements up to ``max(hi, 0)`` and deteriorations up to ``max(-lo, 0)``; where lower
    is better, improvements up to ``max(-lo, 0)`` and deteriorations up to ``max(hi, 0)``.
    So it "rules out improvements larger than ``improvement`` and deteriorations larger than
    ``deterioration``".

    Parameters
    ----------
    ci_low, ci_high : float or array_like
        Interval bounds on the effect scale (NaN passes through).
    direction_of_benefit : {"higher", "lower"}
        Which direction of the outcome is better for children.

    Returns
    -------
    RulesOut
        ``(improvement, deterioration)``, floats for scalar input, arrays otherwise.
    """
    if direction_of_benefit not in ("higher", "lower"):
        raise ValueError(f"direction_of_benefit must be 'higher' or 'lower', "
                         f"got {direction_of_benefit!r}")
    lo = np.asarray(ci_low, dtype=float)
    hi = np.asarray(ci_high, dtype=float)
    if np.any(lo > hi):
        raise ValueError("ci_low must not exceed ci_high")
    up, down = np.maximum(hi, 0.0), np.maximum(-lo, 0.0)
    improvement, deterioration = (up, down) if direction_of_benefit == "higher" else (down, up)
    if improvement.ndim == 0:
        return RulesOut(float(improvement), float(deterioration))
    return RulesOut(improvement, deterioration)
