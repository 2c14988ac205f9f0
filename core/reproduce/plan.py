"""The stage graph of a preset: `build_plan` expands a preset into stages (each experiment
module adds its own through `PlanBuilder`, once per training seed), `assign_keys` gives each
stage its content key (kind, settings, input keys, code version: rgflow.core.reproduce.
codeversion) and cache path."""

import hashlib
import json
from pathlib import Path

from ..errors import UsageError
from . import (
    exp1_maps,
    exp2_rg_temperature,
    exp3_rbm_flow,
    exp4_stacked,
    exp5_local,
    exp6_finite_size,
    kinds,
)
from .codeversion import code_version
from .costs import COST_MLP_MAC, est_mc, est_rbm
from .presets import Preset, validate_preset
from .stage import FORMAT, Stage, derived_seed, jsonable

# The function that computes each stage kind.
STAGE_FUNCS = {"mc": kinds._run_mc, "rbm": kinds._run_rbm, "hidden": kinds._run_hidden,
               "thermometer": kinds._run_thermometer, "vh": exp1_maps._run_vh,
               "rg_temperature": exp2_rg_temperature._run_rg_temperature,
               "flow": exp3_rbm_flow._run_flow, "mc_reference": kinds._run_mc_reference,
               # the flow of an RBM outside experiment 3 (other sizes, local fields)
               "flow_other": exp3_rbm_flow._run_flow}

class PlanBuilder:
    """Collects the stages of training seed k (`seed_index`) in dependency order, into a
    dict shared by every seed's builder.

    A stage is seed-dependent when its settings hold a seed (drawn from (preset seed, k) by
    `seed`) or when one of its inputs is seed-dependent; its name then gets "-s<k>". Other
    stages (deterministic functions of shared inputs) keep their name, so every seed shares
    one copy. Adding a name twice with different settings is an error. Every method returns
    the stage's name in the plan: pass it as the input of later stages."""

    def __init__(self, p: Preset, threads: int = 1, seed_index: int = 0,
                 stages: dict | None = None):
        self.p = p
        self.threads = threads
        self.k = seed_index
        self.stages: dict = {} if stages is None else stages

    def add(self, base, kind, title, settings, inputs=(), estimate=0.0) -> str:
        settings = jsonable(settings)
        per_seed = "seed" in settings or any(self.stages[i].seed_index is not None
                                             for i in inputs)
        name = f"{base}-s{self.k}" if per_seed else base
        if name in self.stages:
            if self.stages[name].settings != settings:
                raise UsageError(f"preset {self.p.name!r}: stage {name} would be built twice "
                                 "with different settings")
            return name
        self.stages[name] = Stage(name, kind, title, settings, tuple(inputs), float(estimate),
                                  base=base, seed_index=self.k if per_seed else None)
        return name

    def seed(self, base: str) -> int:
        """The seed of stage `base` in training seed k's copy of the graph."""
        return derived_seed(self.p.seed, f"seed{self.k}/{base}")

    def mc(self, label, L, temps, n, title) -> str:
        """Monte Carlo dataset (n_T, n, L, L) at the temperatures temps."""
        p = self.p
        name = f"mc-{label}-L{L}"
        return self.add(name, "mc", title,
                        {"L": L, "temperatures": list(temps), "n": n, "algorithm": p.algorithm,
                         "symmetrize": p.symmetrize, "seed": self.seed(name)},
                        estimate=est_mc(L, len(temps), n, self.threads))

    def rbm(self, name, data, n_v, n_h, steps, t_indices, title, receptive_field=None) -> str:
        """An RBM n_v -> n_h trained on the dataset `data` (temperature rows t_indices);
        with a receptive_field R, locally connected (rgflow.core.rbm_local)."""
        p = self.p
        settings = {"data": data, "t_indices": t_indices, "n_hidden": n_h, "steps": steps,
                    "k": p.rbm_k, "chains": p.rbm_chains, "lr": p.rbm_lr,
                    "adam_eps": p.rbm_adam_eps, "batch": p.rbm_batch, "units": p.rbm_units,
                    "holdout": p.rbm_holdout, "weight_scale": p.rbm_weight_scale,
                    "monitor_points": p.rbm_monitor_points, "seed": self.seed(name)}
        cost = est_rbm(p, n_v, n_h, steps)
        if receptive_field is not None:  # absent for global RBMs: their keys stay as they were
            settings["receptive_field"] = receptive_field
            cost *= min(1.0, 0.1 + 2.5 * (2 + 2 * receptive_field) ** 2 / n_v)
        return self.add(name, "rbm", title, settings, (data,), cost)

    def thermometer(self, L) -> str:
        """Classifier + observable thermometers at size L, with their grid dataset."""
        p = self.p
        n = p.flow_grid_samples if L == p.flow_L else p.thermo_samples
        data = self.mc("grid", L, p.grid, n,
                       f"Monte Carlo on the {len(p.grid)}-temperature grid, L={L}")
        name = f"thermometer-L{L}"
        cost = p.mlp_epochs * len(p.grid) * n * L * L * p.mlp_hidden * COST_MLP_MAC
        return self.add(name, "thermometer", f"thermometers at L={L} (MLP + reference curves)",
                        {"data": data, "hidden": p.mlp_hidden, "epochs": p.mlp_epochs,
                         "batch": p.mlp_batch, "lr": p.mlp_lr, "holdout": p.mlp_holdout,
                         "seed": self.seed(name)}, (data,), cost + 1.0)


EXPERIMENTS = (exp1_maps, exp2_rg_temperature, exp3_rbm_flow, exp4_stacked, exp5_local,
               exp6_finite_size)


def build_plan(p: Preset, threads: int = 1) -> list:
    """The preset's stages in dependency order (names are unique; equal names share work)."""
    validate_preset(p)
    stages: dict = {}
    for k in range(p.seeds):
        b = PlanBuilder(p, threads, k, stages)
        for experiment in EXPERIMENTS:
            experiment.add_stages(b)
    return list(stages.values())


def assign_keys(stages: list, cache_dir: Path) -> None:
    keys: dict = {}
    versions: dict = {}
    for st in stages:
        if st.kind not in versions:
            versions[st.kind] = code_version(STAGE_FUNCS[st.kind])
        blob = json.dumps({"format": FORMAT, "kind": st.kind, "settings": st.settings,
                           "inputs": [keys[i] for i in st.inputs],
                           "code": versions[st.kind]}, sort_keys=True)
        st.key = hashlib.sha256(blob.encode()).hexdigest()
        st.path = cache_dir / f"{st.name}-{st.key}.npz"
        keys[st.name] = st.key
