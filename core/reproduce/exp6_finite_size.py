"""Experiment 6: the mixed-temperature RBM flow's endpoint T* against system size. At each L
in fss_sizes an RBM L² → (L-1)² (as 100 → 81 at L = 10) is trained on the whole grid and
flowed from low-T, high-T and random starts; T*(L) is the observable thermometer's reading at
the last step, averaged over the starts, an ensemble over the preset's training seeds.
Beside it the finite-size pseudo-critical temperature T_pc(L), the specific heat's peak from
Monte Carlo on fss_peak_T (rgflow.core.finite_size). Verdict: does T* track T_pc, Tc, both
(the data cannot tell) or neither (finite_size.tracking_verdict)."""

import math

import numpy as np

from ..errors import UsageError
from ..exact import TC
from .exp5_local import add_flow, add_flow_inputs, mcref_name
from .figures import ensemble_legend_note, new_figure, save_png
from .markdown import md_table, pm, zs
from .verdicts import bound_of, compare, exact_value, meas

KEY = "6_finite_size"
OBSERVABLE = "specific_heat"


def add_stages(b) -> None:
    """Seed k's stages (the plan builder names them per seed)."""
    p = b.p
    for L in p.fss_sizes:
        grid, th, starts, _ = add_flow_inputs(b, L)
        b.mc("peak", L, p.fss_peak_T, p.fss_peak_samples,
             f"Monte Carlo around the specific heat's peak, L={L}")
        n_h = (L - 1) ** 2
        r = b.rbm(f"rbm-fss-mixed-L{L}", grid, L * L, n_h, p.fss_rbm_steps,
                  list(range(len(p.grid))), f"RBM {L * L} -> {n_h} on the whole grid")
        add_flow(b, f"flowfss-L{L}", r, th, starts, p.fss_flow_chains, L)


def _t_star(p, a) -> dict:
    """One flow's T*: the mean over starts of the last step's observable-matching reading
    (error: their errors combined); None when a reading is a bound (range end)."""
    N = p.flow_steps
    v, e, bound = a["T_obs"][:, N], a["T_obs_err"][:, N], a["T_obs_bound"][:, N]
    if np.any(bound != 0) or not (np.all(np.isfinite(v)) and np.all(np.isfinite(e))):
        return meas(None, None)
    return meas(float(v.mean()), float(math.sqrt(np.sum(e * e)) / v.size))


def pseudo_critical(p, spins, temperatures) -> dict:
    """T_pc(L) and the peak height from a "peak" Monte Carlo dataset (n_T, n, L, L)."""
    from ..finite_size import pseudo_critical_temperature
    from ..observables import energy_per_spin, magnetisation

    L = spins.shape[-1]
    e = [energy_per_spin(x) for x in spins]
    m = [magnetisation(x) for x in spins]
    n_bins = min(20, spins.shape[1])
    try:
        est = pseudo_critical_temperature(temperatures, e, m, L * L, OBSERVABLE, n_bins=n_bins)
    except UsageError as exc:
        return {"T_pc": meas(None, None), "height": meas(None, None), "failed": str(exc)}
    return {"T_pc": meas(est.temperature, est.error), "height": meas(est.height,
                                                                     est.height_error),
            "fit": {"window": list(est.window), "n_bins": n_bins,
                    "curve": {"T": est.temperatures.tolist(), "value": est.values.tolist(),
                              "error": est.errors.tolist()}}}


def measure(p, view) -> dict:
    """Seed k's T*(L), T_pc(L) and the thermometer's reading of Monte Carlo at Tc."""
    sizes = {}
    for L in p.fss_sizes:
        peak = view[f"mc-peak-L{L}"].arrays
        pc = pseudo_critical(p, peak["spins"], peak["temperatures"])
        ref = view[mcref_name(p, L)].arrays
        sizes[f"L{L}"] = {"settings": {"L": L, "n_hidden": (L - 1) ** 2, **pc.pop("fit", {}),
                                       "failed": pc.pop("failed", None)},
                          "T_star": _t_star(p, view[f"flowfss-L{L}"].arrays),
                          "mc_tc_T_obs": meas(ref["tc_T_obs"], ref["tc_T_obs_err"],
                                              bound_of(ref["tc_T_obs_bound"])), **pc}
    return {"sizes": sizes}


def results(p, measured: dict) -> dict:
    from ..finite_size import tracking_verdict

    sizes = measured["sizes"]
    for r in sizes.values():
        r["T_star_vs_T_pc"] = compare(r["T_star"], r["T_pc"])
        r["T_star_vs_Tc"] = compare(r["T_star"], exact_value(TC))
    usable = [s for s in sizes.values()
              if s["T_star"]["value"] is not None and s["T_star"]["error"]
              and s["T_pc"]["value"] is not None]
    if usable:
        t = tracking_verdict([s["T_star"]["value"] for s in usable],
                             [s["T_star"]["error"] for s in usable],
                             [s["T_pc"]["value"] for s in usable],
                             [s["T_pc"]["error"] for s in usable], TC)
        verdict = {"verdict": t.pop("verdict"),
                   "settings": {**t, "sizes": [s["settings"]["L"] for s in usable]}}
    else:
        verdict = {"verdict": "undetermined", "settings": {"sizes": []}}
    return {"settings": {"sizes": list(p.fss_sizes), "seeds": p.seeds,
                         "rbm_steps": p.fss_rbm_steps, "chains": p.fss_flow_chains,
                         "steps": p.flow_steps, "peak_T": list(p.fss_peak_T),
                         "peak_samples": p.fss_peak_samples, "observable": OBSERVABLE},
            "sizes": sizes, "tracking": verdict}


_WORDS = {"T_pc": "tracks the finite-size pseudo-critical temperature T_pc(L), not Tc",
          "Tc": "tracks Tc, not the finite-size pseudo-critical temperature",
          "both": "is consistent with both T_pc(L) and Tc: these data cannot tell them apart",
          "neither": "tracks neither T_pc(L) nor Tc",
          "undetermined": "cannot be judged (no size gave a T* and a T_pc with errors)"}


def report_section(p, e6: dict, results: dict) -> list:
    s = e6["settings"]
    t = e6["tracking"]
    lines = ["## Experiment 6: the flow's fixed point against system size", "",
             f"At each L an RBM L² → (L−1)² is trained on the whole temperature grid "
             f"({s['rbm_steps']} updates, {s['seeds']} seed(s)) and flowed {s['steps']} steps "
             f"from low-T, high-T and random starts ({s['chains']} chains each). T* = the "
             "observable thermometer's reading at the last step, averaged over the starts; "
             "ensemble over seeds (mean ± standard error; one seed: that run's own error). "
             "T_pc(L) = the peak of the specific heat from Monte Carlo on "
             f"{len(s['peak_T'])} temperatures {s['peak_T'][0]:g}–{s['peak_T'][-1]:g} "
             f"({s['peak_samples']} configurations each): a parabola through the five points "
             "around the maximum, jackknife over 20 bins (rgflow.core.finite_size). The "
             "thermometer's own reading of Monte Carlo at Tc (same L) shows its calibration.",
             ""]
    rows = []
    for r in e6["sizes"].values():
        rows.append([r["settings"]["L"], pm(r["T_star"]), pm(r["mc_tc_T_obs"]), pm(r["T_pc"]),
                     f"{r['T_star_vs_T_pc']['verdict']} ({zs(r['T_star_vs_T_pc'])})",
                     f"{r['T_star_vs_Tc']['verdict']} ({zs(r['T_star_vs_Tc'])})"])
    lines += md_table(["L", "T* (flow endpoint)", "thermometer on Monte Carlo at Tc",
                       "T_pc (C peak)", "T* vs T_pc", "T* vs Tc"], rows)
    criterion = ("Criterion: χ² = Σ_L (T* − T_ref)² / (σ*² + σ_ref²) against its 95% "
                 "quantile with one degree of freedom per L, for T_ref = T_pc(L) and for "
                 f"T_ref = Tc = {TC:.4f}.")
    if t["verdict"] == "undetermined":
        lines.append(f"**T* {_WORDS['undetermined']}.** {criterion}")
    else:
        ts = t["settings"]
        lines.append(f"**As measured, T* {_WORDS[t['verdict']]}** (L = "
                     f"{', '.join(str(x) for x in ts['sizes'])}: χ² = {ts['chi2_pc']:.3g} "
                     f"against T_pc, {ts['chi2_tc']:.3g} against Tc, 95% limit "
                     f"{ts['chi2_95']:.3g}). {criterion}")
    failed = [f"L = {r['settings']['L']}: {r['settings']['failed']}"
              for r in e6["sizes"].values() if isinstance(r["settings"].get("failed"), str)]
    if failed:
        lines.append("No T_pc: " + "; ".join(failed) + ".")
    return lines + [""]


def figures(p) -> list:
    return [("finite_size.png",
             "The mixed-temperature RBM flow's endpoint T* (observable thermometer, mean over "
             "starts; bold: ensemble over seeds ± standard error, faint: each seed) and the "
             "specific heat's peak T_pc(L) from Monte Carlo (ensemble over seeds ± standard "
             "error) against 1/L, with Tc; right, one seed's specific-heat curves around the "
             "peak (± jackknife error).", _figure)]


def _figure(p, results, views, path):
    from .figures import seed_values

    e6 = results["experiments"][KEY]
    fig = new_figure(11, 4.2)
    ax, ax2 = fig.subplots(1, 2)
    for key, colour, label in (("T_star", "#d62728", "T* (RBM flow endpoint)"),
                               ("T_pc", "#1f77b4", "T_pc (specific-heat peak)")):
        xs, ys, es = [], [], []
        for r in e6["sizes"].values():
            x = 1.0 / r["settings"]["L"]
            m = r[key]
            if key == "T_star":
                vals = [v for v in seed_values(m) if v is not None]
                ax.plot([x] * len(vals), vals, ls="none", marker="o", ms=4, color=colour,
                        alpha=0.35)
            if m.get("value") is not None:
                xs.append(x)
                ys.append(m["value"])
                es.append(m.get("error") or 0.0)
        ax.errorbar(xs, ys, yerr=es, color=colour, marker="o", capsize=3, lw=2, label=label)
    ax.axhline(TC, color="0.3", ls="--", lw=1, label="Tc")
    ax.set_xlabel("1/L")
    ax.set_ylabel("temperature (J/k_B)")
    ax.set_xlim(left=0)
    ax.legend(fontsize=8)
    ax.set_title(ensemble_legend_note(p.seeds), fontsize=9)
    for i, r in enumerate(e6["sizes"].values()):  # the curve of one seed
        c = r["settings"].get("curve")
        if isinstance(c, dict) and "seeds" in c:  # seeds' curves differ: draw the first
            c = c["seeds"][0]
        if c:
            ax2.errorbar(c["T"], c["value"], yerr=c["error"], marker="o", ms=3, capsize=2,
                         label=f"L = {r['settings']['L']}", color=f"C{i}")
    ax2.axvline(TC, color="0.3", ls="--", lw=1)
    ax2.set_xlabel("T (J/k_B)")
    ax2.set_ylabel("specific heat per spin C/N (k_B)")
    ax2.legend(fontsize=8)
    fig.suptitle("The RBM flow's fixed point against the finite-size pseudo-critical "
                 "temperature")
    save_png(fig, path)
