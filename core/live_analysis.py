"""Live analysis shown by the app (and `rgflow calibrate`): correlator maps with locality
numbers, two-point functions, and the temperature readings of the RBM flow.

Plain numpy + core (no Textual), run off the UI thread on copies of the session's data.
Nothing here consumes the session's RNG streams: the few random draws use throw-away
streams derived from the seed and a counter, so looking at a view never changes a run.
"""

import math

import numpy as np

CORRELATOR_SAMPLES = 600  # newest stored configurations used for the <v h> maps
TWO_POINT_SAMPLES = 300  # ... and for G(r)
FLOW_T_GRID = (0.5, 6.0, 111)  # thermometer reference grid (Onsager), min, max, points


def _finite_stats(x) -> dict:
    x = np.asarray(x, dtype=np.float64).ravel()
    fin = x[np.isfinite(x)]
    return {
        "mean": float(fin.mean()) if fin.size else float("nan"),
        "median": float(np.median(fin)) if fin.size else float("nan"),
        "sem": float(fin.std(ddof=1) / math.sqrt(fin.size)) if fin.size > 1 else float("nan"),
        "n_infinite": int(np.isinf(x).sum()),
    }


def correlators(data: np.ndarray, rbm, b: int) -> dict:
    """<v h> maps of RG (block average) and of the RBM on the same configurations, the
    connected maps <v h> - <v><h> of both, and the locality numbers of each
    (rgflow.core.correlators.locality).

    Keys: rg, rbm (maps, not connected), rg_c, rbm_c (connected), n, b,
    uniform_own_block_fraction; then, per kind ("" not connected, "c_" connected):
    {kind}rg_own, {kind}rg_ptf, {kind}rbm_own, {kind}rbm_ptf, {kind}rbm_block, ... with their
    _stats over units. RG unit a belongs to block a by construction; an RBM unit has no
    assigned block, so its numbers are taken around its best block (the block holding most
    of |map|). Near Tc on a finite lattice <v h> is dominated by <v><h> ~ m^2, which is
    spread over the whole lattice: the connected maps show what is local.
    """
    from .correlators import rbm_vh_maps, rg_vh_maps
    from .rbm import hidden_mean, spins_to_visible
    from .rg import block_average

    L = data.shape[-1]
    sites = np.asarray(data).reshape(len(data), -1)
    flat = sites.astype(np.float64)
    rg = rg_vh_maps(data, b)
    rbm_maps = rbm_vh_maps(rbm, data)
    v_mean = flat.mean(axis=0).reshape(L, L)
    h_rg = block_average(flat.reshape(-1, L, L), b).reshape(len(flat), -1).mean(axis=0)
    h_rbm = np.zeros(rbm.n_hidden)
    for start in range(0, len(flat), 256):
        v = spins_to_visible(np.ascontiguousarray(sites[start:start + 256]), rbm.units,
                             rbm.dtype)
        h = np.asarray(hidden_mean(rbm, v), dtype=np.float64)
        h_rbm += (2.0 * h - 1.0 if rbm.units == "binary" else h).sum(axis=0)
    h_rbm /= len(flat)
    out = {"rg": rg, "rbm": rbm_maps, "rg_c": rg - h_rg[:, None, None] * v_mean,
           "rbm_c": rbm_maps - h_rbm[:, None, None] * v_mean, "n": int(len(data)),
           "b": int(b), "uniform_own_block_fraction": b * b / (L * L)}
    try:
        out.update(_locality_numbers(out["rg"], out["rbm"], b, L, ""))
        out.update(_locality_numbers(out["rg_c"], out["rbm_c"], b, L, "c_"))
    except Exception as exc:  # e.g. L too small to have "far" sites: maps only
        out["locality_error"] = str(exc)
    return out


def _locality_numbers(rg: np.ndarray, rbm_maps: np.ndarray, b: int, L: int,
                      prefix: str) -> dict:
    from .correlators import locality

    rg_loc = locality(rg, b)
    rbm_loc = locality(rbm_maps, b)
    out = {"rg_own": rg_loc["rg_own_block_fraction"], "rg_ptf": rg_loc["rg_peak_to_far"],
           "rbm_own": rbm_loc["best_own_block_fraction"],
           "rbm_ptf": rbm_loc["best_peak_to_far"], "rbm_block": rbm_loc["best_block"],
           "rbm_unique": float(rbm_loc["best_block_unique"].mean()),
           "rbm_blocks_claimed": int(np.unique(rbm_loc["best_block"]).size),
           "n_blocks": (L // b) ** 2}
    for key in ("rg_own", "rg_ptf", "rbm_own", "rbm_ptf"):
        out[key + "_stats"] = _finite_stats(out[key])
    return {prefix + k: v for k, v in out.items()}


def two_point(data: np.ndarray, rbm, rule: str, b: int, level: int, seed: int,
              counter: int) -> dict:
    """G(r) (rgflow.core.observables.correlation_paper) of the stored configurations, of their RG
    level `level` (1-based, in units of the coarse lattice), and of one-step RBM
    reconstructions v -> h -> v' of the same configurations."""
    from rgflow.core.observables import correlation_paper
    from rgflow.core.rbm import sample_hidden, sample_visible, spins_to_visible
    from rgflow.core.rg import hierarchy
    from rgflow.core.rng import new_states, seed_sequence

    out = {"n": int(len(data))}
    out["data"] = correlation_paper(data)
    state = new_states(seed_sequence(seed, f"view-two-point/{counter}"))
    if level >= 1:
        levels = hierarchy(data, rule, b, level, state)
        coarse = levels[-1]
        if coarse.shape[-1] >= 4:
            out["rg"] = correlation_paper(coarse)
            out["rg_size"] = int(coarse.shape[-1])
    v = spins_to_visible(data.reshape(len(data), -1), rbm.units, rbm.dtype)
    h = sample_hidden(rbm, v, state)
    recon = sample_visible(rbm, h, state)
    on = 0 if rbm.units == "spin" else 0.5
    L = data.shape[-1]
    out["rbm"] = correlation_paper(np.where(recon > on, 1, -1).astype(np.int8)
                                   .reshape(len(data), L, L))
    return out


class FlowThermometer:
    """Temperature reading of RBM-flow configurations from their energy per spin, matched to
    Onsager's infinite-lattice E(T) (rgflow.core.thermometer.ObservableThermometer.from_exact).
    The finite lattice's E/N differs slightly from the infinite one, so the reading is
    labelled as Onsager-based."""

    def __init__(self, L: int):
        from .thermometer import ObservableThermometer

        lo, hi, n = FLOW_T_GRID
        self.L = int(L)
        self.thermometer = ObservableThermometer.from_exact(
            L, np.linspace(lo, hi, n), infinite_lattice=True, n_dense=1001)

    def read(self, spins: np.ndarray) -> dict:
        per_chain = self.thermometer.per_configuration(spins)
        out = {"per_chain": np.asarray(per_chain, dtype=np.float64),
               "T": float(np.median(per_chain)), "T_err": float("nan")}
        if len(spins) >= 2:
            est = self.thermometer.estimate(spins)
            out["T"], out["T_err"] = est["T"], est["T_err"]
        return out


def histogram(values: np.ndarray, bins: int = 24) -> tuple[np.ndarray, np.ndarray]:
    """(bin centres, counts) as a step-friendly pair, for drawing a histogram as a line."""
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if values.size == 0:
        return np.empty(0), np.empty(0)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-9:
        lo, hi = lo - 0.05, hi + 0.05
    counts, edges = np.histogram(values, bins=bins, range=(lo, hi))
    # draw as steps: each bin contributes its two edges at its height
    x = np.repeat(edges, 2)[1:-1]
    y = np.repeat(counts, 2).astype(np.float64)
    return x, y


CLASSIFIER_GRID = (0.5, 4.25, 16)  # classifier thermometer's temperatures: min, max, points
CLASSIFIER_SAMPLES = 200  # Monte Carlo configurations per temperature
CLASSIFIER_EPOCHS = 20


def calibrate_classifier(L: int, seed: int, threads: int | None = None, stop=None,
                         n: int = CLASSIFIER_SAMPLES, epochs: int = CLASSIFIER_EPOCHS) -> dict:
    """Sample labelled Monte Carlo data at lattice size L on the CLASSIFIER_GRID
    (rgflow.core.sampling.generate, its own streams from `seed`) and fit an MLPThermometer on it.
    stop() returning True aborts with KeyboardInterrupt (between sampling chunks or epochs).
    Returns the fitted thermometer with its held-out numbers."""
    from .sampling import SampleSpec, generate
    from .thermometer import MLPThermometer, grouped_dataset

    lo, hi, k = CLASSIFIER_GRID
    spec = SampleSpec(int(L), tuple(float(t) for t in np.linspace(lo, hi, k)), int(n),
                      seed=int(seed), threads=threads)
    spins, temperatures, _ = generate(spec, stop=stop)
    configs, labels = grouped_dataset(spins, temperatures)

    def progress(_epoch, _loss):
        if stop is not None and stop():
            raise KeyboardInterrupt

    thermometer = MLPThermometer()
    fit = thermometer.fit(configs, labels, np.asarray(temperatures, dtype=np.float64),
                          epochs=epochs, batch=100, lr=1e-3, holdout_fraction=0.2, seed=seed,
                          progress=progress)
    return {"thermometer": thermometer, "L": int(L), "n_T": int(k), "n": int(n),
            "heldout_accuracy": float(fit["heldout_accuracy"]),
            "heldout_within_one": float(fit["heldout_within_one"]),
            "chance": float(fit["chance"])}


def classifier_reading(calibration: dict, spins: np.ndarray) -> dict:
    """The classifier's probability-weighted temperature of each configuration; mean and its
    standard error over the configurations."""
    per_chain = calibration["thermometer"].predict_temperature(spins, method="mean")
    stats = _finite_stats(per_chain)
    return {"per_chain": np.asarray(per_chain, dtype=np.float64), "T": stats["mean"],
            "T_err": stats["sem"]}


CALIBRATION_PREFIX = "classifier_"  # array names of a calibration inside a save or a file
_CALIBRATION_NUMBERS = ("L", "n_T", "n", "heldout_accuracy", "heldout_within_one", "chance")


def calibration_arrays(calibration: dict) -> dict:
    """A classifier calibration as plain arrays (no pickle), named classifier_*: written
    with a session's save, or alone by `rgflow calibrate`."""
    arrays = {f"{CALIBRATION_PREFIX}{k}": v
              for k, v in calibration["thermometer"].state_arrays().items()}
    for key in _CALIBRATION_NUMBERS:
        arrays[f"{CALIBRATION_PREFIX}{key}"] = np.array(calibration[key])
    return arrays


def calibration_from_arrays(arrays: dict) -> dict | None:
    """The calibration stored by calibration_arrays, or None if the arrays hold none.
    Inconsistent arrays raise UsageError (from MLPThermometer.from_state_arrays)."""
    from .errors import UsageError
    from .thermometer import MLPThermometer

    n = len(CALIBRATION_PREFIX)
    mine = {k[n:]: v for k, v in arrays.items() if k.startswith(CALIBRATION_PREFIX)}
    if not mine:
        return None
    missing = [k for k in _CALIBRATION_NUMBERS if k not in mine]
    if missing:
        raise UsageError(f"classifier calibration lacks {missing[0]!r}")
    out = {"thermometer": MLPThermometer.from_state_arrays(mine)}
    for key in _CALIBRATION_NUMBERS:
        value = np.asarray(mine[key]).item()
        out[key] = int(value) if key in ("L", "n_T", "n") else float(value)
    return out
