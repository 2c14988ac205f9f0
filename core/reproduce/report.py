"""The run's outputs from finished stages: results.json (every number with its error bar and
the verdicts drawn from them), report.md, correlators.npz, flow.npz and the figures."""

import json
from pathlib import Path

from ..exact import TC
from ..npzio import atomic_write_bytes
from .exp1_maps import correlator_arrays
from .exp3_rbm_flow import DELTA_EPSILON_EXACT, DELTA_SIGMA_EXACT, flow_arrays
from .markdown import md_table, pm, zs
from .plan import EXPERIMENTS
from .presets import Preset
from .stage import FORMAT, SCHEMA, jsonable, stages_of_kind
from .verdicts import Z_AGREE, binomial

OUTPUT_FILES = ("report.md", "results.json", "correlators.npz", "flow.npz")


def _thermometer_results(stages, outputs) -> dict:
    """The classifiers' accuracies (binomial errors), per thermometer size."""
    out = {}
    for st in stages_of_kind(stages, "thermometer"):
        fit = outputs[st.name].meta["fit"]
        L = outputs[st.name].meta["L"]
        out[f"L{L}"] = {
            "settings": {"L": L, "stage": st.name, "n_train": fit["n_train"],
                         "n_heldout": fit["n_heldout"], "chance": fit["chance"],
                         "epochs": st.settings["epochs"], "hidden": st.settings["hidden"]},
            "mlp_train_accuracy": binomial(fit["train_accuracy"], fit["n_train"]),
            "mlp_heldout_accuracy": binomial(fit["heldout_accuracy"], fit["n_heldout"]),
            "mlp_heldout_within_one": binomial(fit["heldout_within_one"], fit["n_heldout"]),
        }
    return out


def _rbm_diagnostics(outputs, name) -> dict:
    """An RBM stage's last monitoring values."""
    meta = outputs[name].meta
    last = meta["history"][-1] if meta["history"] else {}
    return {k: last.get(k) for k in ("step", "reconstruction_error", "pll", "free_energy_gap")
            if k in last} | {"n_train": meta["n_train"], "train_seconds": meta["train_seconds"]}


def build_results(p: Preset, stages, outputs) -> dict:
    from ..npzio import versions

    return {
        "format": FORMAT + "-results",
        "schema": SCHEMA,
        "preset": p.settings(),
        "constants": {"Tc": TC, "z_agree": Z_AGREE, "delta_sigma_exact": DELTA_SIGMA_EXACT,
                      "delta_epsilon_exact": DELTA_EPSILON_EXACT},
        "versions": versions(),
        "stages": [{"name": st.name, "kind": st.kind, "key": st.key,
                    "seconds": outputs[st.name].meta.get("seconds")} for st in stages],
        "thermometers": _thermometer_results(stages, outputs),
        # Monitoring values of the training runs: one evaluation each, no error bars.
        "diagnostics": {"rbm_training": {st.name: _rbm_diagnostics(outputs, st.name)
                                         for st in stages_of_kind(stages, "rbm")}},
        "experiments": {exp.KEY: exp.results(p, stages, outputs) for exp in EXPERIMENTS},
    }


def build_report(p: Preset, results: dict, figure_notes: list) -> str:
    lines = [f"# Reproduction report: preset `{p.name}`", "",
             "Is Deep Learning a Renormalization Group Flow? (de Mello Koch, de Mello Koch, "
             "Cheng, arXiv:1906.05212): the analyses of core/SCIENCE.md §4–§9 as measured by rgflow.",
             "",
             "Every number is value ± one standard error. A comparison reports the "
             "difference, its combined error and z = difference / error; |z| ≤ "
             f"{Z_AGREE:g} is called consistent, otherwise higher/lower. Conclusions below "
             "are generated from these numbers, not written in advance.", ""]
    lines += ["## Settings", ""]
    lines += md_table(["setting", "value"], [[k, f"`{v}`"] for k, v in p.settings().items()])
    lines += ["## Thermometers", "",
              "Classifier: MLP N_v → 64 → n_T softmax trained on labelled Monte Carlo "
              "configurations of the grid (its held-out accuracy is per grid point; "
              "'within one' counts neighbours as right). Observable matching: E/N and ⟨|m|⟩ "
              "inverted through Monte Carlo curves of the same L (no training).", ""]
    rows = [[k, pm(t["mlp_heldout_accuracy"]), pm(t["mlp_heldout_within_one"]),
             f"{t['settings']['chance']:.4f}", t["settings"]["n_train"]]
            for k, t in results["thermometers"].items()]
    lines += md_table(["L", "held-out accuracy", "held-out within one step", "chance",
                        "training configurations"], rows)
    for exp in EXPERIMENTS:
        lines += exp.report_section(p, results["experiments"][exp.KEY], results)
    lines += ["## Stages", "", "Cached in `cache/<stage>-<key>.npz`; seconds are those of the "
              "run that computed the stage.", ""]
    lines += md_table(["stage", "key", "seconds"],
                       [[s["name"], s["key"][:16], s["seconds"]] for s in results["stages"]])
    lines += ["## Figures", ""] + [f"- {n}" for n in figure_notes] + [""]
    lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
              ""]
    return "\n".join(lines)


def write_figures(p, results, stages, outputs, out_dir: Path) -> tuple[list, list]:
    """PNG per experiment; (files, notes). Without matplotlib: no files and a note."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return [], ["matplotlib is not installed: no PNG figures were written "
                    "(install matplotlib to get them)."]
    files, notes = [], []
    for exp in EXPERIMENTS:
        if not getattr(exp, "has_figure", lambda p: True)(p):
            continue
        name, what = exp.FIGURE
        exp.figure(p, results, stages, outputs, out_dir / name)
        files.append(name)
        notes.append(f"`{name}`: {what}")
    return files, notes


def write_outputs(p: Preset, stages, outputs, out_dir: Path) -> tuple[list, dict]:
    """report.md, results.json, correlators.npz, flow.npz and the figures, atomically."""
    from ..npzio import atomic_write_npz

    results = build_results(p, stages, outputs)
    meta = {"format": FORMAT, "schema": SCHEMA, "preset": p.name}
    atomic_write_npz(out_dir / "correlators.npz", correlator_arrays(p, outputs), meta)
    atomic_write_npz(out_dir / "flow.npz", flow_arrays(p, stages, outputs), meta)
    figs, notes = write_figures(p, results, stages, outputs, out_dir)
    atomic_write_bytes(out_dir / "results.json",
                       (json.dumps(jsonable(results), indent=1, sort_keys=True) + "\n").encode())
    atomic_write_bytes(out_dir / "report.md", build_report(p, results, notes).encode())
    return list(OUTPUT_FILES) + figs, results


def headline(results: dict) -> dict:
    """The key numbers and verdicts, compact (for the CLI's JSON summary)."""
    ex = results["experiments"]
    out: dict = {"1_correlators": {}, "2_rg_temperature": {}, "3_rbm_flow": {}}
    for key, r in ex["1_correlators"].items():
        c = r["comparison"]["own_block_fraction"]
        out["1_correlators"][key] = {
            "own_block_fraction_rg": pm(r["rg"]["own_block_fraction"]),
            "own_block_fraction_rbm": pm(r["rbm"]["own_block_fraction"]),
            "rbm_vs_rg": f"{c['verdict']} (z = {zs(c)})"}
    for st in ex["2_rg_temperature"]["starts"]:
        lv = st["levels"]
        out["2_rg_temperature"][f"T={st['settings']['T_start']:.4f}"] = {
            "T_obs_by_level": [pm(x["T_obs"]) for x in lv],
            "T_mlp_by_level": [pm(x["T_mlp"]) for x in lv],
            "obs": st["obs_flow"]["verdict"], "mlp": st["mlp_flow"]["verdict"]}
    for label, rb in ex["3_rbm_flow"]["rbms"].items():
        out["3_rbm_flow"][label] = {
            start: {"T_obs_final": pm(s["T_obs"]["final"]),
                    "T_mlp_final": pm(s["T_mlp"]["final"]),
                    "obs": s["obs_toward_tc"]["verdict"],
                    "delta_sigma_final": pm(s["delta_sigma_final"])}
            for start, s in rb["starts"].items()}
        out["3_rbm_flow"][label]["endpoints_obs"] = rb["common_endpoint_obs"]["verdict"]
    out["3_rbm_flow"]["mc_tc_reference_T_obs"] = pm(
        ex["3_rbm_flow"]["mc_reference"]["tc"]["T_obs"])
    if "levels" in ex["4_stacked"]:
        out["4_stacked"] = [
            {"level": r["settings"]["level"], "rg": pm(r["rg"]["own_block_fraction"]),
             "rbm": pm(r["rbm"]["own_block_fraction"]),
             "verdict": r["comparison"]["own_block_fraction"]["verdict"]}
            for r in ex["4_stacked"]["levels"]]
    return out
