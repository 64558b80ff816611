"""How far to trust a latency table: good | usable | poor, from its held-out validation and the
noise measured while profiling (docs/latency.md, "The verdict").

  good    Kendall tau >= 0.9 and >= 90% of the validation architectures within +-10%
  usable  Kendall tau >= 0.7 and MAPE <= 15%
  poor    anything else, or no validation (validate=0)

and, from the noise ceiling (validation architectures timed a second time, minutes later):
  at most usable  when fewer than 90% of the re-timings agree with the first within +-10%
  poor            when fewer than 70% do: the machine's own timings disagree, so no table
                  measured there can be trusted, whatever its validation says

The reason quotes each figure with its 95% interval where the validation has one (a validation
of n architectures pins Kendall tau down only so far: docs/latency.md, "How sure a validation
is"); the level reads the figures themselves, and where an interval holds the good threshold
the reason says so and how many validation architectures would decide.

A table without a stored verdict (older tables) gets one computed from its stored validation.
"""
from __future__ import annotations

THRESHOLDS = {"good": {"kendall_tau": 0.9, "within_10pct": 0.9}, "usable": {"kendall_tau": 0.7, "mape_pct": 15.0}}
LEVELS = ("good", "usable", "poor")
# Noise above this (the split-half difference of the end-to-end medians, or the median difference
# of the re-timed architectures) is called out: the machine was busy or its clock was scaling. The
# spread of single runs (IQR/median) is shown, not judged: a median of hundreds of runs repeats
# within 1-2% on an idle machine whose single runs spread by 10% (docs/latency.md).
NOISY = 0.05
# Shares of re-timed architectures within +-10% of their first timing below which a table is
# capped at usable, and called poor (a loaded machine: docs/latency.md).
RECHECK_GOOD, RECHECK_POOR = 0.9, 0.7
ADVICE = ("re-run hwnas-profile overwrite=true on an idle machine (close other programs; on a laptop, plug it "
          "in; set the CPU governor to performance where you can), with more repeats (repeats=1000 "
          "e2e_repeats=200) and more calibration architectures (calibrate=80); a table measured with "
          "threads>1 is noisier than threads=1; or search with a public benchmark device instead")


def noise_summary(noise: dict | None) -> str:
    if not noise:
        return "noise not measured"
    parts = []
    if noise.get("ops_rel_iqr_median") is not None:
        parts.append(f"op timings spread {100 * noise['ops_rel_iqr_median']:.1f}% (median IQR/median)")
    if noise.get("e2e_rel_iqr_median") is not None:
        parts.append(f"end-to-end spread {100 * noise['e2e_rel_iqr_median']:.1f}%")
    if noise.get("e2e_split_half_rel_diff_median") is not None:
        parts.append(f"halves of a timing differ by {100 * noise['e2e_split_half_rel_diff_median']:.1f}%")
    if noise.get("e2e_recheck_within_10pct") is not None:
        parts.append(f"noise ceiling: {noise['e2e_rechecked']} architectures timed again minutes later differ by "
                     f"{100 * noise['e2e_recheck_rel_diff_median']:.1f}% (median), "
                     f"{100 * noise['e2e_recheck_within_10pct']:.0f}% within 10%"
                     + (f", order alike at Kendall tau {noise['e2e_recheck_kendall_tau']:.3f}"
                        if noise.get("e2e_recheck_kendall_tau") is not None else ""))
    if noise.get("machine_speed_p10_p90"):
        lo, hi = noise["machine_speed_p10_p90"]
        parts.append(f"machine speed varied {lo:.2f}-{hi:.2f}x (p10-p90 of the reference clock, corrected for)")
    return ", ".join(parts) or "noise not measured"


def is_noisy(noise: dict | None) -> bool:
    return bool(noise) and any((noise.get(k) or 0) > NOISY for k in
                               ("e2e_split_half_rel_diff_median", "e2e_recheck_rel_diff_median"))


def verdict(validation: dict | None, noise: dict | None = None) -> dict:
    """{level, reason, advice (poor only, else None), thresholds, noise} of a table."""
    fid = None
    if validation:
        fid = validation.get("calibrated") or validation.get("raw")
    if not fid:
        level, reason = "poor", "not validated (validate=0 or fewer than 2 validation architectures)"
    else:
        tau, mape, w10 = fid["kendall_tau"], fid["mape_pct"], fid["within_10pct"]
        ci = validation.get("interval") or {}  # how sure those figures are (fidelity_interval)
        pct = f"{100 * ci.get('level', 0.95):.0f}%"
        tau_ci = (f" ({pct} interval {ci['kendall_tau'][0]:.2f}-{ci['kendall_tau'][1]:.2f})"
                  if ci.get("kendall_tau") else "")
        w10_ci = (f" ({pct} interval {100 * ci['within_10pct'][0]:.0f}-{100 * ci['within_10pct'][1]:.0f}%)"
                  if ci.get("within_10pct") else "")
        figures = (f"Kendall tau {tau:.3f}{tau_ci}, MAPE {mape:.1f}%, {100 * w10:.0f}% within 10%{w10_ci} on {fid['n']} "
                   f"held-out architectures")
        g, u = THRESHOLDS["good"], THRESHOLDS["usable"]
        if tau >= g["kendall_tau"] and w10 >= g["within_10pct"]:
            level = "good"
        elif tau >= u["kendall_tau"] and mape <= u["mape_pct"]:
            level = "usable"
        else:
            level = "poor"
        reason = figures
        # A figure whose interval holds the good threshold could be either side of it: more
        # validation architectures decide (a profile resumed with a larger validate times only those).
        unsure = [name for name, key in (("Kendall tau", "kendall_tau"), ("the share within 10%", "within_10pct"))
                  if ci.get(key) and ci[key][0] < g[key] <= ci[key][1]]
        if unsure and level != "poor":
            reason += (f"; the interval of {' and of '.join(unsure)} holds the good threshold, so the validation "
                       f"cannot tell good from usable: validate={2 * fid['n']} would (hwnas-profile resumes and "
                       f"times only the new architectures)")
    recheck = (noise or {}).get("e2e_recheck_within_10pct")
    if recheck is not None and level != "poor" and recheck < RECHECK_GOOD:
        level = "poor" if recheck < RECHECK_POOR else "usable"
        reason += (f"; only {100 * recheck:.0f}% of the architectures timed twice agree within 10%: this machine's "
                   f"timings do not repeat, so the table " + ("is not to be trusted" if level == "poor" else
                                                             "cannot be better than usable"))
    if is_noisy(noise):
        reason += f"; the machine was noisy (a noise figure above {100 * NOISY:.0f}%)"
    return {"level": level, "reason": reason, "advice": ADVICE if level == "poor" else None,
            "thresholds": THRESHOLDS, "noise": noise_summary(noise)}


def table_verdict(table) -> dict:
    """The table's stored verdict, or one computed from its stored validation (older tables)."""
    stored = getattr(table, "verdict", None)
    if isinstance(stored, dict) and stored.get("level") in LEVELS:
        return stored
    return verdict(table.validation, getattr(table, "noise", None))


def verdict_line(v: dict) -> str:
    """One line for the screen."""
    line = f"table verdict: {v['level'].upper()} ({v['reason']}); {v.get('noise') or 'noise not measured'}"
    if v.get("advice"):
        line += f"; to improve it: {v['advice']}"
    return line
