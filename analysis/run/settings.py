"""The study runner's fixed settings: resampling sizes, contrasts, denominators.

Kept apart from :mod:`analysis.run.study` so that the book's chapters can print them
without importing the estimators (each chapter's kernel imports what it reads, and
the methods' libraries would add most of a second to every chapter).
"""
from __future__ import annotations

#: Specifications that estimate a different population (a prior-use subgroup of the
#: pilots): contrasts, not robustness checks, so not counted in sign agreement.
CONTRAST_SPECS = ("pilots_new_to_sos", "pilots_experienced")

#: Grid of effect sizes (in MDEs) at which the power curve is evaluated.
POWER_GRID = tuple(round(0.1 * i, 1) for i in range(0, 21))
#: Wild bootstrap draws per event-study coefficient and for the pre-trend test (each
#: coefficient's interval is found by test inversion, so the count is kept moderate).
EVENT_STUDY_DRAWS = 1999
#: Simulated panels behind each minimum detectable effect (analysis.methods.mde): the
#: Monte Carlo standard error of the power at the MDE is about 1.3 points.
MDE_PANELS = 1000
#: Wild bootstrap draws per simulated panel. Fewer than the headline test's: the share
#: of panels in which an effect is found hardly depends on the number of draws (the
#: p-value's own Monte Carlo error averages out over panels), and the simulation costs
#: about 1 ms per panel at 999 draws against 15 ms at 9,999.
MDE_DRAWS = 999
#: The same for the sensitivity runs' MDEs (``mde`` in estimates.csv): a rougher figure
#: (Monte Carlo standard error of the power about 2.8 points) for about 300 runs.
MDE_SPEC_PANELS = 200
MDE_SPEC_DRAWS = 399
#: Placebo draws of the SDID standard error.
SDID_PLACEBO_DRAWS = 200


#: Per outcome: the panel column whose count the measure is a share or rate of, and the
#: unit the effect is expressed in (a share of referrals, a rate per 10,000 children).
DENOMINATORS = {"rereferral_pct": ("referrals", 100.0, "re-referrals"),
                "cpp_second_subsequent_pct": ("cpp_starts", 100.0, "repeat child protection plans"),
                "cla_ceased_sgo_pct": ("cla_ceased", 100.0, "children leaving care through an SGO"),
                "assessments_45wd_pct": ("assessments", 100.0, "assessments within 45 working days"),
                "cpp_starts_rate_per10k": ("pop_0_17", 10000.0, "child protection plans starting"),
                "cin_rate_per10k": ("pop_0_17", 10000.0, "children in need"),
                "cla_rate_per10k": ("pop_0_17", 10000.0, "children looked after"),
                "cla_starts_rate_per10k": ("pop_0_17", 10000.0, "children starting to be looked after"),
                "s47_rate_per10k": ("pop_0_17", 10000.0, "section 47 enquiries"),
                "cla_foster_pct": ("cla_31mar", 100.0, "children in foster placements")}
