"""Stage kinds shared by the experiments: Monte Carlo datasets ("mc"), RBM training ("rbm"),
sampled hidden layers ("hidden"), thermometers ("thermometer") and the Monte Carlo reference
readings of the flow's instruments ("mc_reference"). Each `_run_<kind>(ctx)` returns
(arrays, meta) for the stage's cache file."""

import threading

import numpy as np

from ..correlators import scaling_fit
from ..exact import TC
from ..thermometer import measure_temperature
from .stage import StageContext


def _run_mc(ctx: StageContext):
    from ..sampling import SampleSpec, generate

    s = ctx.settings
    spec = SampleSpec(L=s["L"], temperatures=tuple(s["temperatures"]), n=s["n"],
                      algorithm=s["algorithm"], seed=s["seed"], symmetrize=s["symmetrize"],
                      threads=ctx.threads)
    total = s["n"] * len(s["temperatures"])
    lock = threading.Lock()
    done = [0]

    def progress(_i, new):
        with lock:
            done[0] += new
            d = done[0]
        ctx.progress(d, total)

    spins, temps, meta = generate(spec, progress=progress, stop=ctx.stop)
    return {"spins": spins, "temperatures": temps}, {"sampler": meta}


def training_data(ctx: StageContext) -> np.ndarray:
    s = ctx.settings
    data = ctx.inputs[s["data"]].arrays["spins"]
    if data.ndim == 4:
        idx = s.get("t_indices")
        data = data if idx is None else data[idx]
        data = data.reshape(-1, data.shape[-2], data.shape[-1])
    return np.ascontiguousarray(data, dtype=np.int8)


def _run_rbm(ctx: StageContext):
    from ..rbm import TrainConfig
    from ..training import train

    s = ctx.settings
    data = training_data(ctx)
    cfg = TrainConfig(k=s["k"], persistent=True, n_chains=s["chains"], optimizer="adam",
                      lr=s["lr"], adam_eps=s["adam_eps"], batch=s["batch"])
    steps = s["steps"]
    monitor_every = max(1, steps // max(1, s["monitor_points"]))

    def progress(step, metrics):
        ctx.progress(step, steps)

    res = train(cfg, data, steps, n_hidden=s["n_hidden"], units=s["units"],
                holdout_fraction=s["holdout"], seed=s["seed"], monitor_every=monitor_every,
                weight_scale=s["weight_scale"], receptive_field=s.get("receptive_field"),
                progress=progress, stop=ctx.stop)
    if res.stopped is not None:
        raise KeyboardInterrupt
    rbm = res.trainer.rbm
    arrays = {"W": rbm.W, "visible_bias": rbm.visible_bias, "hidden_bias": rbm.hidden_bias}
    meta = {"history": res.history, "n_train": res.n_train, "n_heldout": res.n_heldout,
            "train_seconds": res.train_seconds, "monitor_seconds": res.monitor_seconds,
            "samples_per_s": res.samples_per_s, "n_visible": rbm.n_visible,
            "n_hidden": rbm.n_hidden, "units": rbm.units}
    return arrays, meta


def load_rbm_arrays(arrays, units="spin"):
    from ..rbm import RBM

    return RBM(arrays["W"], arrays["visible_bias"], arrays["hidden_bias"], units)


def _run_hidden(ctx: StageContext):
    """Sampled ±1 hidden units of an RBM given its training data: the next layer's data."""
    from ..rbm import sample_hidden, spins_to_visible
    from ..rng import new_states

    s = ctx.settings
    rbm = load_rbm_arrays(ctx.inputs[s["rbm"]].arrays, s["units"])
    data = training_data(ctx)
    state = new_states(s["seed"])
    out = np.empty((data.shape[0], rbm.n_hidden), dtype=np.int8)
    for start in range(0, data.shape[0], 2048):
        ctx.check_stop()
        v = spins_to_visible(data[start:start + 2048], rbm.units, rbm.dtype)
        h = sample_hidden(rbm, v, state)
        out[start:start + len(h)] = np.where(h > 0, 1, -1)
        ctx.progress(start + len(h), data.shape[0])
    return {"spins": out}, {"n": int(out.shape[0]), "n_hidden": rbm.n_hidden}


def _reference_from_spins(spins) -> dict:
    """Monte Carlo reference curves (as rgflow.core.thermometer.reference_curves) from a
    grid dataset."""
    from ..thermometer import reference_from_spins

    ref = reference_from_spins(spins)
    return {k: ref[k] for k in ("e_mean", "e_err", "m_mean", "m_err")}


def _run_thermometer(ctx: StageContext):
    from ..thermometer import MLPThermometer, grouped_dataset

    s = ctx.settings
    src = ctx.inputs[s["data"]].arrays
    spins, temps = src["spins"], src["temperatures"]
    ref = _reference_from_spins(spins)
    x, y = grouped_dataset(spins, temps)
    mlp = MLPThermometer(n_hidden=s["hidden"])
    epochs = s["epochs"]
    fit = mlp.fit(x, y, temps, epochs=epochs, batch=s["batch"], lr=s["lr"],
                  holdout_fraction=s["holdout"], seed=s["seed"],
                  progress=lambda e, loss: (ctx.check_stop(), ctx.progress(e, epochs)))
    arrays = {f"mlp_{k}": v for k, v in mlp.state_arrays().items()}
    arrays.update({f"ref_{k}": v for k, v in ref.items()})
    arrays["ref_temperatures"] = temps
    arrays["confusion"] = np.asarray(fit.pop("confusion"), dtype=np.int64)
    return arrays, {"fit": fit, "L": int(spins.shape[-1])}


def load_thermometers(arrays):
    """(MLPThermometer, ObservableThermometer) from a thermometer stage's arrays."""
    from ..thermometer import MLPThermometer, ObservableThermometer

    mlp = MLPThermometer.from_state_arrays(
        {k[4:]: v for k, v in arrays.items() if k.startswith("mlp_")})
    t = arrays["ref_temperatures"]
    obs = ObservableThermometer.from_monte_carlo(
        t, arrays["ref_e_mean"], arrays["ref_e_err"], arrays["ref_m_mean"], arrays["ref_m_err"],
        L=int(mlp.n_inputs ** 0.5 + 0.5))
    return mlp, obs


FLOW_SCALARS = ("T_mlp", "T_mlp_err", "T_obs", "T_obs_err", "abs_m", "abs_m_err",
                "delta_sigma", "delta_sigma_err", "delta_epsilon", "delta_epsilon_err",
                "chi2_sigma", "chi2_epsilon", "mc_abs_m_at_T_mlp")


def flow_measure(configs, mlp, obs, mc_T, mc_m, n_blocks, r_min) -> dict:
    """Temperatures, <|m|> and scaling dimensions of one configuration set (a flow step
    or a Monte Carlo reference)."""
    m = measure_temperature(configs, mlp, obs)
    sd = scaling_fit(configs, n_blocks=n_blocks, r_min=r_min)
    m.update({k: sd[k] for k in ("delta_sigma", "delta_sigma_err", "delta_epsilon",
                                 "delta_epsilon_err", "G_sigma", "G_sigma_err", "r_sigma",
                                 "G_epsilon", "G_epsilon_err", "r_epsilon")})
    m["chi2_sigma"] = sd["fit_sigma"]["chi2_dof"]
    m["chi2_epsilon"] = sd["fit_epsilon"]["chi2_dof"]
    # <|m|> of Monte Carlo at the temperature the classifier assigned (Iso et al.'s check).
    m["mc_abs_m_at_T_mlp"] = float(np.interp(m["T_mlp"], mc_T, mc_m))
    return m


def _run_mc_reference(ctx: StageContext):
    """What the L = 10 instruments read for genuine Monte Carlo configurations at Tc and at
    the flow's start temperatures: the reference the flow is compared with."""
    s = ctx.settings
    mlp, obs = load_thermometers(ctx.inputs[s["thermometer"]].arrays)
    tc = ctx.inputs[s["tc"]].arrays["spins"][0]
    starts = ctx.inputs[s["starts"]].arrays
    th = ctx.inputs[s["thermometer"]].arrays
    sets = [("tc", tc[: s["chains"]])] + [
        (name, starts["spins"][i][: s["chains"]]) for i, name in enumerate(("low", "high"))]
    out, meta = {}, {}
    for j, (name, x) in enumerate(sets):
        ctx.check_stop()
        m = flow_measure(x, mlp, obs, th["ref_temperatures"], th["ref_m_mean"],
                         s["jackknife_blocks"], s["r_min"])
        for k in FLOW_SCALARS:
            out[f"{name}_{k}"] = np.array(m[k])
        for g in ("G_sigma", "G_sigma_err", "G_epsilon", "G_epsilon_err", "hist_mlp",
                  "hist_obs", "T_obs_bound"):
            out[f"{name}_{g}"] = m[g]
        meta[name] = {"n": int(x.shape[0]), "obs": m["obs"]}
        ctx.progress(j + 1, len(sets))
    meta["T"] = {"tc": TC, "low": float(starts["temperatures"][0]),
                 "high": float(starts["temperatures"][1])}
    return out, meta
