"""The stage graph of a preset: `build_plan` expands a preset into stages (each experiment
module adds its own through `PlanBuilder`), `assign_keys` gives each stage its content key
(kind, settings, input keys, code version) and cache path."""

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
from .costs import COST_MLP_MAC, est_mc, est_rbm
from .presets import Preset, validate_preset
from .stage import FORMAT, Stage, derived_seed, jsonable

# The function that computes each stage kind.
STAGE_FUNCS = {"mc": kinds._run_mc, "rbm": kinds._run_rbm, "hidden": kinds._run_hidden,
               "thermometer": kinds._run_thermometer, "vh": exp1_maps._run_vh,
               "rg_temperature": exp2_rg_temperature._run_rg_temperature,
               "flow": exp3_rbm_flow._run_flow, "mc_reference": kinds._run_mc_reference,
               "flow_other": exp3_rbm_flow._run_flow}

# Revision of each stage kind's logic: bump when a kind's computation changes.
KIND_REVISIONS = {"mc": 1, "rbm": 1, "hidden": 1, "thermometer": 1, "vh": 1,
                  "rg_temperature": 2, "flow": 2, "mc_reference": 2, "flow_other": 1}
# Core modules whose source each kind depends on (hashed into the cache key).
KIND_MODULES = {
    "mc": ("sampling", "ising", "rng", "observables", "exact"),
    "rbm": ("rbm", "rbm_local", "training", "rbm_monitor", "rng"),
    "hidden": ("rbm", "rng"),
    "thermometer": ("thermometer", "observables", "rng"),
    "vh": ("correlators", "rg", "rbm"),
    "rg_temperature": ("rg", "thermometer", "observables", "rng"),
    "flow": ("rbm", "thermometer", "observables", "correlators", "rng"),
    # the flow of an RBM outside experiment 3 (other sizes, local fields): same computation
    "flow_other": ("rbm", "thermometer", "observables", "correlators", "rng"),
    "mc_reference": ("thermometer", "observables", "correlators"),
}


def code_version(kind: str) -> str:
    """sha256 of the kind's revision, the source of the core modules it uses and the
    numpy / numba versions."""
    from ..npzio import versions

    h = hashlib.sha256()
    h.update(f"{kind}:{KIND_REVISIONS[kind]}".encode())
    here = Path(__file__).resolve().parent.parent
    for mod in KIND_MODULES[kind]:
        h.update(mod.encode())
        h.update((here / f"{mod}.py").read_bytes())
    v = versions()
    h.update(f"numpy {v['numpy']} numba {v['numba']}".encode())
    return h.hexdigest()


class PlanBuilder:
    """Collects a preset's stages in dependency order. Stages with equal names share work
    (adding one twice with different settings is an error)."""

    def __init__(self, p: Preset, threads: int = 1):
        self.p = p
        self.threads = threads
        self.stages: dict = {}

    def add(self, name, kind, title, settings, inputs=(), estimate=0.0) -> str:
        settings = jsonable(settings)
        if name in self.stages:
            if self.stages[name].settings != settings:
                raise UsageError(f"preset {self.p.name!r}: stage {name} would be built twice "
                                 "with different settings")
            return name
        self.stages[name] = Stage(name, kind, title, settings, tuple(inputs), float(estimate))
        return name

    def seed(self, name: str) -> int:
        return derived_seed(self.p.seed, name)

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
    b = PlanBuilder(p, threads)
    for experiment in EXPERIMENTS:
        experiment.add_stages(b)
    return list(b.stages.values())


def assign_keys(stages: list, cache_dir: Path) -> None:
    keys: dict = {}
    versions: dict = {}
    for st in stages:
        if st.kind not in versions:
            versions[st.kind] = code_version(st.kind)
        blob = json.dumps({"format": FORMAT, "kind": st.kind, "settings": st.settings,
                           "inputs": [keys[i] for i in st.inputs],
                           "code": versions[st.kind]}, sort_keys=True)
        st.key = hashlib.sha256(blob.encode()).hexdigest()
        st.path = cache_dir / f"{st.name}-{st.key}.npz"
        keys[st.name] = st.key
