"""Minimum detectable effect of the matched design, calibrated by simulation (issue 13).

With a handful of treated LAs, the primary inference (the restricted wild cluster
bootstrap) loses power in ways no normal approximation or shifted null distribution
captures: the bootstrap's own spread grows with the effect it is testing. So the
minimum detectable effect (MDE) is found the way a reader would check it: on many
panels shaped like the real matched sample (its LAs, years, cohorts, matching weights
and missing cells), with noise whose size and serial correlation are taken from the
real data, plant an effect on the pilots' treated years, run the primary inference,
and find the effect that is detected (5%, two-sided) four times in five.

Three facts make this cheap (well under 1 ms per simulated panel):

* the LA and year effects of the real data are absorbed by the fixed effects, so a
  simulated panel needs only its noise;
* testing "no effect" on ``noise + delta * treated`` is testing ``beta = -delta`` on the
  noise alone (the same restricted residuals, the same t statistic), and the bootstrap
  p-value is affine in the null value (:meth:`WildClusterBootstrap.pvalues`), so one
  bootstrap per panel gives the whole power curve;
* the bootstrap's pieces are linear in the outcome, so a block of panels is one batched
  matrix product (:meth:`WildClusterBootstrap.many_outcomes`).

``benchmarks/mde_calibration.py`` checks the result the slow way: fresh panels, the
effect planted, one bootstrap per panel with its own draws.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from analysis.methods.estimation import FWLDesign, Panel
from analysis.methods.inference import BootstrapBatch, WildClusterBootstrap

__all__ = ["NoiseModel", "SimulatedPower", "noise_model", "simulate_noise", "simulated_mde",
           "simulated_power"]


@dataclass(frozen=True)
class NoiseModel:
    """Noise of a panel around its two-way fixed effects difference-in-differences fit.

    Attributes
    ----------
    unit_effects : ndarray (n_units,)
        Fitted LA effects, in the panel's unit order.
    period_effects : ndarray (n_periods,)
        Fitted year effects, in the panel's period order.
    unit_sd : ndarray (n_units,)
        Each LA's residual standard deviation, shrunk towards the pooled one.
    sd : float
        Pooled residual standard deviation (degrees of freedom corrected).
    rho : float
        First-order serial correlation within an LA (consecutive years), corrected for the
        downward bias of residuals around LA means.
    """

    unit_effects: np.ndarray
    period_effects: np.ndarray
    unit_sd: np.ndarray
    sd: float
    rho: float

    @property
    def rms_sd(self) -> float:
        """Root mean square of the LAs' standard deviations."""
        return float(np.sqrt(np.mean(self.unit_sd ** 2)))


def noise_model(panel: Panel, *, shrink: float = 2.0, tol: float = 1e-10, max_iter: int = 1000) -> NoiseModel:
    """Estimate the noise of ``panel`` around its difference-in-differences fit.

    The residuals are those of ``y ~ LA + year + tau * treated`` over every cell
    (unweighted), so the pilots' departures from their average effect count as noise:
    that is the heterogeneity the wild bootstrap's null distribution carries too.

    Parameters
    ----------
    panel : Panel
        The estimation sample (rows with a missing outcome already dropped).
    shrink : float, optional
        Each LA's residual variance is shrunk towards the pooled one with the weight of
        this many observations, so a short series cannot have a zero SD.
    tol, max_iter
        Convergence of the alternating projections.

    Returns
    -------
    NoiseModel
    """
    y = np.asarray(panel.y, float)
    ui, ti = panel.unit_index, panel.time_index
    G, T = panel.n_units, panel.n_periods
    d = np.asarray(panel.treatment, float)
    n_u = np.bincount(ui, minlength=G).astype(float)
    n_t = np.bincount(ti, minlength=T).astype(float)
    a, g, tau = np.zeros(G), np.zeros(T), 0.0
    nd = max(d.sum(), 1.0)
    for _ in range(max_iter):  # alternating projections: LA effects, year effects, the DiD effect
        g = np.bincount(ti, y - tau * d - a[ui], minlength=T) / np.maximum(n_t, 1)
        a_new = np.bincount(ui, y - tau * d - g[ti], minlength=G) / np.maximum(n_u, 1)
        tau_new = float(np.sum(d * (y - a_new[ui] - g[ti])) / nd)
        done = np.max(np.abs(a_new - a)) < tol and abs(tau_new - tau) < tol
        a, tau = a_new, tau_new
        if done:
            break
    resid = y - tau * d - a[ui] - g[ti]
    sd = math.sqrt(float(np.sum(resid ** 2)) / max(len(resid) - G - T, 1))
    order = np.lexsort((ti, ui))
    r, u, t = resid[order], ui[order], np.asarray(panel.times, float)[ti[order]]
    consecutive = (u[1:] == u[:-1]) & (t[1:] - t[:-1] == 1)
    rho = float(np.corrcoef(r[1:][consecutive], r[:-1][consecutive])[0, 1]) if consecutive.sum() > 2 else 0.0
    if not np.isfinite(rho):
        rho = 0.0
    # Residuals around LA means are serially correlated by construction: with T years
    # the estimate is biased by about -(1 + rho) / (T - 1) (Nickell 1981), which would
    # make the simulated noise too favourable to a difference-in-differences (negative
    # correlation shrinks the pre/post contrast). Undo it at the mean series length.
    t_bar = float(np.mean(n_u))
    if t_bar > 2:
        rho = float(np.clip((rho * (t_bar - 1) + 1) / (t_bar - 2), -0.95, 0.95))
    ss = np.bincount(ui, resid ** 2, minlength=G)
    unit_sd = np.sqrt((ss + shrink * sd ** 2) / (n_u + shrink))
    return NoiseModel(unit_effects=a, period_effects=g, unit_sd=unit_sd, sd=sd, rho=rho)


def simulate_noise(model: NoiseModel, panel: Panel, panels: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``panels`` noise vectors at the panel's cells: stationary AR(1) within each LA.

    Each LA has its own standard deviation and the common correlation; the series
    runs over the panel's periods in order. Returns an array (panels, n_obs).
    """
    G, T = panel.n_units, panel.n_periods
    sd, rho = model.unit_sd, model.rho
    e = np.empty((panels, G, T))
    e[:, :, 0] = rng.standard_normal((panels, G)) * sd
    innovation = sd * math.sqrt(max(1.0 - rho ** 2, 0.0))
    for t in range(1, T):
        e[:, :, t] = rho * e[:, :, t - 1] + rng.standard_normal((panels, G)) * innovation
    return e[:, panel.unit_index, panel.time_index]


@dataclass(frozen=True)
class SimulatedPower:
    """Power of the primary inference by simulation, and the effect detected 80% of the time.

    Attributes
    ----------
    mde : float
        Smallest effect detected with the target power (linear interpolation on the
        grid); NaN when even the largest effect tried is not.
    effects : ndarray
        The effects tried (measure units, positive).
    power : ndarray
        Share of simulated panels in which each effect was found.
    panels : int
        Number of simulated panels.
    noise : NoiseModel
    """

    mde: float
    effects: np.ndarray
    power: np.ndarray
    panels: int
    noise: NoiseModel

    def power_at(self, effects: np.ndarray | float) -> np.ndarray:
        """Power at other effects, by linear interpolation on the grid (|effect|)."""
        return np.interp(np.abs(np.asarray(effects, float)), self.effects, self.power)


class _SimulatedBootstraps:
    """One wild bootstrap per simulated noise panel; the share rejecting at any planted effect."""

    def __init__(self, panel: Panel, model: NoiseModel, *, panels: int, draws: int, weight_type: str,
                 alpha: float, seed: int) -> None:
        rng = np.random.default_rng(seed)
        design = FWLDesign.build(panel, panel.treatment[:, None], ["treated"])
        self.alpha, self.panels = alpha, panels
        self.batches: list[BootstrapBatch] = []
        for block, start in enumerate(range(0, panels, 100)):
            # Each block of 100 panels has its own bootstrap draws, so the power does not
            # rest on one set of draws; within a block the panels are one batch.
            wb = WildClusterBootstrap(design, np.ones((1, 1)), draws=draws, weight_type=weight_type,
                                      seed=seed + block)
            self.batches.append(wb.many_outcomes(simulate_noise(model, panel, min(100, panels - start), rng)))

    def power(self, effects: np.ndarray) -> np.ndarray:
        effects = np.asarray(effects, float).reshape(-1)
        # "no effect" on e + delta * treated is "beta = -delta" on e (module docstring)
        found = sum((b.pvalues(-effects) <= self.alpha).sum(0) for b in self.batches)
        return np.asarray(found, float) / self.panels


def simulated_power(panel: Panel, effects: np.ndarray, *, model: NoiseModel | None = None,
                    panels: int = 1000, draws: int = 999, weight_type: str = "webb",
                    alpha: float = 0.05, seed: int = 0) -> np.ndarray:
    """Share of simulated panels in which the wild bootstrap finds each planted effect.

    Parameters
    ----------
    panel : Panel
        The real estimation sample: its rows, weights and treated cells are kept.
    effects : array_like
        Effects to plant on the treated cells (measure units).
    model : NoiseModel, optional
        Noise to draw; by default :func:`noise_model` of ``panel``.
    panels, draws, weight_type, alpha, seed
        Number of simulated panels; the bootstrap's draws and weights (as the primary
        inference); the test's size; the seed of the noise and of the draws.

    Returns
    -------
    ndarray
        Power at each effect.
    """
    sims = _SimulatedBootstraps(panel, model or noise_model(panel), panels=panels, draws=draws,
                                weight_type=weight_type, alpha=alpha, seed=seed)
    return sims.power(effects)


def simulated_mde(panel: Panel, *, power: float = 0.8, panels: int = 1000, draws: int = 999,
                  weight_type: str = "webb", alpha: float = 0.05, seed: int = 0,
                  grid_points: int = 16, refine_points: int = 9) -> SimulatedPower:
    """The effect the primary inference finds with probability ``power``, by simulation.

    A coarse grid runs from 0 to three times the normal-approximation MDE (``2.8 x`` the
    cluster-robust standard error of the real data); it is widened (up to three
    doublings) when even its largest effect is found less often than ``power``. The
    step in which the power curve crosses ``power`` is then divided by
    ``refine_points`` more effects, and the MDE is interpolated linearly within the
    finer step. Every effect is tested on the same simulated panels, so the power curve
    is smooth and the MDE has little Monte Carlo noise beyond that of the panels.

    Parameters
    ----------
    panel : Panel
        The real estimation sample.
    power : float, optional
        Target power.
    panels, draws, weight_type, alpha, seed
        As in :func:`simulated_power`.
    grid_points, refine_points : int, optional
        Effects on the coarse grid, and added inside the step where the curve crosses.

    Returns
    -------
    SimulatedPower
    """
    model = noise_model(panel)
    sims = _SimulatedBootstraps(panel, model, panels=panels, draws=draws, weight_type=weight_type,
                                alpha=alpha, seed=seed)
    design = FWLDesign.build(panel, panel.treatment[:, None], ["treated"])
    se = math.sqrt(float(design.vcov[0, 0]))
    top = 3.0 * 2.8 * (se if np.isfinite(se) and se > 0 else model.sd)
    for _ in range(4):
        effects = np.linspace(0.0, top, grid_points)
        pw = sims.power(effects)
        if pw[-1] >= power:
            break
        top *= 2.0
    hit = np.flatnonzero(pw >= power)
    if len(hit) and hit[0] > 0:
        j = hit[0]
        inner = np.linspace(effects[j - 1], effects[j], refine_points + 2)[1:-1]
        effects = np.concatenate([effects, inner])
        pw = np.concatenate([pw, sims.power(inner)])
        order = np.argsort(effects, kind="stable")
        effects, pw = effects[order], pw[order]
        hit = np.flatnonzero(pw >= power)
    if len(hit) == 0:
        mde = math.nan
    elif hit[0] == 0:
        mde = 0.0
    else:
        j = hit[0]
        mde = float(effects[j - 1] + (power - pw[j - 1]) / (pw[j] - pw[j - 1]) * (effects[j] - effects[j - 1]))
    return SimulatedPower(mde=mde, effects=effects, power=pw, panels=panels, noise=model)
