"""The thermometers' own numbers: classifier accuracies with binomial errors, the gates that
decide whether a thermometer may give verdicts (core/SCIENCE.md §6), the report's
thermometer section and the calibration figure."""

import numpy as np

from ..exact import TC
from .claims import (
    ACCURACY_Z_MIN,
    CALIBRATION_Z_MAX,
    accuracy_gate,
    chance_level,
    within_one_chance,
)
from .figures import COLOURS, new_figure, save_png
from .markdown import md_table, pm
from .stage import stages_of_kind
from .verdicts import binomial

FIGURE = ("thermometer_calibration.png",
          "Thermometer calibration. Left: the classifier's mean prediction for held-out Monte "
          "Carlo configurations against their true temperature, one curve per lattice size "
          "(one seed's classifiers; the diagonal is a perfect thermometer). Right: both "
          "thermometers' readings of the Monte Carlo sets at the temperatures the flows start "
          "from and at Tc, against the true temperature (mean over seeds ± error).")


def measure(view) -> dict:
    """Seed k's classifier accuracies (binomial errors), per thermometer size."""
    out = {}
    for st in stages_of_kind(view.stages, "thermometer"):
        fit = view[st.name].meta["fit"]
        L = view[st.name].meta["L"]
        out[f"L{L}"] = {
            "settings": {"L": L, "stage": st.base, "n_train": fit["n_train"],
                         "n_heldout": fit["n_heldout"], "chance": fit["chance"],
                         "epochs": st.settings["epochs"], "hidden": st.settings["hidden"]},
            "mlp_train_accuracy": binomial(fit["train_accuracy"], fit["n_train"]),
            "mlp_heldout_accuracy": binomial(fit["heldout_accuracy"], fit["n_heldout"]),
            "mlp_heldout_within_one": binomial(fit["heldout_within_one"], fit["n_heldout"]),
        }
    return out


def judge(measured: dict, n_seeds: int) -> dict:
    """The ensemble accuracies with the accuracy gate and the chance-level flag; chance's
    binomial spread is that of the held-out configurations of all seeds together."""
    out = {}
    for key, t in measured.items():
        s = t["settings"]
        n_t = round(1.0 / s["chance"])
        n_held = s["n_heldout"] * n_seeds
        gate = accuracy_gate(t["mlp_heldout_within_one"], n_t, n_held)
        out[key] = dict(t) | {
            "settings": s | {"chance_within_one": within_one_chance(n_t)},
            "accuracy_gate": {"passed": gate.passed, "z": gate.z, "reason": gate.reason},
            "chance_level": chance_level(t["mlp_heldout_accuracy"], n_t, n_held),
        }
    return out


def report_section(results: dict) -> list:
    lines = ["## Thermometers", "",
             "Two instruments read the temperature of a set of configurations "
             "(core/SCIENCE.md §6). The *classifier* is an MLP N_v → 64 → n_T softmax trained "
             "on labelled Monte Carlo configurations of the temperature grid at the lattice "
             "size it reads; *observable matching* inverts E/N and ⟨|m|⟩ through Monte Carlo "
             "curves of the same L and needs no training.", "",
             f"A thermometer gives verdicts only if it reads Monte Carlo configurations at the "
             f"temperatures it judges within {CALIBRATION_Z_MAX:g}σ of the truth and, for the "
             f"classifier, if its held-out within-one-step accuracy beats chance by more than "
             f"{ACCURACY_Z_MIN:g}σ. Otherwise it is silent, and the claims table says why.", ""]
    rows = []
    for t in results["thermometers"].values():
        s, g = t["settings"], t["accuracy_gate"]
        flag = " **chance level**" if t["chance_level"] else ""
        gate = (f"passes (z = {g['z']:+.1f})" if g["passed"] else
                f"**silent**: {g['reason']}")
        rows.append([s["L"], pm(t["mlp_heldout_accuracy"]) + flag, f"{s['chance']:.3f}",
                     pm(t["mlp_heldout_within_one"]), f"{s['chance_within_one']:.3f}",
                     s["n_heldout"], gate])
    lines += md_table(["L", "held-out accuracy", "chance", "within one grid step",
                       "chance (within one)", "held-out configurations per seed", "accuracy gate"],
                      rows)
    return lines


def _calibration_points(results: dict) -> dict:
    """{"T_obs"/"T_mlp": [(true T, reading meas, label)]} from the Monte Carlo reference sets
    of experiments 2 and 3."""
    pts = {"T_obs": [], "T_mlp": []}
    e2 = results["experiments"].get("2_rg_temperature", {})
    for st in e2.get("starts", []):
        lv = st["levels"][0]
        for key in pts:
            pts[key].append((st["settings"]["T_start"], lv[key], f"L = {lv['settings']['L']}"))
    e3 = results["experiments"].get("3_rbm_flow", {})
    for r in e3.get("mc_reference", {}).values():
        for key in pts:
            pts[key].append((r["settings"]["T"], r[key], f"L = {e3['settings']['L']}"))
    return pts


def figure(results, views, path) -> None:
    outputs = views[0]  # one seed's confusion matrices
    fig = new_figure(11, 4.6)
    ax1, ax2 = fig.subplots(1, 2)
    for i, st in enumerate(stages_of_kind(outputs.stages, "thermometer")):
        a = outputs[st.name].arrays
        t = np.asarray(a["ref_temperatures"], dtype=float)
        conf = np.asarray(a["confusion"], dtype=float)  # rows: true, columns: predicted
        n = conf.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = conf @ t / n
            sd = np.sqrt(np.maximum(conf @ t**2 / n - mean**2, 0.0))
        L = outputs[st.name].meta["L"]
        ax1.errorbar(t, mean, yerr=sd / np.sqrt(np.maximum(n, 1)), color=COLOURS[i % 6],
                     marker="o", ms=3, lw=1.2, capsize=2, label=f"classifier, L = {L}")
    _diagonal_and_labels(ax1, ax1.get_xlim(), "perfect thermometer",
                         "true temperature T (units of J/k_B)",
                         "mean predicted temperature (J/k_B)",
                         "classifier on held-out Monte Carlo data")
    names = {"T_obs": "observable matching", "T_mlp": "classifier"}
    markers = "sDo^v<>"
    allT = []
    for j, (key, pts) in enumerate(_calibration_points(results).items()):
        sizes = sorted({lab for _, _, lab in pts})
        for k, size in enumerate(sizes):
            ok = [(T, r) for T, r, lab in pts if lab == size and r.get("value") is not None]
            if not ok:
                continue
            T = np.array([x for x, _ in ok]) + (j - 0.5) * 0.05
            v = np.array([r["value"] for _, r in ok])
            e = np.array([r["error"] or 0.0 for _, r in ok])
            bound = np.array(["bound" in r for _, r in ok])
            allT += [x for x, _ in ok]
            ax2.errorbar(T[~bound], v[~bound], yerr=e[~bound], ls="none",
                         marker=markers[k % 7], ms=5, capsize=3, color=COLOURS[j],
                         label=f"{names[key]}, {size}")
            if bound.any():
                ax2.plot(T[bound], v[bound], ls="none", marker=markers[k % 7], ms=7,
                         mfc="none", color=COLOURS[j],
                         label=f"{names[key]}, {size}: range end (a bound)")
    _diagonal_and_labels(ax2, (min(allT) - 0.3, max(allT) + 0.3) if allT else None,
                         "reading = true T", "true temperature of the Monte Carlo set (J/k_B)",
                         "thermometer reading (J/k_B)",
                         "readings of the reference sets (mean ± error)")
    fig.suptitle("Thermometer calibration on Monte Carlo configurations of known temperature")
    save_png(fig, path)


def _diagonal_and_labels(ax, span, diagonal: str, xlabel: str, ylabel: str, title: str):
    if span is not None:
        ax.plot(span, span, color="0.5", lw=1, ls=":", label=diagonal)
    ax.axvline(TC, color="k", lw=0.8, ls="--", label="Tc")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
