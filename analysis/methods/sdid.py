"""Synthetic difference-in-differences and synthetic control.

Arkhangelsky, Athey, Hirshberg, Imbens and Wager (2021), *Synthetic
Difference-in-Differences*, American Economic Review 111(12), 4088-4118.

The weights are computed exactly as in the reference R package ``synthdid``
(``synthdid_estimate``, ``sc_estimate``, ``did_estimate``): the collapsed
(N0+1) x (T0+1) form, regularisation ``zeta_omega = (N_tr T_post)^(1/4) sigma``
and ``zeta_lambda = 1e-6 sigma`` with ``sigma`` the standard deviation of the
first differences of the control outcomes in the pre-period, intercepts in both
weight problems, Frank-Wolfe with exact line search stopped when an iteration
decreases the objective by ``(1e-5 sigma)^2`` or less, 100 iterations, the
``sparsify`` step (weights at most a quarter of the largest set to zero) and a
second pass of at most 10 000 iterations.  Synthetic control is the same solver
with no time weights, no unit intercept and ``zeta = 1e-6 sigma``; plain DiD
uses uniform weights.

Staggered adoption (:func:`sdid`): each adoption cohort is estimated against the
never-treated units only (units treated later never serve as controls of an
earlier cohort), with the periods before its onset as pre-period and all
periods from its onset as post-period, and the cohort estimates are averaged
with weights ``N_tr T_post``, as Stata's ``sdid`` (Clarke, Pailanir, Athey and
Imbens) and the paper's appendix.  Inference follows the reference ``vcov``:
the placebo variance (Algorithm 4) and the fixed-weights jackknife (Algorithm 3).
:func:`per_unit_placebo` estimates each treated unit alone with placebo-in-space
inference (Abadie, Diamond and Hainmueller 2010).

The Frank-Wolfe solver works on a stack of problems at once (every array has a
leading problem axis), taking the same iterations as the reference for each
problem; placebo draws, per-unit placebos and adoption cohorts are solved
together, which is what makes the placebo inference affordable (the reference
solves its 10 000-iteration problems one at a time).

This module imports only numpy, scipy and pandas: frames in, numbers out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Hashable, Sequence

import numpy as np
import pandas as pd
from scipy import stats

__all__ = [
    "ESTIMATORS", "INFERENCE", "CohortFit", "MatrixFit", "SDIDResult",
    "sdid", "per_unit_placebo", "synthdid_matrix", "placebo_se", "jackknife_se",
    "frank_wolfe", "sparsify",
]

ESTIMATORS = ("sdid", "sc", "did")
INFERENCE = ("placebo", "jackknife", "none")

#: The reference package's tuning constants (``synthdid_estimate`` defaults).
MIN_DECREASE = 1e-5          # min_decrease = 1e-5 * noise level
MAX_ITER = 10_000            # second Frank-Wolfe pass
MAX_ITER_PRE_SPARSIFY = 100  # first pass, before sparsify
ETA_LAMBDA = 1e-6            # zeta_lambda = 1e-6 * noise level
ETA_SC = 1e-6                # synthetic control: zeta_omega = 1e-6 * noise level

#: The project's default seed for resampling inference (as analysis.methods.inference).
DEFAULT_SEED = 20210129


# --------------------------------------------------------------------------
# Frank-Wolfe on a stack of problems
# --------------------------------------------------------------------------

def sparsify(v: np.ndarray) -> np.ndarray:
    """The reference ``sparsify_function``, row by row.

    Weights no larger than a quarter of the row's largest are set to zero and the
    row is renormalised to sum to one.

    Parameters
    ----------
    v : ndarray, shape (k,) or (P, k)

    Returns
    -------
    ndarray of the same shape.
    """
    a = np.array(v, dtype=float, copy=True)
    rows = np.atleast_2d(a)
    rows[rows <= rows.max(axis=1, keepdims=True) / 4.0] = 0.0
    tot = rows.sum(axis=1, keepdims=True)
    zero = tot[:, 0] == 0
    if zero.any():
        rows[zero] = 1.0 / rows.shape[1]
        tot[zero] = 1.0
    rows /= tot
    return rows.reshape(a.shape)


def frank_wolfe(D: np.ndarray, B: np.ndarray, x0: np.ndarray, *, zeta: Any,
                min_decrease: Any, max_iter: int, nrows: Any,
                colmask: np.ndarray | None = None, rowmask: np.ndarray | None = None,
                mu: np.ndarray | None = None, blocks: np.ndarray | None = None,
                block_rows: Sequence[tuple[int, int]] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Frank-Wolfe with exact line search on a stack of simplex-constrained ridge problems.

    Problem ``p`` minimises ``zeta_p^2 |x|^2 + |A_p x - b_p|^2 / n_p`` over the
    simplex of its allowed columns, where ``A_p = (D - mu_p) * rowmask_p`` (rows
    outside ``rowmask_p`` are zero) and ``b_p = B[p]`` (zero outside its rows).  Each
    problem takes the iterations of the reference ``sc.weight.fw`` / ``fw.step``:
    step towards the vertex minimising the half-gradient ``A'(Ax - b) + n zeta^2 x``,
    exact line search clipped to [0, 1], stop after ``max_iter`` iterations or when
    an iteration decreases the objective by ``min_decrease^2`` or less.  Problems
    that stop leave the working set, so the cost follows the slowest problem.

    Parameters
    ----------
    D : ndarray, shape (n, k)
        Shared design: rows are the observations, columns the weights.
    B : ndarray, shape (P, n)
        Targets, already centred where the problem has an intercept.
    x0 : ndarray, shape (P, k)
        Starting weights (zero on columns a problem may not use).
    zeta, min_decrease, nrows : float or ndarray (P,)
        Regularisation, stopping threshold and number of rows ``n_p`` of each problem.
    max_iter : int
    colmask : ndarray of bool, shape (P, k), optional
        Columns each problem may use (default all).
    rowmask : ndarray, shape (P, n), optional
        Rows of each problem (1/0; default all).
    mu : ndarray, shape (P, k), optional
        Column offsets subtracted from ``D`` for each problem (the intercept of a
        problem whose rows differ from the others'); default none.
    blocks, block_rows : ndarray of int (P,), sequence of (start, stop)
        Alternative to ``rowmask`` when the problems use blocks of rows: problem
        ``p`` uses rows ``block_rows[blocks[p]]`` of ``D`` only (and only those
        rows enter its products).

    Returns
    -------
    x : ndarray (P, k)
        The weights.
    n_iter : ndarray of int (P,)
        Iterations taken by each problem.
    """
    P, k = x0.shape
    x = np.array(x0, dtype=float, copy=True)
    n_iter = np.zeros(P, dtype=np.int64)
    if P == 0 or max_iter <= 0:
        return x, n_iter
    if blocks is not None:
        blocks = np.asarray(blocks, dtype=np.int64)
        rowmask = np.zeros((P, D.shape[0]))
        for b, (lo, hi) in enumerate(block_rows):
            rowmask[blocks == b, lo:hi] = 1.0
        if P <= _SMALL_BATCH or len(block_rows) < 2:
            blocks = None
        elif np.any(np.diff(blocks) < 0):     # solve with the problems sorted by block
            order = np.argsort(blocks, kind="stable")

            def per(a):
                return a if np.ndim(a) == 0 else np.asarray(a)[order]

            xs, ns = frank_wolfe(D, per(B), per(x0), zeta=per(zeta),
                                 min_decrease=per(min_decrease), max_iter=max_iter,
                                 nrows=per(nrows),
                                 colmask=None if colmask is None else per(colmask),
                                 mu=None if mu is None else per(mu), blocks=blocks[order],
                                 block_rows=block_rows)
            x[order], n_iter[order] = xs, ns
            return x, n_iter
    if P <= _SMALL_BATCH:   # a loop over problems is faster than the batch
        ones = np.ones(P)
        args = [np.asarray(a, dtype=float) * ones for a in (zeta, min_decrease, nrows)]
        for p in range(P):
            rows = slice(None) if rowmask is None else np.flatnonzero(rowmask[p])
            cols = slice(None) if colmask is None else np.flatnonzero(colmask[p])
            A = np.asarray(D, dtype=float)[rows][:, cols]
            if mu is not None:
                A = A - np.asarray(mu, dtype=float)[p, cols]
            x[p, cols], n_iter[p] = _fw_one(A, np.asarray(B, dtype=float)[p, rows],
                                            x[p, cols], args[0][p], args[1][p],
                                            max_iter, args[2][p])
        return x, n_iter
    ones = np.ones(P)
    z2 = np.asarray(zeta, dtype=float) ** 2 * ones
    nr = np.asarray(nrows, dtype=float) * ones
    eta = nr * z2
    md2 = (np.asarray(min_decrease, dtype=float) * ones) ** 2
    D = np.ascontiguousarray(D, dtype=float)
    DT = np.ascontiguousarray(D.T)
    bw = np.array(B, dtype=float)
    rm = None if rowmask is None else np.asarray(rowmask, dtype=float)
    cm = (np.ones((P, k), bool) if colmask is None
          else np.asarray(colmask, dtype=bool) & np.ones((P, k), bool))
    mw = None if mu is None else np.asarray(mu, dtype=float)
    rw = x @ DT
    if mw is not None:
        rw -= np.vecdot(mw, x)[:, None]
    if rm is not None:
        rw *= rm
    rw -= bw
    # x = c * S / e with one scalar c per problem, so that the step
    # x <- (1 - s) x + s e_i changes c and one entry of S only; with e = eta the
    # ridge term eta x of the half-gradient is c S, so the half-gradient over c is
    # (r / c)' A + S, and columns a problem may not use hold S = inf.
    fold = bool(np.all(eta > 0))
    e = eta.copy() if fold else ones.copy()
    S = x * e[:, None]
    if fold:
        S[~cm] = np.inf
    mflat = None if fold or cm.all() else np.flatnonzero(~cm)
    c = np.ones(P)
    ce = 1.0 / e
    xx = np.vecdot(x, x)
    idx = np.arange(P)
    ar = np.arange(P)
    hg = np.empty((P, k))
    tmp = None if fold else np.empty((P, k))
    prev = None
    it = 0
    if blocks is not None:
        bw_id = blocks
        bounds = np.searchsorted(bw_id, np.arange(len(block_rows) + 1))

    def write(rows, sel):
        xs = S[sel] * ce[sel, None]
        x[rows] = np.where(cm[sel], xs, 0.0)
        n_iter[rows] = it

    while True:
        # half-gradient A'(Ax - b) + eta x, divided by c
        ic = 1.0 / c
        if blocks is None:
            _matmul_rows(rw * ic[:, None], D, hg)
        else:               # each problem's own rows only
            rs = rw * ic[:, None]
            for b, (lo, hi) in enumerate(block_rows):
                s0, s1 = bounds[b], bounds[b + 1]
                if s1 > s0:
                    _matmul_rows(rs[s0:s1, lo:hi], D[lo:hi], hg[s0:s1])
        if mw is not None:
            hg -= (np.add.reduce(rw, axis=1) * ic)[:, None] * mw
        if fold:
            hg += S
        else:
            np.multiply(S, eta[:, None], out=tmp)
            hg += tmp
            if mflat is not None:
                hg.reshape(-1)[mflat] = np.inf
        i = hg.argmin(axis=1)
        Si = S[ar, i]
        xi = ce * Si
        Ax = rw + bw
        derr = DT[i]
        if mw is not None:
            derr -= mw[ar, i][:, None]
        if rm is not None:
            derr *= rm
        derr -= Ax
        # -half_grad . d_x with d_x = e_i - x, and half_grad . x = r.Ax + eta |x|^2
        num = np.vecdot(rw, Ax) + eta * xx - c * hg[ar, i]
        den = np.vecdot(derr, derr) + eta * (xx - 2.0 * xi + 1.0)
        if fold:
            # den > 0 unless x = e_i, where every step leaves x unchanged
            np.maximum(den, 1e-300, out=den)
            step = num / den
        else:
            step = np.zeros(idx.size)
            np.divide(num, den, out=step, where=den > 0)
        np.minimum(np.maximum(step, 0.0, out=step), 1.0, out=step)
        om = 1.0 - step
        c *= om
        ce *= om
        if c.min() < 1e-100:
            small = np.flatnonzero(c < 1e-100)
            with np.errstate(invalid="ignore"):
                S[small] = np.where(cm[small], S[small] * c[small, None], S[small])
            ce[small] = 1.0 / e[small]
            c[small] = 1.0
            Si = S[ar, i]
        S[ar, i] = Si + step / ce
        derr *= step[:, None]
        rw += derr
        xx = om * om * xx + step * (2.0 * om * xi + step)
        val = z2 * xx + np.vecdot(rw, rw) / nr
        it += 1
        if it >= max_iter:
            write(idx, slice(None))
            break
        if prev is not None:
            go = (prev - val) > md2
            if not go.all():
                write(idx[~go], ~go)
                if not go.any():
                    break
                idx = idx[go]
                S, c, ce, rw, bw, xx, val = S[go], c[go], ce[go], rw[go], bw[go], xx[go], val[go]
                eta, z2, md2, nr, e, cm = eta[go], z2[go], md2[go], nr[go], e[go], cm[go]
                if rm is not None:
                    rm = rm[go]
                if blocks is not None:
                    bw_id = bw_id[go]
                    bounds = np.searchsorted(bw_id, np.arange(len(block_rows) + 1))
                if mw is not None:
                    mw = mw[go]
                if mflat is not None:
                    mflat = np.flatnonzero(~cm)
                ar = np.arange(idx.size)
                hg = np.empty((idx.size, k))
                tmp = None if fold else np.empty((idx.size, k))
        prev = val
    return x, n_iter


_SMALL_BATCH = 3
#: Row blocks of the solver's matrix products stay below the size at which OpenBLAS
#: starts threads: a threaded product of this shape is slower, and on a busy
#: machine a hundred times slower.
_BLOCK = 2 ** 17


def _matmul_rows(a: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out[:] = a @ b`` in blocks of rows."""
    step = max(1, _BLOCK // max(1, b.size))
    if a.shape[0] <= step:
        np.matmul(a, b, out=out)
        return
    for s in range(0, a.shape[0], step):
        np.matmul(a[s:s + step], b, out=out[s:s + step])


def _fw_one(A: np.ndarray, b: np.ndarray, x: np.ndarray, zeta: float, min_decrease: float,
            max_iter: int, nrows: float) -> tuple[np.ndarray, int]:
    """One problem of :func:`frank_wolfe` (explicit ``A``), scalars in Python floats."""
    A = np.ascontiguousarray(A)
    AT = np.ascontiguousarray(A.T)
    x = np.array(x, dtype=float, copy=True)
    z2 = float(zeta) ** 2
    nr = float(nrows)
    eta = nr * z2
    md2 = float(min_decrease) ** 2
    Ax = A @ x
    r = Ax - b
    xx = float(x @ x)
    prev = None
    it = 0
    while it < max_iter:
        hg = r @ A
        hg += eta * x
        i = int(hg.argmin())
        xi = float(x[i])
        derr = AT[i] - Ax
        num = float(r @ Ax) + eta * xx - float(hg[i])
        den = float(derr @ derr) + eta * (xx - 2.0 * xi + 1.0)
        step = min(1.0, max(0.0, num / den)) if den > 0 else 0.0
        om = 1.0 - step
        x *= om
        x[i] += step
        derr *= step
        Ax += derr
        r += derr
        xx = om * om * xx + step * (2.0 * om * xi + step)
        val = z2 * xx + float(r @ r) / nr
        it += 1
        if prev is not None and not prev - val > md2:
            break
        prev = val
    return x, it


def _two_pass(D, B, x0, **kw) -> np.ndarray:
    """The reference's two rounds: 100 iterations, sparsify, then up to 10 000."""
    max_iter = kw.pop("max_iter", MAX_ITER)
    pre = kw.pop("max_iter_pre_sparsify", MAX_ITER_PRE_SPARSIFY)
    x, _ = frank_wolfe(D, B, x0, max_iter=pre, **kw)
    x, _ = frank_wolfe(D, B, sparsify(x), max_iter=max_iter, **kw)
    return x


# --------------------------------------------------------------------------
# The estimator on a stack of problems sharing a pool of candidate controls
# --------------------------------------------------------------------------

@dataclass
class _Fits:
    tau: np.ndarray          # (P,)
    omega: np.ndarray        # (P, M), zero outside the problem's controls
    lam: np.ndarray          # (P, K), K = max t0, zero after the problem's t0
    noise: np.ndarray
    zeta_omega: np.ndarray
    zeta_lambda: np.ndarray
    min_decrease: np.ndarray
    pre_rmse: np.ndarray
    post_rmspe: np.ndarray


def _noise_level(Y: np.ndarray, ctrl: np.ndarray, t0: np.ndarray) -> np.ndarray:
    """Sd of first differences of the controls' pre-period outcomes (ddof 1), per problem."""
    out = np.empty(len(t0))
    for p in range(len(t0)):
        d = np.diff(Y[ctrl[p], :t0[p]], axis=1)
        out[p] = float(np.std(d, ddof=1)) if d.size > 1 else np.nan
    return out


def _solve(Y: np.ndarray, t0: np.ndarray, ctrl: np.ndarray, ybar: np.ndarray,
           n1: np.ndarray, estimator: str, *, zeta_omega: np.ndarray | None = None,
           zeta_lambda: np.ndarray | None = None, min_decrease: np.ndarray | None = None,
           omega0: np.ndarray | None = None, lambda0: np.ndarray | None = None,
           max_iter: int = MAX_ITER,
           max_iter_pre_sparsify: int = MAX_ITER_PRE_SPARSIFY) -> _Fits:
    """Fit ``P`` block problems: treated mean ``ybar[p]`` against pool rows ``ctrl[p]``.

    ``Y`` is the (M, T) pool of candidate controls; problem ``p`` has its first
    ``t0[p]`` periods as pre-period and the rest as post-period, ``n1[p]`` treated
    units averaging to ``ybar[p]``.  Given ``zeta_*``/``min_decrease`` (the
    reference's ``opts``) they are used as they are, otherwise computed from the
    data; ``omega0``/``lambda0`` start the solver (the reference's ``weights`` with
    ``update = TRUE``).
    """
    M, T = Y.shape
    t0 = np.asarray(t0, dtype=np.int64)
    P = t0.size
    ctrl = np.asarray(ctrl, dtype=bool)
    n0 = ctrl.sum(axis=1)
    t1 = T - t0
    K = int(t0.max())
    need = zeta_omega is None or zeta_lambda is None or min_decrease is None
    noise = _noise_level(Y, ctrl, t0) if need and estimator != "did" else np.full(P, np.nan)
    if need and estimator != "did" and not np.all(np.isfinite(noise)):
        raise ValueError("cannot estimate the noise level: need two or more first "
                         "differences of control outcomes in the pre-period")
    if estimator == "sdid":
        zo = (n1 * t1) ** 0.25 * noise if zeta_omega is None else np.asarray(zeta_omega, float)
    else:
        zo = ETA_SC * noise if zeta_omega is None else np.asarray(zeta_omega, float)
    zl = ETA_LAMBDA * noise if zeta_lambda is None else np.asarray(zeta_lambda, float)
    md = MIN_DECREASE * noise if min_decrease is None else np.asarray(min_decrease, float)
    pre_cols = np.arange(K)[None, :] < t0[:, None]
    groups, gidx = np.unique(t0, return_inverse=True)

    # ---- time weights
    if estimator == "sdid":
        D = Y[:, :K] - Y[:, :K].mean(axis=0)      # pool-centred for precision
        w = ctrl / n0[:, None]
        mu = w @ D                                  # each problem's own centring
        post_mean = np.stack([Y[:, g:].mean(axis=1) for g in groups])[gidx]   # (P, M)
        b = (post_mean - np.einsum("pm,pm->p", w, post_mean)[:, None]) * ctrl
        x0 = pre_cols / t0[:, None] if lambda0 is None else np.asarray(lambda0, float)
        lam = _two_pass(D, b, x0, zeta=zl, min_decrease=md, nrows=n0, colmask=pre_cols,
                        rowmask=ctrl, mu=mu, max_iter=max_iter,
                        max_iter_pre_sparsify=max_iter_pre_sparsify)
    elif estimator == "sc":
        lam = np.zeros((P, K))
    else:
        lam = pre_cols / t0[:, None]

    # ---- unit weights
    if estimator in ("sdid", "sc"):
        intercept = estimator == "sdid"
        offs = np.concatenate([[0], np.cumsum(groups)])
        blocks = []
        for g in groups:
            blk = Y[:, :g].T
            blocks.append(blk - blk.mean(axis=0) if intercept else blk)
        Dx = np.vstack(blocks)                                          # (sum t0, M)
        B = np.zeros((P, offs[-1]))
        for p in range(P):
            lo, g = offs[gidx[p]], t0[p]
            bp = ybar[p, :g]
            B[p, lo:lo + g] = bp - bp.mean() if intercept else bp
        x0 = ctrl / n0[:, None] if omega0 is None else np.asarray(omega0, float)
        omega = _two_pass(Dx, B, x0, zeta=zo, min_decrease=md, nrows=t0, colmask=ctrl,
                          blocks=gidx if len(groups) > 1 else None,
                          block_rows=list(zip(offs[:-1], offs[1:])), max_iter=max_iter,
                          max_iter_pre_sparsify=max_iter_pre_sparsify)
    else:
        omega = ctrl / n0[:, None]

    # ---- estimate and fit diagnostics
    tc = np.zeros((P, T))
    tc[:, :K] = -lam
    post = np.arange(T)[None, :] >= t0[:, None]
    tc[post] = np.repeat(1.0 / t1, t1)
    tau = np.einsum("pt,pt->p", ybar, tc) - np.einsum("pm,pm->p", omega, tc @ Y.T)
    gap = ybar - omega @ Y
    pre = ~post
    off = (np.where(pre, gap, 0.0).sum(axis=1) / t0) if estimator != "sc" else np.zeros(P)
    dev2 = (gap - off[:, None]) ** 2
    pre_rmse = np.sqrt(np.where(pre, dev2, 0.0).sum(axis=1) / t0)
    post_rmspe = np.sqrt(np.where(post, dev2, 0.0).sum(axis=1) / t1)
    return _Fits(tau=tau, omega=omega, lam=lam, noise=noise, zeta_omega=zo * np.ones(P),
                 zeta_lambda=zl * np.ones(P), min_decrease=md * np.ones(P),
                 pre_rmse=pre_rmse, post_rmspe=post_rmspe)


# --------------------------------------------------------------------------
# Matrix interface (the reference package's Y, N0, T0)
# --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class MatrixFit:
    """A block estimate on an outcome matrix: controls first, pre-periods first.

    Attributes
    ----------
    estimate : float
    omega : ndarray (N0,)
        Unit weights.
    lambda_ : ndarray (T0,)
        Time weights (zero for synthetic control).
    estimator : str
    noise_level, zeta_omega, zeta_lambda, min_decrease : float
        The regularisation and stopping rule used (the reference's ``opts``).
    pre_rmse : float
        Root mean squared pre-period gap between the treated mean and the
        omega-weighted controls, net of the mean pre-period gap for sdid/did (their
        unit weights have an intercept) and raw for sc.
    post_rmspe : float
        The same gap over the post-period (net of the same offset).
    max_iter : int
        Iteration cap used (part of the reference's ``opts``).
    """

    estimate: float
    omega: np.ndarray
    lambda_: np.ndarray
    estimator: str
    noise_level: float
    zeta_omega: float
    zeta_lambda: float
    min_decrease: float
    pre_rmse: float
    post_rmspe: float
    max_iter: int = MAX_ITER


def _check_matrix(Y: Any, N0: int, T0: int, estimator: str) -> np.ndarray:
    Y = np.asarray(Y, dtype=float)
    if Y.ndim != 2:
        raise ValueError(f"Y must be a matrix, got shape {Y.shape}")
    N, T = Y.shape
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if not 0 < N0 < N:
        raise ValueError(f"need at least one control and one treated row: N={N}, N0={N0}")
    min_t0 = 1 if estimator == "did" else 2
    if not min_t0 <= T0 < T:
        raise ValueError(f"need {min_t0}+ pre-periods and a post-period: T={T}, T0={T0}")
    if not np.all(np.isfinite(Y)):
        raise ValueError("Y has missing or infinite values")
    return Y


def synthdid_matrix(Y: Any, N0: int, T0: int, estimator: str = "sdid", *,
                    zeta_omega: float | None = None, zeta_lambda: float | None = None,
                    min_decrease: float | None = None, max_iter: int = MAX_ITER) -> MatrixFit:
    """SDID, synthetic control or DiD on an outcome matrix, as the reference package.

    Parameters
    ----------
    Y : array_like, shape (N, T)
        Rows ``0..N0-1`` are controls, columns ``0..T0-1`` the pre-period.
    N0, T0 : int
    estimator : {"sdid", "sc", "did"}
        ``synthdid_estimate``, ``sc_estimate`` or ``did_estimate``.
    zeta_omega, zeta_lambda, min_decrease : float, optional
        Override the data-driven values.
    max_iter : int
        Iteration cap of the second Frank-Wolfe pass (the reference's 10 000; lower
        values trade agreement with the reference for speed).

    Returns
    -------
    MatrixFit
    """
    Y = _check_matrix(Y, N0, T0, estimator)
    fits = _solve(Y[:N0], np.array([T0]), np.ones((1, N0), bool), Y[N0:].mean(axis=0)[None],
                  np.array([Y.shape[0] - N0]), estimator,
                  zeta_omega=None if zeta_omega is None else np.array([zeta_omega]),
                  zeta_lambda=None if zeta_lambda is None else np.array([zeta_lambda]),
                  min_decrease=None if min_decrease is None else np.array([min_decrease]),
                  max_iter=max_iter)
    return _matrix_fit(fits, 0, T0, estimator, max_iter)


def _matrix_fit(f: _Fits, p: int, t0: int, estimator: str, max_iter: int) -> MatrixFit:
    return MatrixFit(estimate=float(f.tau[p]), omega=f.omega[p].copy(),
                     lambda_=f.lam[p, :t0].copy(), estimator=estimator, max_iter=max_iter,
                     noise_level=float(f.noise[p]),
                     zeta_omega=float(f.zeta_omega[p]), zeta_lambda=float(f.zeta_lambda[p]),
                     min_decrease=float(f.min_decrease[p]), pre_rmse=float(f.pre_rmse[p]),
                     post_rmspe=float(f.post_rmspe[p]))


# --------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------

@dataclass
class _Cohort:
    """One adoption cohort in pool coordinates (internal)."""

    t0: int
    treated: np.ndarray      # row indices into the full matrix of treated units
    fit: MatrixFit           # omega over the never-treated pool


def _placebo_draws(Yc: np.ndarray, cohorts: Sequence[_Cohort], shares: np.ndarray,
                   draws: int, rng: np.random.Generator, estimator: str) -> np.ndarray:
    """Placebo estimates (reference ``placebo_se``, Algorithm 4), one per draw.

    Each draw permutes the never-treated rows of ``Yc``; the first ``N0 - N_tr``
    remain controls and the last ``N_tr`` become placebo-treated, taking the
    cohorts of the real treated units in order.  Each cohort is re-estimated with
    its own regularisation and stopping rule and with its fitted weights as the
    solver's start (the unit weights restricted to the remaining controls and
    renormalised), as the reference's ``refit``; the cohort estimates are
    aggregated with the real cohorts' shares.
    """
    n_co = Yc.shape[0]
    n_tr = sum(len(c.treated) for c in cohorts)
    n0 = n_co - n_tr
    perms = np.stack([rng.permutation(n_co) for _ in range(draws)])
    start = n0
    t0s, ctrls, ybars, n1s, zos, zls, mds, om0s, la0s = ([] for _ in range(9))
    K = max(c.t0 for c in cohorts)
    for c in cohorts:
        m = len(c.treated)
        fake = perms[:, start:start + m]
        start += m
        ctrl = np.zeros((draws, n_co), dtype=bool)
        np.put_along_axis(ctrl, perms[:, :n0], True, axis=1)
        om0 = np.where(ctrl, c.fit.omega[None, :], 0.0)
        # sum_normalize over the draw's controls (uniform if all their weight is gone)
        tot = om0.sum(axis=1, keepdims=True)
        om0 = np.where(tot > 0, om0 / np.where(tot > 0, tot, 1.0), ctrl / n0)
        la0 = np.zeros((draws, K))
        la0[:, :c.t0] = c.fit.lambda_
        t0s.append(np.full(draws, c.t0))
        ctrls.append(ctrl)
        ybars.append(Yc[fake].mean(axis=1))
        n1s.append(np.full(draws, m))
        zos.append(np.full(draws, c.fit.zeta_omega))
        zls.append(np.full(draws, c.fit.zeta_lambda))
        mds.append(np.full(draws, c.fit.min_decrease))
        om0s.append(om0)
        la0s.append(la0)
    fits = _solve(Yc, np.concatenate(t0s), np.vstack(ctrls), np.vstack(ybars),
                  np.concatenate(n1s), estimator, zeta_omega=np.concatenate(zos),
                  zeta_lambda=np.concatenate(zls), min_decrease=np.concatenate(mds),
                  omega0=np.vstack(om0s), lambda0=np.vstack(la0s),
                  max_iter=cohorts[0].fit.max_iter)
    return shares @ fits.tau.reshape(len(cohorts), draws)


def placebo_se(Y: Any, N0: int, T0: int, fit: MatrixFit, draws: int = 200,
               seed: int | np.random.Generator | None = DEFAULT_SEED) -> tuple[float, np.ndarray]:
    """Placebo standard error of a block estimate (reference ``vcov(method = "placebo")``).

    Parameters
    ----------
    Y : array_like (N, T)
        The matrix ``fit`` was estimated on (controls first).
    N0, T0 : int
    fit : MatrixFit
    draws : int
        Number of placebo assignments (the reference's ``replications``).
    seed : int or Generator
        ``numpy.random.default_rng(seed)``; each draw is one ``rng.permutation(N0)``,
        the same stream as ``synthdid.placebo_se(random_state=seed)``.

    Returns
    -------
    se : float
        ``sqrt((draws - 1) / draws) * sd(placebo estimates)``.
    estimates : ndarray (draws,)
    """
    Y = _check_matrix(Y, N0, T0, fit.estimator)
    n1 = Y.shape[0] - N0
    if N0 <= n1:
        raise ValueError("must have more controls than treated units to use the placebo se")
    coh = _Cohort(t0=T0, treated=np.arange(N0, Y.shape[0]), fit=fit)
    est = _placebo_draws(Y[:N0], [coh], np.array([1.0]), draws, np.random.default_rng(seed),
                         fit.estimator)
    return _resampling_se(est), est


def _resampling_se(est: np.ndarray) -> float:
    r = est.size
    if r < 2 or not np.all(np.isfinite(est)):
        return float("nan")
    return float(math.sqrt((r - 1) / r) * np.std(est, ddof=1))


def _jackknife(Y: np.ndarray, controls: np.ndarray, cohorts: Sequence[_Cohort]) -> float:
    """Fixed-weights jackknife of the cohort-aggregated estimate (reference ``jackknife_se``).

    Leaves out each unit (control or treated) in turn, keeping the fitted weights
    (unit weights restricted to the remaining controls and renormalised) and
    recomputing the cohort shares from the remaining treated counts.
    """
    T = Y.shape[1]
    units = np.concatenate([controls] + [c.treated for c in cohorts])
    n = units.size
    Yco = Y[controls]
    taus = np.empty((len(cohorts), n))
    wts = np.empty((len(cohorts), n))
    pos = {u: k for k, u in enumerate(units)}
    for j, c in enumerate(cohorts):
        tcoef = np.concatenate([-c.fit.lambda_, np.full(T - c.t0, 1.0 / (T - c.t0))])
        yc = Yco @ tcoef
        yt = Y[c.treated] @ tcoef
        om = c.fit.omega
        m = yt.size
        base_co = om @ yc
        base_tr = yt.mean()
        tau = np.full(n, base_tr - base_co)
        wt = np.full(n, float(m * (T - c.t0)))
        # leave out a control: omega restricted to the others, renormalised
        rest = 1.0 - om
        with np.errstate(divide="ignore", invalid="ignore"):
            co_loo = np.where(rest > 0, (base_co - om * yc) / rest, np.nan)
        if np.any(rest <= 0):       # all weight on the dropped unit: uniform over the rest
            k = np.flatnonzero(rest <= 0)
            co_loo[k] = (yc.sum() - yc[k]) / (yc.size - 1)
        tau[:len(controls)] = base_tr - co_loo
        # leave out a treated unit of this cohort
        for k, u in enumerate(c.treated):
            q = pos[u]
            tau[q] = (yt.sum() - yt[k]) / (m - 1) - base_co if m > 1 else np.nan
            wt[q] = (m - 1) * (T - c.t0)
        taus[j], wts[j] = tau, wt
    with np.errstate(invalid="ignore"):
        u = np.nansum(taus * wts, axis=0) / np.where(np.isnan(taus), 0.0, wts).sum(axis=0)
    return float(math.sqrt(((n - 1) / n) * (n - 1) * np.var(u, ddof=1)))


def jackknife_se(Y: Any, N0: int, T0: int, fit: MatrixFit) -> float:
    """Fixed-weights jackknife standard error (reference ``vcov(method = "jackknife")``).

    Parameters
    ----------
    Y : array_like (N, T)
    N0, T0 : int
    fit : MatrixFit

    Returns
    -------
    float
        ``nan`` with a single treated unit, or when one control carries all the unit
        weight, as the reference.
    """
    Y = _check_matrix(Y, N0, T0, fit.estimator)
    if Y.shape[0] - N0 < 2 or np.count_nonzero(fit.omega) == 1:
        return float("nan")
    coh = _Cohort(t0=T0, treated=np.arange(N0, Y.shape[0]), fit=fit)
    return _jackknife(Y, np.arange(N0), [coh])


# --------------------------------------------------------------------------
# Long panels
# --------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class CohortFit:
    """The estimate for one adoption cohort (units first treated in ``onset``).

    Attributes
    ----------
    onset : period label
        First period of the cohort's post-period.
    estimate : float
    share : float
        Weight in the aggregate: ``N_tr T_post`` over the sum across cohorts.
    n_treated, n_control, n_pre, n_post : int
    treated_units : tuple
    unit_weights : Series
        Over the never-treated controls.
    time_weights : Series
        Over the cohort's pre-periods.
    pre_rmse : float
        See :class:`MatrixFit`.
    noise_level, zeta_omega, zeta_lambda : float
    """

    onset: Hashable
    estimate: float
    share: float
    n_treated: int
    n_control: int
    n_pre: int
    n_post: int
    treated_units: tuple
    unit_weights: pd.Series
    time_weights: pd.Series
    pre_rmse: float
    noise_level: float
    zeta_omega: float
    zeta_lambda: float


@dataclass(frozen=True, eq=False)
class SDIDResult:
    """Result of :func:`sdid`.

    Attributes
    ----------
    estimate : float
        ATT; with staggered adoption the cohort estimates weighted by ``N_tr T_post``.
    std_error, ci_low, ci_high, p_value : float
        Normal confidence interval ``estimate -/+ z_{1-alpha/2} se`` and two-sided
        normal p-value of ``estimate / se`` (as the reference); ``nan`` when the
        variance is not defined or ``inference="none"``.
    estimator, inference : str
    alpha : float
    n_treated, n_control : int
        Treated units used and never-treated controls.
    unit_weights : Series
        Weight of each control unit (indexed by unit label); with several cohorts,
        the cohort weights averaged with the cohort shares.
    time_weights : Series
        Weight of each pre-period (indexed by period); with several cohorts, the
        cohorts' time weights averaged with their shares.
    pre_rmse : float
        Pre-period fit (see :class:`MatrixFit`); with several cohorts
        ``sqrt(sum share_c rmse_c^2)``.
    cohorts : tuple of CohortFit
    dropped_units : tuple
        Units dropped because their outcome is missing in some period.
    excluded_treated : tuple
        Treated units left out for want of pre-periods.
    draws : int
        Placebo draws used (0 otherwise).
    seed : int or None
    placebo_estimates : ndarray or None
    notes : tuple of str
    """

    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    estimator: str
    inference: str
    alpha: float
    n_treated: int
    n_control: int
    unit_weights: pd.Series
    time_weights: pd.Series
    pre_rmse: float
    cohorts: tuple[CohortFit, ...]
    dropped_units: tuple = ()
    excluded_treated: tuple = ()
    draws: int = 0
    seed: int | None = None
    placebo_estimates: np.ndarray | None = field(default=None, repr=False)
    notes: tuple[str, ...] = ()

    @property
    def staggered(self) -> bool:
        """True when treated units start in more than one period."""
        return len(self.cohorts) > 1

    def cohort_table(self) -> pd.DataFrame:
        """One row per cohort: onset, estimate, share, counts and pre-period fit."""
        return pd.DataFrame([{
            "onset": c.onset, "estimate": c.estimate, "share": c.share,
            "n_treated": c.n_treated, "n_control": c.n_control, "n_pre": c.n_pre,
            "n_post": c.n_post, "pre_rmse": c.pre_rmse} for c in self.cohorts])


@dataclass
class _Panel:
    Y: np.ndarray                # (N, T) kept units
    units: np.ndarray            # labels
    periods: np.ndarray
    t0: np.ndarray               # pre-period length per unit, -1 never treated
    dropped: tuple
    excluded: tuple


def _is_never(ft: pd.Series) -> pd.Series:
    return ft.isna() | (ft == 0) | np.isinf(ft)


def _prepare(df: pd.DataFrame, outcome: str, unit: str, time: str, first_treated: str,
             min_pre: int) -> _Panel:
    """Balanced outcome matrix, onsets and the units left out (see :func:`sdid`)."""
    for role, col in (("outcome", outcome), ("unit", unit), ("time", time),
                      ("first_treated", first_treated)):
        if col not in df.columns:
            raise ValueError(f"{role} column {col!r} not found")
    d = df[[unit, time, outcome, first_treated]]
    if d[unit].isna().any() or d[time].isna().any():
        raise ValueError("unit and time must not be missing")
    if not pd.api.types.is_numeric_dtype(d[time]):
        raise ValueError(f"time column {time!r} must be numeric (comparable with first_treated)")
    if d.duplicated([unit, time]).any():
        u, t = d.loc[d.duplicated([unit, time]), [unit, time]].iloc[0]
        raise ValueError(f"unit {u!r} appears twice in period {t!r}")
    try:
        y = pd.to_numeric(d[outcome], errors="raise").astype(float)
        ft = pd.to_numeric(d[first_treated], errors="raise").astype(float)
    except (TypeError, ValueError) as e:
        raise ValueError(f"outcome and first_treated must be numeric: {e}") from None
    ft = ft.where(~_is_never(ft))
    per_unit = ft.groupby(d[unit], sort=True).agg(["min", "max", "count", "size"])
    varies = (per_unit["min"] != per_unit["max"]) & per_unit["count"].gt(0)
    varies |= per_unit["count"].between(1, per_unit["size"] - 1)
    if varies.any():
        raise ValueError(f"first_treated varies within unit {varies.index[varies][0]!r}")
    wide = pd.DataFrame({"u": d[unit].to_numpy(), "t": d[time].to_numpy(),
                         "y": y.to_numpy()}).pivot(index="u", columns="t", values="y")
    wide = wide.sort_index(axis=0).sort_index(axis=1)
    periods = wide.columns.to_numpy()
    onset = per_unit["min"].reindex(wide.index)
    bad = wide.isna().any(axis=1) | ~np.isfinite(wide.to_numpy()).all(axis=1)
    dropped = tuple(wide.index[bad])
    wide, onset = wide.loc[~bad], onset.loc[~bad]
    # first treated after the last period: untreated throughout, a control
    onset = onset.where(onset <= periods[-1]) if periods.size else onset
    t0 = np.where(onset.isna(), -1,
                  np.searchsorted(periods.astype(float), onset.fillna(0).to_numpy(), "left"))
    short = (t0 >= 0) & (t0 < min_pre)
    excluded = tuple(wide.index[short])
    keep = ~short
    panel = _Panel(Y=wide.to_numpy(dtype=float)[keep], units=wide.index.to_numpy()[keep],
                   periods=periods, t0=t0[keep], dropped=dropped, excluded=excluded)
    note = (f" after dropping {len(dropped)} unit(s) with missing outcomes" if dropped else "")
    if not (panel.t0 >= 0).any():
        what = "no treated units" if not excluded else (
            f"no treated unit has {min_pre} or more pre-periods "
            f"({len(excluded)} treated unit(s) excluded: {list(excluded)[:5]})")
        raise ValueError(f"{what} in the balanced panel of {outcome!r}{note}")
    if not (panel.t0 < 0).any():
        raise ValueError(f"no never-treated control remains for {outcome!r}{note}")
    return panel


def _check_args(estimator: str, inference: str, alpha: float, draws: int) -> None:
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator must be one of {ESTIMATORS}, got {estimator!r}")
    if inference not in INFERENCE:
        raise ValueError(f"inference must be one of {INFERENCE}, got {inference!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if inference == "placebo" and draws < 2:
        raise ValueError(f"draws must be at least 2, got {draws}")


def sdid(df: pd.DataFrame, *, outcome: str, unit: str, time: str, first_treated: str,
         estimator: str = "sdid", inference: str = "placebo", draws: int = 200,
         seed: int | None = DEFAULT_SEED, alpha: float = 0.05,
         max_iter: int = MAX_ITER) -> SDIDResult:
    """Synthetic DiD, synthetic control or DiD on a long panel, with staggered adoption.

    Each adoption cohort (units with the same first treated period) is estimated
    against the never-treated units, with the periods before its onset as
    pre-period and all periods from its onset as post-period; the cohort
    estimates are averaged with weights ``N_tr T_post`` (treated unit-periods),
    as Stata's ``sdid`` and the paper's appendix.  Units treated later are *not*
    used as controls for an earlier cohort: the controls are the never-treated
    units only.  With one onset this is the reference ``synthdid_estimate`` (or
    ``sc_estimate``, ``did_estimate``).

    Parameters
    ----------
    df : DataFrame
        Long panel, one row per unit and period.
    outcome, unit, time, first_treated : str
        Columns.  ``first_treated`` is the first treated period; NaN, 0 or inf
        mark never-treated units, and a first treated period after the panel's
        last period counts as never treated within the panel.
    estimator : {"sdid", "sc", "did"}
    inference : {"placebo", "jackknife", "none"}
        ``placebo``: the reference's placebo variance (Algorithm 4), valid with few
        treated units; needs more never-treated units than treated units.  With
        several cohorts, the placebo units take the real treated units' onsets and
        each cohort is re-estimated as the reference does for one.
        ``jackknife``: the fixed-weights jackknife (Algorithm 3), defined when every
        cohort has two or more treated units (``nan`` otherwise).
    draws : int
        Placebo draws.
    seed : int or None
        Seed of ``numpy.random.default_rng``.
    alpha : float
        ``1 - alpha`` confidence interval.
    max_iter : int
        Iteration cap of the second Frank-Wolfe pass (the reference's 10 000).

    Returns
    -------
    SDIDResult

    Raises
    ------
    ValueError
        Missing columns, duplicated unit-periods, ``first_treated`` varying within a
        unit, no treated unit with a pre-period (two pre-periods for sdid and sc,
        whose regularisation uses first differences), or no never-treated control
        left once units with a missing outcome are dropped (the panel must be
        balanced: such units are dropped and listed in ``dropped_units``).
    """
    _check_args(estimator, inference, alpha, draws)
    pan = _prepare(df, outcome, unit, time, first_treated, 1 if estimator == "did" else 2)
    is_co = pan.t0 < 0
    controls = np.flatnonzero(is_co)
    Yc = pan.Y[controls]
    onsets = np.unique(pan.t0[~is_co])
    treated_by = [np.flatnonzero(pan.t0 == g) for g in onsets]
    T = pan.Y.shape[1]
    n_co = controls.size
    fits = _solve(Yc, onsets, np.ones((onsets.size, n_co), bool),
                  np.stack([pan.Y[tr].mean(axis=0) for tr in treated_by]),
                  np.array([tr.size for tr in treated_by]), estimator, max_iter=max_iter)
    cohorts = [_Cohort(t0=int(g), treated=tr,
                       fit=_matrix_fit(fits, j, int(g), estimator, max_iter))
               for j, (g, tr) in enumerate(zip(onsets, treated_by))]
    wts = np.array([tr.size * (T - g) for g, tr in zip(onsets, treated_by)], dtype=float)
    shares = wts / wts.sum()
    estimate = float(shares @ fits.tau)

    notes: list[str] = []
    se = float("nan")
    placebo_est = None
    n_tr = int((~is_co).sum())
    if inference == "placebo":
        if n_co <= n_tr:
            raise ValueError(f"placebo inference needs more never-treated units ({n_co}) "
                             f"than treated units ({n_tr})")
        placebo_est = _placebo_draws(Yc, cohorts, shares, draws,
                                     np.random.default_rng(seed), estimator)
        se = _resampling_se(placebo_est)
    elif inference == "jackknife":
        small = [pan.periods[g] for g, tr in zip(onsets, treated_by) if tr.size < 2]
        single = [pan.periods[c.t0] for c in cohorts if np.count_nonzero(c.fit.omega) == 1]
        if small:
            notes.append(f"jackknife undefined: cohort(s) {small} have one treated unit")
        elif single:
            notes.append(f"jackknife undefined: one control carries all the unit weight "
                         f"in cohort(s) {single}")
        else:
            se = _jackknife(pan.Y, controls, cohorts)
    z = stats.norm.ppf(1 - alpha / 2)
    ok = np.isfinite(se) and se > 0
    ci_low, ci_high = (estimate - z * se, estimate + z * se) if ok else (np.nan, np.nan)
    p_value = float(2 * stats.norm.sf(abs(estimate / se))) if ok else float("nan")

    co_labels = pan.units[controls]
    cfits = []
    K = int(onsets.max())
    for j, c in enumerate(cohorts):
        cfits.append(CohortFit(
            onset=pan.periods[c.t0], estimate=float(fits.tau[j]), share=float(shares[j]),
            n_treated=int(c.treated.size), n_control=n_co, n_pre=c.t0, n_post=T - c.t0,
            treated_units=tuple(pan.units[c.treated]),
            unit_weights=pd.Series(c.fit.omega, index=co_labels, name="omega"),
            time_weights=pd.Series(c.fit.lambda_, index=pan.periods[:c.t0], name="lambda"),
            pre_rmse=c.fit.pre_rmse, noise_level=c.fit.noise_level,
            zeta_omega=c.fit.zeta_omega, zeta_lambda=c.fit.zeta_lambda))
    return SDIDResult(
        estimate=estimate, std_error=se, ci_low=float(ci_low), ci_high=float(ci_high),
        p_value=p_value, estimator=estimator, inference=inference, alpha=alpha,
        n_treated=n_tr, n_control=n_co,
        unit_weights=pd.Series(shares @ fits.omega, index=co_labels, name="omega"),
        time_weights=pd.Series(shares @ fits.lam[:, :K], index=pan.periods[:K], name="lambda"),
        pre_rmse=float(math.sqrt(shares @ fits.pre_rmse ** 2)), cohorts=tuple(cfits),
        dropped_units=pan.dropped, excluded_treated=pan.excluded,
        draws=draws if inference == "placebo" else 0, seed=seed,
        placebo_estimates=placebo_est, notes=tuple(notes))


# --------------------------------------------------------------------------
# Per-unit estimates with placebo-in-space inference
# --------------------------------------------------------------------------

def per_unit_placebo(df: pd.DataFrame, *, outcome: str, unit: str, time: str,
                     first_treated: str, estimator: str = "sdid",
                     units: Sequence[Hashable] | None = None, alpha: float = 0.05,
                     cache: bool = True, max_iter: int = MAX_ITER) -> pd.DataFrame:
    """Each treated unit alone against the never-treated donors, with in-space placebos.

    For each treated unit ``i`` (its own cohort: onset = its first treated period)
    the estimator is fitted against all never-treated donors; then each donor in
    turn is treated as if it were treated at the same onset, with the other donors
    as controls and the real treated units excluded (Abadie, Diamond and
    Hainmueller 2010).  The donor placebos depend only on the onset, so units
    sharing an onset share them (``cache=True``); all problems are solved in one
    batch.

    Parameters
    ----------
    df : DataFrame
        Long panel (see :func:`sdid` for the columns and for dropped units).
    outcome, unit, time, first_treated : str
    estimator : {"sdid", "sc", "did"}
    units : sequence, optional
        Treated units to report (default all treated units with enough pre-periods).
    alpha : float
        Level of the placebo interval.
    cache : bool
        Reuse the donor placebos across units sharing an onset (default).  ``False``
        recomputes them for each unit, separately (for checking).
    max_iter : int
        Iteration cap of the second Frank-Wolfe pass (the reference's 10 000).

    Returns
    -------
    DataFrame, one row per treated unit, with columns

    - ``unit``, ``onset``, ``estimate``;
    - ``ci_low``, ``ci_high``: ``estimate - q(1 - alpha/2)`` and ``estimate -
      q(alpha/2)`` of the placebo estimates ``q`` (numpy's linear quantiles): the
      test-inversion interval under a constant effect, assuming the treated unit's
      estimation error is distributed as the placebos';
    - ``p_value``: ``(1 + #{|placebo| >= |estimate|}) / (1 + n_placebo)``, whose
      minimum is ``1 / (1 + n_placebo)``;
    - ``pre_rmse``, ``post_rmspe``, ``rmspe_ratio`` (post / pre) and
      ``p_value_rmspe``: the same rank p-value for the RMSPE ratio (Abadie et al.);
      post and pre gaps are net of the mean pre-period gap for sdid/did;
    - ``n_placebo``, ``n_control`` and ``placebo_estimates`` (an array per row, in
      the order of ``df.attrs["donors"]``).

    ``df.attrs`` also holds ``dropped_units`` and ``excluded_treated``.
    """
    _check_args(estimator, "none", alpha, 2)
    pan = _prepare(df, outcome, unit, time, first_treated, 1 if estimator == "did" else 2)
    is_co = pan.t0 < 0
    donors = np.flatnonzero(is_co)
    treated = np.flatnonzero(~is_co)
    if units is not None:
        want = set(units)
        missing = want - set(pan.units[treated])
        if missing:
            raise ValueError(f"not treated units with enough pre-periods: {sorted(missing)}")
        treated = np.array([t for t in treated if pan.units[t] in want], dtype=int)
    Yd = pan.Y[donors]
    M = donors.size
    if M < 2:
        raise ValueError("per-unit placebos need at least two never-treated donors")

    def problems(t0s: Sequence[int]):
        """Donor placebo problems for each onset in t0s: donor j against the others."""
        ctrl = np.tile(~np.eye(M, dtype=bool), (len(t0s), 1))
        return (np.repeat(np.asarray(t0s), M), ctrl, np.tile(Yd, (len(t0s), 1)))

    real_t0 = pan.t0[treated]
    keys = sorted(set(real_t0.tolist()))
    # one batch: the real units, then the donor placebos of each onset
    pt0, pctrl, pybar = problems(keys)
    t0_all = np.concatenate([real_t0, pt0])
    ctrl_all = np.vstack([np.ones((treated.size, M), bool), pctrl])
    ybar_all = np.vstack([pan.Y[treated], pybar])
    fits = _solve(Yd, t0_all, ctrl_all, ybar_all, np.ones(t0_all.size), estimator,
                  max_iter=max_iter)
    nt = treated.size
    plac = {g: slice(nt + k * M, nt + (k + 1) * M) for k, g in enumerate(keys)}
    if not cache:   # separately for each treated unit, no reuse
        per_unit = []
        for g in real_t0:
            t0u, cu, yu = problems([g])
            per_unit.append(_solve(Yd, t0u, cu, yu, np.ones(M), estimator,
                                   max_iter=max_iter))

    ratio = fits.post_rmspe / fits.pre_rmse
    rows = []
    for k, (i, g) in enumerate(zip(treated, real_t0)):
        if cache:
            p_est, p_ratio = fits.tau[plac[g]], ratio[plac[g]]
        else:
            f = per_unit[k]
            p_est, p_ratio = f.tau, f.post_rmspe / f.pre_rmse
        est = float(fits.tau[k])
        good = np.isfinite(p_est)
        pe = p_est[good]
        n_p = int(pe.size)
        lo, hi = (np.quantile(pe, [1 - alpha / 2, alpha / 2]) if n_p else (np.nan, np.nan))
        pr = p_ratio[np.isfinite(p_ratio)]
        rows.append({
            "unit": pan.units[i], "onset": pan.periods[g], "estimate": est,
            "ci_low": est - lo, "ci_high": est - hi,
            "p_value": (1 + np.sum(np.abs(pe) >= abs(est))) / (1 + n_p),
            "pre_rmse": float(fits.pre_rmse[k]), "post_rmspe": float(fits.post_rmspe[k]),
            "rmspe_ratio": float(ratio[k]),
            "p_value_rmspe": (1 + np.sum(pr >= ratio[k])) / (1 + pr.size),
            "n_placebo": n_p, "n_control": M, "placebo_estimates": p_est.copy()})
    out = pd.DataFrame(rows, columns=[
        "unit", "onset", "estimate", "ci_low", "ci_high", "p_value", "pre_rmse",
        "post_rmspe", "rmspe_ratio", "p_value_rmspe", "n_placebo", "n_control",
        "placebo_estimates"])
    out.attrs.update(donors=tuple(pan.units[donors]), dropped_units=pan.dropped,
                     excluded_treated=pan.excluded, estimator=estimator)
    return out
