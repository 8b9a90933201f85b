"""``python -m analysis estimate``: difference-in-differences on any long panel.

    python -m analysis estimate PANEL.csv --outcome COL --unit COL --time COL
        --first-treated COL [--estimator twfe|staggered|sdid|sc] [--weights COL]
        [--draws N] [--seed N] [--alpha A] [--sesoi X] [--json OUT]

Prints a readable summary; with ``--json`` also writes the results. Each
estimate comes with three kinds of inference: ``cluster`` (cluster-robust by
unit), ``wild_bootstrap`` and ``randomization``. The top-level interval and
p-value are those of the primary method, named in ``primary_inference``:

* ``twfe`` -- primary: the wild cluster bootstrap (restricted, WCR, Rademacher
  weights by unit), which keeps its size with few treated clusters where the
  cluster-robust t test over-rejects;
* ``staggered`` -- primary: randomization inference on the simple ATT
  (placebo re-assignment of the first-treated periods); R ``did``'s
  multiplier bootstrap is reported as ``wild_bootstrap`` but, like the
  analytic standard error, it relies on many treated units;
* ``sdid`` and ``sc`` -- synthetic difference-in-differences (Arkhangelsky et al.
  2021) and synthetic control on every never-treated unit, cohort by cohort;
  primary: the placebo variance; ``unit_weights`` and ``time_weights`` in the JSON.

For ``twfe`` the JSON also holds ``mde`` (the minimum detectable effect at 80%
power, two-sided, for the wild bootstrap: found by simulation on 1,000 panels shaped
like the input, :mod:`analysis.methods.mde`), with ``--sesoi``
the equivalence test's ``equivalence_p``, and ``honest_did``: the event study's
Rambachan-Roth intervals under relative magnitudes and smoothness and the
breakdown value.

Bad input (missing file or column, non-numeric outcome, no treated or no
never-treated unit, a unit treated at or before the first period) raises
:class:`analysis.core.errors.DataError`, which the command line prints as one line.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

from analysis.core.errors import DataError

#: Default draws when --draws is not given.
WB_DRAWS = 9999
RI_DRAWS = 5000


def add_estimate_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``estimate`` sub-command to ``subparsers`` and return its parser.

    The parser's default ``func`` is :func:`run_estimate`.
    """
    # No numerical import here: every command builds this parser (``python -m analysis
    # data --strict`` must fail in a second, not after loading scipy).
    p = subparsers.add_parser(
        "estimate", help="difference-in-differences with honest inference on any long panel",
        description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("panel", metavar="PANEL.csv", help="long panel, one row per unit and period")
    p.add_argument("--outcome", required=True, help="outcome column")
    p.add_argument("--unit", required=True, help="unit (cluster) column")
    p.add_argument("--time", required=True, help="period column (numeric)")
    p.add_argument("--first-treated", required=True, dest="first_treated",
                   help="first treated period of the row's unit (empty or 0: never treated)")
    p.add_argument("--estimator", choices=["twfe", "staggered", "sdid", "sc"], default="twfe",
                   help="twfe: two-way fixed effects DiD (default); staggered: "
                        "Callaway-Sant'Anna group-time ATTs (R did defaults); sdid: synthetic "
                        "difference-in-differences; sc: synthetic control")
    p.add_argument("--weights", default=None, help="column of positive analytic weights")
    p.add_argument("--draws", type=int, default=None,
                   help=f"bootstrap draws and placebo assignments (default {WB_DRAWS} and {RI_DRAWS})")
    p.add_argument("--seed", type=int, default=None,
                   help="random seed (default analysis.methods.inference.DEFAULT_SEED)")
    p.add_argument("--alpha", type=float, default=0.05, help="1 - confidence level (default 0.05)")
    p.add_argument("--sesoi", type=float, default=None,
                   help="smallest effect size of interest: twfe adds its equivalence test (TOST)")
    p.add_argument("--json", default=None, metavar="OUT", help="write the results as JSON to OUT")
    p.set_defaults(func=run_estimate)
    return p


def _read_panel(path: str, columns: list[str]) -> Any:
    import pandas as pd

    f = Path(path)
    if not f.exists():
        raise DataError("file not found", file=path)
    if f.is_dir():
        raise DataError("is a folder, not a CSV file", file=path)
    try:
        # Read as text so that a bad cell is reported with its line number.
        return pd.read_csv(f, dtype=str, keep_default_na=True)
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", file=path) from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DataError(f"cannot be read as CSV: {first}", file=path) from None


def _f(x: float | None) -> float | None:
    """JSON-safe float: None for a missing value, NaN or an infinity (JSON has none of them)."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return None
    if math.isinf(x):
        return None
    return x


def estimate_panel(df: Any, *, outcome: str, unit: str, time: str, first_treated: str,
                   estimator: str = "twfe", weights: str | None = None,
                   draws: int | None = None, seed: int | None = None, alpha: float = 0.05,
                   file: str | None = None, sesoi: float | None = None) -> dict[str, Any]:
    """Run one estimator with all three inference methods; return the JSON dict.

    Parameters
    ----------
    df : DataFrame
        Long panel.
    outcome, unit, time, first_treated, weights : str
        Column names.
    estimator : {"twfe", "staggered"}
    draws : int, optional
        Draws for both the bootstrap and the randomization (defaults 9,999 and 5,000).
    seed : int, optional
    alpha : float
    file : str, optional
        File name for error messages.

    Returns
    -------
    dict
        The keys described in the module docstring.
    """
    # Numerical imports here, not at the top: every command builds this module's parser,
    # and `python -m analysis data --strict` must fail in a second, not after loading scipy.
    import pandas as pd

    from analysis.methods.estimation import callaway_santanna, event_study, prepare_panel, twfe_did
    from analysis.methods.honest_did import honest_did
    from analysis.methods.inference import (
        DEFAULT_SEED,
        multiplier_bootstrap,
        randomization_inference,
        staggered_randomization_inference,
        wild_bootstrap_null,
        wild_cluster_bootstrap,
    )
    from analysis.methods.mde import simulated_mde
    from analysis.methods.sdid import sdid

    seed = DEFAULT_SEED if seed is None else seed
    if draws is not None and draws < 1:
        raise DataError(f"--draws must be a positive number, got {draws}")
    if not 0 < alpha < 1:
        raise DataError(f"--alpha must be between 0 and 1, got {alpha}")
    wb_draws = WB_DRAWS if draws is None else draws
    ri_draws = RI_DRAWS if draws is None else draws
    if estimator in ("sdid", "sc"):
        prepare_panel(df, outcome=outcome, unit=unit, time=time, first_treated=first_treated,
                      weights=weights, file=file)  # the same checks and one-line errors
        sub = df[[unit, time, outcome, first_treated]].copy()
        for col in (time, outcome, first_treated):  # checked numeric by prepare_panel above
            sub[col] = pd.to_numeric(sub[col], errors="coerce")
        sub[first_treated] = sub[first_treated].fillna(0)
        try:
            r = sdid(sub, outcome=outcome, unit=unit, time=time, first_treated=first_treated,
                     estimator=estimator, inference="placebo", draws=200 if draws is None else draws,
                     seed=seed, alpha=alpha)
        except ValueError as exc:
            raise DataError(str(exc), file=file) from None
        return {"estimator": estimator, "estimate": _f(r.estimate), "std_error": _f(r.std_error),
                "ci_low": _f(r.ci_low), "ci_high": _f(r.ci_high), "p_value": _f(r.p_value),
                "primary_inference": "placebo", "n_treated": int(r.n_treated),
                "n_control": int(r.n_control), "pre_rmse": _f(r.pre_rmse),
                "dropped_units": [str(u) for u in r.dropped_units], "alpha": alpha, "seed": seed,
                "unit_weights": {str(k): float(v) for k, v in r.unit_weights.items()},
                "time_weights": {str(k): float(v) for k, v in r.time_weights.items()}}
    panel = prepare_panel(df, outcome=outcome, unit=unit, time=time,
                          first_treated=first_treated, weights=weights, file=file)

    def block(ci_low: float, ci_high: float, p: float, **extra: Any) -> dict[str, Any]:
        return {"ci_low": _f(ci_low), "ci_high": _f(ci_high), "p_value": _f(p), **extra}

    out: dict[str, Any] = {"estimator": estimator}
    if estimator == "twfe":
        cl = twfe_did(panel, alpha=alpha)
        wb = wild_cluster_bootstrap(panel, draws=wb_draws, seed=seed, alpha=alpha)
        ri = randomization_inference(panel, draws=ri_draws, seed=seed, alpha=alpha)
        primary = "wild_bootstrap"
        inference = {
            "cluster": block(cl.ci_low, cl.ci_high, cl.p_value, std_error=_f(cl.std_error),
                             method="cluster-robust CR1 by unit (Stata/fixest small-sample "
                                    "factor), t with G-1 df"),
            "wild_bootstrap": block(wb.ci_low, wb.ci_high, wb.p_value, draws=wb.draws,
                                    enumerated=wb.enumerated, weight_type=wb.weight_type,
                                    method="wild cluster bootstrap restricted by the null (WCR), "
                                           "Rademacher weights by unit, symmetric p-value, "
                                           "interval by test inversion"),
            "randomization": block(ri.ci_low, ri.ci_high, ri.p_value, draws=ri.draws,
                                   enumerated=ri.enumerated, statistic=ri.statistic,
                                   method="randomization inference: first-treated periods "
                                          "re-assigned among all units; interval inverts a "
                                          "constant additive effect"),
        }
        est, se = cl.estimate, cl.std_error
        null = wild_bootstrap_null(panel, sesoi=math.nan if sesoi is None else sesoi, draws=wb_draws,
                                   weight_type="rademacher", seed=seed)
        # 999 draws per simulated panel at most, as in the study (analysis.run.study.MDE_DRAWS)
        out["mde"] = _f(simulated_mde(panel, power=0.8, draws=min(wb_draws, 999),
                                      weight_type="rademacher", alpha=alpha, seed=seed).mde)
        if sesoi is not None:
            out["sesoi"], out["equivalence_p"] = sesoi, _f(null.equivalence_p)
        es = event_study(panel, alpha=alpha)
        coefs = es.coefficients[es.coefficients["event_time"] != -1].sort_values("event_time")
        names = [str(int(e)) for e in coefs["event_time"]]
        vc = es.vcov.copy()
        vc.index, vc.columns = vc.index.astype(str), vc.columns.astype(str)
        num_pre, num_post = int((coefs["event_time"] < -1).sum()), int((coefs["event_time"] >= 0).sum())
        if num_pre >= 1 and num_post >= 1 and set(names) <= set(vc.index):
            sigma = vc.loc[names, names].to_numpy(float)
            h = honest_did(coefs["estimate"].to_numpy(float), sigma, num_pre, num_post, alpha=alpha,
                           m_scale=float(math.sqrt(max(sigma[i, i] for i in range(num_pre)))))
            out["honest_did"] = {"relative_magnitudes": [{k: _f(v) for k, v in r.items() if k in
                                                          ("M", "ci_low", "ci_high")}
                                                         for r in h["relative_magnitudes"]],
                                 "smoothness": [{k: _f(v) for k, v in r.items() if k in ("M", "ci_low", "ci_high")}
                                                for r in h["smoothness"]],
                                 "breakdown_rm": _f(h.get("breakdown_rm"))}
        else:
            out["honest_did"] = {"relative_magnitudes": [], "smoothness": [], "breakdown_rm": None,
                                 "note": "needs at least one pre-period and one post-period coefficient"}
    elif estimator == "staggered":
        cs = callaway_santanna(panel, alpha=alpha)
        mb = multiplier_bootstrap(cs, draws=wb_draws, seed=seed, alpha=alpha)
        ri = staggered_randomization_inference(panel, draws=ri_draws, seed=seed, alpha=alpha)
        primary = "randomization"
        o = cs.overall
        inference = {
            "cluster": block(o.ci_low, o.ci_high, o.p_value, std_error=_f(o.std_error),
                             method="analytic influence-function SE (R did, bstrap=FALSE), "
                                    "clustered by unit, normal"),
            "wild_bootstrap": block(mb.ci_low, mb.ci_high, mb.p_value, draws=mb.draws,
                                    enumerated=mb.enumerated, weight_type=mb.weight_type,
                                    method=mb.method),
            "randomization": block(ri.ci_low, ri.ci_high, ri.p_value, draws=ri.draws,
                                   enumerated=ri.enumerated, statistic=ri.statistic,
                                   method=ri.method),
        }
        est, se = o.estimate, o.std_error
        out["group_time"] = [{"group": _f(r.group), "time": _f(r.time), "att": _f(r.att),
                              "se": _f(r.se)} for r in cs.group_time.itertuples()]
        out["event_time"] = [{"event_time": _f(r.event_time), "att": _f(r.att), "se": _f(r.se)}
                             for r in cs.event_time.itertuples()]
    else:
        raise DataError(f"unknown estimator '{estimator}' (twfe, staggered, sdid or sc)")
    prim = inference[primary]
    out.update({"estimate": _f(est), "std_error": _f(se), "ci_low": prim["ci_low"],
                "ci_high": prim["ci_high"], "p_value": prim["p_value"],
                "primary_inference": primary, "n_units": panel.n_units,
                "n_treated": panel.n_treated, "n_obs": panel.n_obs,
                "n_dropped_missing": panel.n_dropped, "alpha": alpha, "seed": seed,
                "inference": inference})
    # keep the documented keys first, then the extras
    order = ["estimator", "estimate", "std_error", "ci_low", "ci_high", "p_value",
             "primary_inference", "n_units", "n_treated", "n_obs", "n_dropped_missing",
             "alpha", "seed", "inference", "mde", "sesoi", "equivalence_p", "honest_did",
             "group_time", "event_time"]
    return {k: out[k] for k in order if k in out}


def _fmt(x: float | None, nd: int = 3) -> str:
    return "inf" if x is None else f"{x:.{nd}f}"


def format_summary(res: dict[str, Any], args: argparse.Namespace) -> str:
    """Readable text summary of :func:`estimate_panel`'s result."""
    name = {"twfe": "Two-way fixed effects DiD",
            "staggered": "Callaway-Sant'Anna simple ATT (never-treated comparisons)",
            "sdid": "Synthetic difference-in-differences", "sc": "Synthetic control"}
    level = int(round(100 * (1 - res["alpha"])))
    if res["estimator"] in ("sdid", "sc"):
        top = sorted(res["unit_weights"].items(), key=lambda kv: -kv[1])[:5]
        return "\n".join([
            f"{name[res['estimator']]}: {args.outcome} in {args.panel}",
            f"  treated {res['n_treated']}, controls {res['n_control']}"
            + (f", {len(res['dropped_units'])} units with a missing period dropped" if res["dropped_units"] else ""),
            f"  estimate {_fmt(res['estimate'], 4)}  (placebo std. error {_fmt(res['std_error'], 4)})",
            f"  {level}% interval [{_fmt(res['ci_low'], 4)}, {_fmt(res['ci_high'], 4)}], "
            f"p-value {_fmt(res['p_value'], 4)}  <- primary (placebo variance)",
            f"  pre-period fit (RMSE) {_fmt(res['pre_rmse'], 4)}",
            "  largest unit weights: " + ", ".join(f"{k} {v:.3f}" for k, v in top)])
    lines = [
        f"{name[res['estimator']]}: {args.outcome} in {args.panel}",
        f"  units {res['n_units']} (treated {res['n_treated']}), observations {res['n_obs']}"
        + (f", {res['n_dropped_missing']} rows with missing outcome dropped"
           if res["n_dropped_missing"] else ""),
        f"  estimate {_fmt(res['estimate'], 4)}  (std. error {_fmt(res['std_error'], 4)})",
        f"  {'inference':<16}{level}% interval{'':<14}p-value",
    ]
    for key, label in [("cluster", "cluster-robust"), ("wild_bootstrap", "wild bootstrap"),
                       ("randomization", "randomization")]:
        b = res["inference"][key]
        lo = "-inf" if b["ci_low"] is None else f"{b['ci_low']:.4f}"
        hi = "inf" if b["ci_high"] is None else f"{b['ci_high']:.4f}"
        star = "  <- primary" if key == res["primary_inference"] else ""
        lines.append(f"  {label:<16}[{lo}, {hi}]{'':<6}{_fmt(b['p_value'], 4)}{star}")
    if res["estimator"] == "staggered":
        lines.append("  event-time ATTs: " + ", ".join(
            f"{int(e['event_time']) if e['event_time'] is not None else '?'}: {_fmt(e['att'])}"
            for e in res["event_time"]))
    if "mde" in res:
        lines.append(f"  minimum detectable effect (80% power, {level}% two-sided): {_fmt(res['mde'], 4)}")
    if "equivalence_p" in res:
        lines.append(f"  equivalence test against +/-{res['sesoi']:g} (TOST): p = {_fmt(res['equivalence_p'], 4)}")
    h = res.get("honest_did") or {}
    for r in h.get("relative_magnitudes", []):
        if r["M"] is not None and abs(r["M"] - 1.0) < 1e-9:
            lines.append("  HonestDiD, relative magnitudes Mbar = 1: "
                         f"[{_fmt(r['ci_low'], 4)}, {_fmt(r['ci_high'], 4)}]")
    if h:
        bd = h.get("breakdown_rm")
        lines.append("  HonestDiD breakdown Mbar: " + ("none (the interval at Mbar = 0 holds zero)"
                                                       if bd is None else _fmt(bd, 3)))
    lines.append(f"  primary inference: {res['primary_inference'].replace('_', ' ')} "
                 f"(seed {res['seed']})")
    return "\n".join(lines)


def run_estimate(args: argparse.Namespace) -> int:
    """Run the ``estimate`` command; return the exit status (0).

    Raises
    ------
    DataError
        For any bad input; the caller prints it as one line and exits 2.
    """
    cols = [args.outcome, args.unit, args.time, args.first_treated]
    df = _read_panel(args.panel, cols)
    res = estimate_panel(df, outcome=args.outcome, unit=args.unit, time=args.time,
                         first_treated=args.first_treated, estimator=args.estimator,
                         weights=args.weights, draws=args.draws, seed=args.seed,
                         alpha=args.alpha, file=args.panel, sesoi=args.sesoi)
    print(format_summary(res, args))
    if args.json:
        out = Path(args.json)
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(res, indent=2) + "\n", encoding="utf-8")
        except OSError as exc:
            raise DataError(f"cannot write JSON: {exc.strerror}", file=args.json) from None
        print(f"wrote {out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (``python -m analysis.cli.estimate``), same behaviour."""
    parser = argparse.ArgumentParser(prog="python -m analysis")
    sub = parser.add_subparsers(dest="command", required=True)
    add_estimate_parser(sub)
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except DataError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
