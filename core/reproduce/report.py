"""The run's outputs from finished stages: results.json (every number with its error bar, the
verdicts drawn from them and the claims table), stages.json, report.md and report.html (the
claims first, then how to read them, then each experiment with its figures),
correlators.npz, flow.npz and the PNG figures in figures/."""

import json
from pathlib import Path

from ..exact import TC
from ..npzio import atomic_write_bytes
from . import thermometers
from .claims import evaluate_claims
from .ensemble import FORMULA, ensemble_tree
from .exp1_maps import correlator_arrays
from .exp3_rbm_flow import DELTA_EPSILON_EXACT, DELTA_SIGMA_EXACT, flow_arrays
from .html import markdown_to_html
from .markdown import md_table, pm, zs
from .plan import EXPERIMENTS
from .presets import Preset
from .stage import FORMAT, SCHEMA, SeedView, jsonable, stages_of_kind
from .verdicts import Z_AGREE
from .wording import BANNER, SMOKE_TEST_PRESETS, how_to_read, setting_rows

OUTPUT_FILES = ("report.md", "report.html", "results.json", "stages.json", "correlators.npz",
                "flow.npz")
FIGURE_DIR = "figures"


def _rbm_diagnostics(views) -> dict:
    """Each RBM's last monitoring values, one per seed (no error bars)."""
    out = {}
    for view in views:
        for st in stages_of_kind(view.stages, "rbm"):
            meta = view[st.name].meta
            last = meta["history"][-1] if meta["history"] else {}
            diag = {k: last.get(k) for k in ("step", "reconstruction_error", "pll",
                                             "free_energy_gap") if k in last}
            diag["n_train"] = meta["n_train"]
            entry = out.setdefault(st.base, {})
            for k, v in diag.items():
                entry.setdefault(k, []).append(v)
    return out


def seed_views(stages, outputs, n_seeds: int) -> list:
    return [SeedView(stages, outputs, k) for k in range(n_seeds)]


def build_results(p: Preset, stages, outputs) -> dict:
    """results.json: each experiment's numbers measured per seed, merged into ensembles
    (rgflow.core.reproduce.ensemble), then its verdicts drawn from the ensembles, then the
    claims table (rgflow.core.reproduce.claims). Nothing in it depends on how or where the
    stages ran."""
    from ..npzio import versions

    views = seed_views(stages, outputs, p.seeds)
    measured = ensemble_tree([
        {"thermometers": thermometers.measure(v),
         "experiments": {exp.KEY: exp.measure(p, v) for exp in EXPERIMENTS}}
        for v in views])
    results = {
        "format": FORMAT + "-results",
        "schema": SCHEMA,
        "preset": p.settings(),
        "constants": {"Tc": TC, "z_agree": Z_AGREE, "delta_sigma_exact": DELTA_SIGMA_EXACT,
                      "delta_epsilon_exact": DELTA_EPSILON_EXACT},
        "ensemble": {"n_seeds": p.seeds, "formula": FORMULA},
        "versions": versions(),
        "stages": [{"name": st.name, "kind": st.kind, "key": st.key, "seed": st.seed_index}
                   for st in stages],
        "thermometers": thermometers.judge(measured["thermometers"], p.seeds),
        # Monitoring values of the training runs: one evaluation each, no error bars.
        "diagnostics": {"rbm_training": _rbm_diagnostics(views)},
        "experiments": {exp.KEY: exp.results(p, measured["experiments"][exp.KEY])
                        for exp in EXPERIMENTS},
    }
    results["claims"] = evaluate_claims(results)
    return results


def stage_records(stages, outputs) -> list:
    """Where and how long each stage ran (from its cache file's meta): stages.json."""
    return [{"name": st.name, "kind": st.kind, "seed": st.seed_index, "key": st.key,
             "seconds": outputs[st.name].meta.get("seconds"),
             "worker": outputs[st.name].meta.get("worker")} for st in stages]


def _spread_rows(results: dict) -> list:
    """(quantity, ensemble number) of the headline measurements."""
    ex = results["experiments"]
    rows = [(f"classifier held-out accuracy, {k}", t["mlp_heldout_accuracy"])
            for k, t in results["thermometers"].items()]
    for key, r in ex["1_correlators"].items():
        rows += [(f"exp. 1 {key}: {side.upper()} own-block fraction",
                  r[side]["own_block_fraction"]) for side in ("rg", "rbm")]
    for st in ex["2_rg_temperature"]["starts"]:
        last = st["levels"][-1]
        T = st["settings"]["T_start"]
        rows += [(f"exp. 2 start T = {T:.4f}: T (observables), level "
                  f"{last['settings']['level']}", last["T_obs"]),
                 (f"exp. 2 start T = {T:.4f}: T (classifier), level "
                  f"{last['settings']['level']}", last["T_mlp"])]
    e3 = ex["3_rbm_flow"]
    rows.append(("exp. 3 Monte Carlo at Tc: T (observables)", e3["mc_reference"]["tc"]["T_obs"]))
    for label, rb in e3["rbms"].items():
        for start, s in rb["starts"].items():
            rows += [(f"exp. 3 {label} from {start}: final T (observables)", s["T_obs"]["final"]),
                     (f"exp. 3 {label} from {start}: final T (classifier)", s["T_mlp"]["final"]),
                     (f"exp. 3 {label} from {start}: final Δσ", s["delta_sigma_final"])]
    return rows


def _report_spread(results: dict) -> list:
    n = results["ensemble"]["n_seeds"]
    lines = ["## Training seeds: spread against within-run error", "",
             f"Every number that depends on a random seed is an ensemble over {n} independent "
             f"seeds: {results['ensemble']['formula']}. Below, the seed spread s beside the "
             "typical within-run error w (root mean square of the per-seed errors): s ≈ w "
             "means the seed adds nothing to the run's own noise; s ≫ w means the training "
             "seed dominates. Per-seed values are in results.json (`seeds`).", ""]
    rows = []
    for label, m in _spread_rows(results):
        s, w = m.get("seed_spread"), m.get("within_run_error")
        ratio = f"{s / w:.2g}" if s is not None and w else "n/a"
        rows.append([label, pm(m), "n/a" if s is None else f"{s:.3g}",
                     "n/a" if w is None else f"{w:.3g}", ratio])
    return lines + md_table(["quantity", "ensemble value ± error", "seed spread s",
                             "within-run error w", "s / w"], rows)


def _numbers_cell(numbers: list) -> str:
    return "<br>".join(f"{n['label']}: {pm(n)}" for n in numbers) or "—"


def claims_section(claims: list) -> list:
    """The claims table and, under it, what decided each verdict."""
    lines = ["## The paper's claims, as measured", ""]
    rows = [[c["number"], c["claim"], c["source"], _numbers_cell(c["numbers"]), c["criterion"],
             f"**{c['verdict']}**"] for c in claims]
    lines += md_table(["#", "claim", "source", "our numbers", "criterion", "verdict"], rows)
    notes = [c for c in claims if c["notes"]]
    if notes:
        lines += ["What decided the verdicts:", ""]
        lines += [f"- Claim {c['number']}: " + " ".join(c["notes"]) for c in notes]
        lines.append("")
    return lines


def _figure_lines(figs: list, counter: list) -> list:
    lines = []
    for path, caption in figs:
        counter[0] += 1
        short = caption.split(":")[0].split(".")[0]
        lines += [f"![{short}]({path})", "", f"*Figure {counter[0]}.* {caption}", ""]
    return lines


def build_report(p: Preset, results: dict, figures: dict, stages: list) -> str:
    """report.md. figures: {section key: [(relative path, caption)]}; stages: stage_records."""
    lines = [f"# Reproduction report: preset `{p.name}`", ""]
    if p.name in SMOKE_TEST_PRESETS:
        lines += [BANNER.format(name=p.name), ""]
    lines += ["*Is Deep Learning a Renormalization Group Flow?* (E. de Mello Koch, R. de Mello "
              "Koch, L. Cheng, arXiv:1906.05212), its claims and those of the papers it builds "
              "on, as measured by rgflow. The methods are described in core/SCIENCE.md.", ""]
    lines += claims_section(results["claims"])
    lines += how_to_read(results["ensemble"]["n_seeds"])
    counter = [0]
    lines += thermometers.report_section(results)
    lines += _figure_lines(figures.get("thermometers", []), counter)
    for exp in EXPERIMENTS:
        lines += exp.report_section(p, results["experiments"][exp.KEY], results)
        lines += _figure_lines(figures.get(exp.KEY, []), counter)
    lines += _report_spread(results)
    lines += ["## Settings", ""]
    lines += md_table(["setting", "value", "key"], setting_rows(results["preset"]))
    lines += ["## Stages", "", "Cached in `cache/<stage>-<key>.npz`; seconds and worker are "
              "those of the run that computed the stage (also in stages.json).", ""]
    lines += md_table(["stage", "key", "seconds", "worker"],
                      [[s["name"], s["key"][:16], s["seconds"], s["worker"] or "n/a"]
                       for s in stages])
    lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in results["versions"].items()),
              ""]
    return "\n".join(lines)


def write_figures(p, results, views, out_dir: Path) -> dict:
    """Every figure as figures/<name>.png; {section key: [(relative path, caption)]}."""
    fig_dir = out_dir / FIGURE_DIR
    fig_dir.mkdir(exist_ok=True)
    jobs = [("thermometers", thermometers.FIGURE[0], thermometers.FIGURE[1],
             lambda path: thermometers.figure(results, views, path))]
    for exp in EXPERIMENTS:
        for name, caption, draw in exp.figures(p):
            jobs.append((exp.KEY, name, caption,
                         lambda path, draw=draw: draw(p, results, views, path)))
    out: dict = {}
    for key, name, caption, draw in jobs:
        draw(fig_dir / name)
        out.setdefault(key, []).append((f"{FIGURE_DIR}/{name}", caption))
    return out


def write_outputs(p: Preset, stages, outputs, out_dir: Path) -> tuple[list, dict]:
    """report.md, report.html, results.json, stages.json, correlators.npz, flow.npz and the
    figures, each written atomically."""
    from ..npzio import atomic_write_npz

    results = build_results(p, stages, outputs)
    views = seed_views(stages, outputs, p.seeds)
    records = stage_records(stages, outputs)
    meta = {"format": FORMAT, "schema": SCHEMA, "preset": p.name}
    atomic_write_npz(out_dir / "correlators.npz", correlator_arrays(p, views), meta)
    atomic_write_npz(out_dir / "flow.npz", flow_arrays(p, views), meta)
    figures = write_figures(p, results, views, out_dir)
    atomic_write_bytes(out_dir / "results.json", _json_bytes(results))
    atomic_write_bytes(out_dir / "stages.json", _json_bytes(
        {"format": FORMAT + "-stages", "schema": SCHEMA, "stages": records}))
    report = build_report(p, results, figures, records)
    atomic_write_bytes(out_dir / "report.md", report.encode())
    html = markdown_to_html(report, f"rgflow reproduction report: preset {p.name}", out_dir)
    atomic_write_bytes(out_dir / "report.html", html.encode())
    files = [path for figs in figures.values() for path, _ in figs]
    return list(OUTPUT_FILES) + files, results


def _json_bytes(x) -> bytes:
    return (json.dumps(jsonable(x), indent=1, sort_keys=True) + "\n").encode()


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
