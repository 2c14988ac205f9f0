"""Plain words for the report: what each preset setting means, the tiny preset's banner, and
the short "how to read this" that follows the claims table."""

from .verdicts import Z_AGREE

# Preset field -> what it means, in words a physicist reads without the code.
SETTING_WORDS = {
    "name": "preset",
    "seed": "base random seed (every stream derives from it)",
    "seeds": "independent seeds per seed-dependent number",
    "algorithm": "Monte Carlo algorithm (auto: Wolff up to 1.3 Tc, Metropolis above)",
    "symmetrize": "flip each configuration's sign at random",
    "rbm_units": "RBM unit values (spin: ±1)",
    "rbm_k": "Gibbs sweeps per update (PCD-k)",
    "rbm_batch": "RBM minibatch size",
    "rbm_chains": "RBM persistent chains",
    "rbm_lr": "RBM learning rate (Adam)",
    "rbm_adam_eps": "Adam ε of the RBM",
    "rbm_weight_scale": "initial weight standard deviation",
    "rbm_holdout": "fraction of RBM data held out",
    "rbm_monitor_points": "training-monitor evaluations per RBM",
    "corr_sizes": "⟨v h⟩ lattice sizes L (N_h = L²/4)",
    "corr_T": "⟨v h⟩ temperature",
    "corr_samples": "⟨v h⟩ Monte Carlo configurations",
    "rbm_steps": "RBM updates (⟨v h⟩ and stacked RBMs)",
    "jackknife_blocks": "jackknife blocks",
    "grid": "thermometer temperature grid",
    "thermo_samples": "configurations per grid temperature (RG-level thermometers)",
    "mlp_hidden": "classifier hidden units",
    "mlp_epochs": "classifier training epochs",
    "mlp_batch": "classifier minibatch size",
    "mlp_lr": "classifier learning rate (Adam)",
    "mlp_holdout": "fraction of classifier data held out",
    "rgT_L": "RG temperature flow: starting lattice size",
    "rgT_levels": "RG temperature flow: majority-rule levels",
    "rgT_start_T": "RG temperature flow: start temperatures",
    "rgT_samples": "RG temperature flow: configurations per start",
    "flow_L": "RBM flow: lattice size",
    "flow_hidden": "RBM flow: hidden units",
    "flow_train_sets": "RBM flow: training sets",
    "flow_grid_samples": "RBM flow: configurations per grid temperature",
    "flow_tc_samples": "RBM flow: configurations at Tc",
    "flow_rbm_steps": "RBM flow: RBM updates",
    "flow_steps": "RBM flow: steps v → h → v",
    "flow_chains": "RBM flow: chains per start",
    "flow_start_T": "RBM flow: Monte Carlo start temperatures (low, high)",
    "fit_r_min": "power-law fit window starts at r",
    "stack_L": "stacked RBMs: lattice size (none: skipped)",
    "stack_levels": "stacked RBMs: levels",
    "local_L": "local RBMs: lattice side L (L² → L²/4)",
    "local_fields": "local RBMs: receptive fields R compared with the global RBM",
    "local_steps": "local RBMs: parameter updates per RBM",
    "local_vh_configs": "local RBMs: configurations for the ⟨v h⟩ maps (none: all)",
    "local_flow_L": "local RBM flow: lattice side L",
    "local_flow_R": "local RBM flow: receptive field R",
    "fss_sizes": "flow endpoint vs size: lattice sides L",
    "fss_rbm_steps": "flow endpoint vs size: parameter updates per RBM",
    "fss_flow_chains": "flow endpoint vs size (and local RBM flow): chains per start",
    "fss_peak_T": "pseudo-critical temperature: Monte Carlo temperatures",
    "fss_peak_samples": "pseudo-critical temperature: configurations per temperature",
}

SMOKE_TEST_PRESETS = ("tiny",)
BANNER = ("> **Smoke test: numbers are not meaningful.** The `{name}` preset runs every stage at "
          "toy sizes to check that the pipeline works; its samples, training runs and "
          "thermometers are far too small for any physics. Run `--preset quick` or "
          "`--preset paper` for results.")


def setting_rows(settings: dict) -> list:
    """[plain words, value, internal key] per preset setting."""
    rows = []
    for key, value in settings.items():
        if isinstance(value, list) and len(value) > 8:
            shown = f"{len(value)} values, {value[0]:g} … {value[-1]:g}"
        elif isinstance(value, list):
            shown = ", ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in value)
        elif isinstance(value, float):
            shown = f"{value:.6g}"
        else:
            shown = "none" if value is None else str(value)
        rows.append([SETTING_WORDS.get(key, key), shown, f"`{key}`"])
    return rows


def how_to_read(n_seeds: int | None) -> list:
    if n_seeds and n_seeds > 1:
        errors = ("- Every number is *value ± one standard error*. A number that depends on a "
                  "random seed (Monte Carlo data, RBM and classifier training, flows) is the "
                  f"mean over {n_seeds} independent seeds, and its error is the standard error "
                  "of that mean, σ = max(s, w)/√N with s² = Σ_k (x_k − x̄)²/(N − 1) over "
                  "the N seeds' values x_k (s contains each run's own statistical error) and "
                  "w the runs' typical own error, a floor under s. "
                  "core/SCIENCE.md §8 gives every error formula.")
    else:
        errors = ("- Every number is *value ± one standard error*. This run used **one "
                  "seed**: each error is that run's own (jackknife over configuration blocks, "
                  "or the standard error over configurations) and does not include the spread "
                  "between training seeds, which can be many times larger. Ensembles over "
                  "seeds (core/SCIENCE.md §8) report the mean over N seeds with the standard "
                  "error max(s, w)/√N.")
    return [
        "## How to read this", "",
        errors,
        f"- A comparison gives z = difference / combined error; |z| ≤ {Z_AGREE:g} is "
        "*consistent*, beyond that *higher* or *lower*. The verdicts are computed from these "
        "numbers by the criteria in the table (core/SCIENCE.md §9), not written in advance.",
        "- A reading written *≥ x (range end)* or *≤ x* lies at the end of a thermometer's "
        "temperature range: it is a bound, not a measurement.",
        "- A thermometer that fails its own calibration, or whose accuracy is not clearly "
        "above chance, is *silent*: it gives no verdict, and the table says why.",
        "",
    ]
