"""Experiment 2: the RG flow of temperature. Majority rule applied level by level to Monte
Carlo configurations below, at and above Tc; each level read by thermometers of its size."""

import numpy as np

from ..exact import TC
from ..thermometer import measure_temperature
from .claims import rg_silence
from .figures import (
    COLOURS,
    ensemble_legend_note,
    new_figure,
    save_png,
    seed_values,
    series_with_seeds,
)
from .kinds import load_thermometers
from .markdown import md_table, pm, zs
from .stage import StageContext
from .verdicts import bound_of, compare, direction, exact_value, meas, side_of_tc

KEY = "2_rg_temperature"


def add_stages(b) -> None:
    p = b.p
    starts = b.mc("rgstart", p.rgT_L, p.rgT_start_T, p.rgT_samples,
                  f"Monte Carlo at the RG start temperatures, L={p.rgT_L}")
    therms = [b.thermometer(p.rgT_L // 2 ** k) for k in range(p.rgT_levels + 1)]
    b.add("rg-temperature", "rg_temperature", "thermometers on majority-rule levels",
          {"data": starts, "thermometers": therms, "seed": b.seed("rg-temperature")},
          (starts, *therms), len(p.rgT_start_T) * (p.rgT_levels + 1) * 0.3)


def _run_rg_temperature(ctx: StageContext):
    """Both thermometers on each majority-rule level of each start temperature's
    configurations."""
    from ..rg import majority_rule
    from ..rng import new_states

    s = ctx.settings
    src = ctx.inputs[s["data"]].arrays
    spins, temps = src["spins"], src["temperatures"]
    therms = [load_thermometers(ctx.inputs[name].arrays) for name in s["thermometers"]]
    levels = len(therms) - 1
    n_s = spins.shape[0]
    n_t = therms[0][0].temperatures.size
    keys = ("T_mlp", "T_mlp_err", "T_obs", "T_obs_err", "abs_m", "abs_m_err")
    out = {k: np.full((n_s, levels + 1), np.nan) for k in keys}
    out["hist_mlp"] = np.zeros((n_s, levels + 1, n_t), np.int64)
    out["hist_obs"] = np.zeros((n_s, levels + 1, n_t), np.int64)
    out["T_obs_bound"] = np.zeros((n_s, levels + 1), np.int8)
    state = new_states(s["seed"])
    details = []
    for i in range(n_s):
        x = spins[i]
        row = []
        for k in range(levels + 1):
            ctx.check_stop()
            if k > 0:
                x = majority_rule(x, 2, state)
            mlp, obs = therms[k]
            m = measure_temperature(x, mlp, obs)
            for key in keys:
                out[key][i, k] = m[key]
            out["hist_mlp"][i, k] = m["hist_mlp"]
            out["hist_obs"][i, k] = m["hist_obs"]
            out["T_obs_bound"][i, k] = m["T_obs_bound"]
            row.append(m["obs"])
            ctx.progress(i * (levels + 1) + k + 1, n_s * (levels + 1))
        details.append(row)
    out["start_T"] = temps
    out["level_L"] = np.array([spins.shape[-1] // 2 ** k for k in range(levels + 1)])
    return out, {"observable_estimates": details}


def measure(p, view) -> dict:
    """Seed k's temperature readings per start temperature and majority-rule level."""
    a = view["rg-temperature"].arrays
    out = {"settings": {"L0": p.rgT_L, "levels": p.rgT_levels, "rule": "majority, b=2",
                        "n_configs": p.rgT_samples,
                        "level_L": [int(x) for x in a["level_L"]]}, "starts": []}
    for i, T in enumerate(a["start_T"]):
        lv = []
        for k in range(a["level_L"].size):
            lv.append({"settings": {"level": k, "L": int(a["level_L"][k])},
                       "T_mlp": meas(a["T_mlp"][i, k], a["T_mlp_err"][i, k]),
                       "T_obs": meas(a["T_obs"][i, k], a["T_obs_err"][i, k],
                                     bound_of(a["T_obs_bound"][i, k])),
                       "abs_m": meas(a["abs_m"][i, k], a["abs_m_err"][i, k])})
        out["starts"].append({"settings": {"T_start": float(T), "side": side_of_tc(float(T))},
                              "levels": lv})
    return out


def results(p, measured: dict) -> dict:
    """The measured numbers (ensembles over seeds) with the verdicts drawn from them."""
    out = dict(measured)
    out["starts"] = []
    for st in measured["starts"]:
        T, side = st["settings"]["T_start"], st["settings"]["side"]
        first, last = st["levels"][0], st["levels"][-1]
        out["starts"].append(dict(st) | {
            "obs_flow": direction(first["T_obs"], last["T_obs"], side),
            "mlp_flow": direction(first["T_mlp"], last["T_mlp"], side),
            "calibration_obs_level0": compare(first["T_obs"], exact_value(T)),
            "calibration_mlp_level0": compare(first["T_mlp"], exact_value(T)),
        })
    return out


def report_section(p, e2: dict, results: dict) -> list:
    s = e2["settings"]
    lines = ["## Experiment 2: the RG flow of temperature", "",
             f"Majority rule (b = 2, random tie-breaks) applied {s['levels']} times to "
             f"{s['n_configs']} Monte Carlo configurations of L = {s['L0']} at each start "
             "temperature; level k is read by thermometers calibrated at L/2^k (classifier "
             "trained on that size; observable matching against Monte Carlo curves of that "
             "size).", ""]
    for st in e2["starts"]:
        T = st["settings"]["T_start"]
        lines.append(f"### Start T = {T:.4f} ({st['settings']['side']} Tc = {TC:.4f})")
        lines.append("")
        rows = [[lv["settings"]["level"], lv["settings"]["L"], pm(lv["T_obs"]),
                 pm(lv["T_mlp"]), pm(lv["abs_m"])] for lv in st["levels"]]
        lines += md_table(["level", "L", "T (observables)", "T (classifier, mean)",
                            "⟨|m|⟩"], rows)
        for name, key, reading in (("observable thermometer", "obs_flow", "T_obs"),
                                   ("classifier", "mlp_flow", "T_mlp")):
            f = st[key]
            c = f["change"]
            silence = rg_silence(results, st, reading)
            verdict = (f"**{f['verdict']}**" if not silence else
                       "no verdict: this thermometer is silent because " + "; ".join(silence))
            lines.append(f"- {name}: level 0 → {len(st['levels']) - 1}: change "
                         f"{pm(c['difference'])} (z = {zs(c)}): {verdict}.")
        for name, key in (("observable thermometer", "calibration_obs_level0"),
                          ("classifier", "calibration_mlp_level0")):
            c = st[key]
            lines.append(f"- calibration, {name} at level 0 vs the sampled T: "
                         f"{pm(c['difference'])} (z = {zs(c)}, {c['verdict']}).")
        lines.append("")
    return lines


def figures(p) -> list:
    """(file name, caption, draw) of this experiment's figures."""
    return [("rg_temperature_flow.png",
             f"The RG flow of temperature: configurations sampled at each start temperature "
             f"(L = {p.rgT_L}) are coarse-grained by majority rule, and each level is read by "
             "thermometers of that level's size. Left: observable matching; right: the "
             "classifier. Dashed line: Tc. Open markers: readings at the end of the "
             "thermometer's range (bounds).", _figure)]


def _figure(p, results, views, path):
    e2 = results["experiments"][KEY]
    level_L = e2["settings"]["level_L"]
    x = np.arange(len(level_L))
    fig = new_figure(11, 4.4)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, (key, title) in zip(axes, (("T_obs", "observable matching"),
                                       ("T_mlp", "classifier (mean over configurations)")),
                                strict=True):
        for i, st in enumerate(e2["starts"]):
            T0 = st["settings"]["T_start"]
            series_with_seeds(ax, x, [lv[key] for lv in st["levels"]], COLOURS[i % 6],
                              f"start T = {T0:.3f} ({st['settings']['side']} Tc)")
            ax.plot([-0.12], [T0], marker="*", ms=11, color=COLOURS[i % 6], ls="none",
                    label="sampled T at level 0" if i == len(e2["starts"]) - 1 else None)
        ax.set_xlim(-0.35, len(level_L) - 0.65)
        ax.axhline(TC, color="k", ls="--", lw=1, label=f"Tc = {TC:.3f}")
        ax.set_xticks(x)
        ax.set_xticklabels([f"{k}\n(L = {L})" for k, L in enumerate(level_L)])
        ax.set_xlabel("majority-rule level k")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("temperature read by the thermometer (J/k_B)")
    n_seeds = max(len(seed_values(lv["T_obs"])) for st in e2["starts"] for lv in st["levels"])
    fig.suptitle("Experiment 2: temperatures along the RG (majority-rule) flow "
                 f"({ensemble_legend_note(n_seeds)})")
    save_png(fig, path)
