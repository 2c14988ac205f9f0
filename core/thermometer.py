"""Thermometers: how hot is a set of configurations? (core/SCIENCE.md §6)

(a) `MLPThermometer`: the authors' way (after Iso et al.), a supervised classifier
    N_v -> 64 -> n_T softmax trained on labelled Monte Carlo configurations over a
    temperature grid. Plain numpy, Adam, explicit seed.
(b) `ObservableThermometer`: no training. Measure the configuration set's energy per spin and
    <|m|>, and invert reference curves of the same L (Monte Carlo, exact enumeration, or,
    labelled as such, Onsager's infinite lattice) by interpolation.

The two can disagree (Veiga et al., arXiv:2006.10176): a classifier reports the grid label
whose training configurations look most like the input, which need not be where the input's
energy and magnetisation lie.
"""

import math

import numpy as np

from .errors import UsageError
from .rng import seed_sequence

ACTIVATIONS = ("tanh", "relu", "sigmoid")


# ---------------------------------------------------------------------------------------------
# Input handling


def _flat_configs(configs, n_inputs: int | None = None) -> np.ndarray:
    """(n, L, L) or (n, N) numeric -> (n, N) view."""
    x = np.asarray(configs)
    if x.dtype.kind not in "biuf":
        raise UsageError(f"configurations must be numeric, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x.reshape(x.shape[0], -1)
    if x.ndim != 2:
        raise UsageError(f"configurations must have shape (n, L, L) or (n, N), got {x.shape}")
    if x.shape[0] == 0:
        raise UsageError("need at least one configuration")
    if n_inputs is not None and x.shape[1] != n_inputs:
        raise UsageError(f"configurations have {x.shape[1]} sites, the thermometer expects "
                         f"{n_inputs}")
    return x


def _lattices(configs) -> np.ndarray:
    """(n, L, L) or (n, L*L) -> (n, L, L)."""
    x = np.asarray(configs)
    if x.ndim == 2:
        L = math.isqrt(x.shape[1])
        if L * L != x.shape[1]:
            raise UsageError(f"{x.shape[1]} sites do not form a square L x L lattice")
        x = x.reshape(x.shape[0], L, L)
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise UsageError(f"configurations must have shape (n, L, L) or (n, L*L), got {x.shape}")
    if x.shape[0] == 0:
        raise UsageError("need at least one configuration")
    if x.dtype.kind not in "biuf":
        raise UsageError(f"configurations must be numeric, got dtype {x.dtype}")
    return x


def _temperature_grid(temperatures) -> np.ndarray:
    t = np.asarray(temperatures, dtype=np.float64).ravel()
    if t.size < 2:
        raise UsageError("a temperature grid needs at least 2 temperatures")
    if not np.isfinite(t).all() or (t <= 0).any():
        raise UsageError("temperatures must be positive and finite")
    if (np.diff(t) <= 0).any():
        raise UsageError("temperatures must be strictly increasing")
    return t


def energy_and_abs_m(configs) -> tuple[np.ndarray, np.ndarray]:
    """Per configuration: energy per spin -sum_<ij> s_i s_j / N (periodic, each bond once)
    and |m| = |sum_i s_i| / N, float64 (n,) each."""
    from .observables import energy_per_spin, magnetisation

    x = _lattices(configs)
    return (np.atleast_1d(energy_per_spin(x)).astype(np.float64),
            np.abs(np.atleast_1d(magnetisation(x))).astype(np.float64))


# ---------------------------------------------------------------------------------------------
# (a) classifier


def _act(z, kind):
    if kind == "tanh":
        return np.tanh(z)
    if kind == "relu":
        return np.maximum(z, 0)
    return 1.0 / (1.0 + np.exp(-z))


def _act_grad(z, a, kind):
    """d act / dz from the pre-activation z and the activation a."""
    if kind == "tanh":
        return 1.0 - a * a
    if kind == "relu":
        return (z > 0).astype(a.dtype)
    return a * (1.0 - a)


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


class MLPThermometer:
    """Classifier thermometer: inputs (the +-1 sites) -> n_hidden activation units -> softmax
    over the temperature grid. Iso et al. used 64 hidden units; the activation (default relu:
    it generalised a little better than tanh on held-out L = 8 data) is our choice and
    configurable. Parameters are float32 by default."""

    def __init__(self, n_hidden: int = 64, activation: str = "relu", l2: float = 0.0,
                 dtype=np.float32):
        if activation not in ACTIVATIONS:
            raise UsageError(f"activation must be one of {', '.join(ACTIVATIONS)}, "
                             f"got {activation!r}")
        if int(n_hidden) < 1:
            raise UsageError(f"n_hidden must be >= 1, got {n_hidden}")
        if not (l2 >= 0 and math.isfinite(l2)):
            raise UsageError(f"l2 must be >= 0, got {l2}")
        self.n_hidden = int(n_hidden)
        self.activation = activation
        self.l2 = float(l2)
        self.dtype = np.dtype(dtype)
        self.W1 = self.b1 = self.W2 = self.b2 = None
        self.temperatures = None
        self.history: dict = {}

    # -- properties

    @property
    def fitted(self) -> bool:
        return self.W1 is not None

    @property
    def n_inputs(self) -> int:
        self._require_fitted()
        return int(self.W1.shape[0])

    def _require_fitted(self):
        if not self.fitted:
            raise UsageError("the thermometer has not been trained")

    # -- forward / backward

    def _forward(self, x):
        z1 = x @ self.W1 + self.b1
        a1 = _act(z1, self.activation)
        return z1, a1, _softmax(a1 @ self.W2 + self.b2)

    def _loss_and_grads(self, xb, yb):
        """Mean cross-entropy of a minibatch (without the l2 term) and the gradients of
        loss + l2/2 |W|^2 with respect to (W1, b1, W2, b2)."""
        z1, a1, p = self._forward(xb)
        nb = yb.size
        rows = np.arange(nb)
        loss = float(-np.log(np.maximum(p[rows, yb], 1e-30)).mean())
        dz2 = p
        dz2[rows, yb] -= 1.0
        dz2 /= nb
        gW2 = a1.T @ dz2 + self.l2 * self.W2
        gb2 = dz2.sum(axis=0)
        dz1 = (dz2 @ self.W2.T) * _act_grad(z1, a1, self.activation)
        gW1 = xb.T @ dz1 + self.l2 * self.W1
        gb1 = dz1.sum(axis=0)
        return loss, (gW1, gb1, gW2, gb2)

    def _init_params(self, n_in, n_out, rng):
        # Glorot-uniform weights, zero biases.
        lim1 = math.sqrt(6.0 / (n_in + self.n_hidden))
        lim2 = math.sqrt(6.0 / (self.n_hidden + n_out))
        self.W1 = rng.uniform(-lim1, lim1, (n_in, self.n_hidden)).astype(self.dtype)
        self.b1 = np.zeros(self.n_hidden, dtype=self.dtype)
        self.W2 = rng.uniform(-lim2, lim2, (self.n_hidden, n_out)).astype(self.dtype)
        self.b2 = np.zeros(n_out, dtype=self.dtype)

    def fit(self, configs, labels, temperatures, epochs: int = 20, batch: int = 100,
            lr: float = 1e-3, holdout_fraction: float = 0.2, seed: int = 0,
            progress=None) -> dict:
        """Train from scratch with Adam on cross-entropy (+ l2/2 |W|^2).

        configs (n, L, L) or (n, N); labels (n,) ints indexing `temperatures` (n_T,),
        strictly increasing. A stratified fraction `holdout_fraction` of each label is held
        out (never trained on). All randomness (init, split, shuffles) comes from
        numpy.random.default_rng(rgflow.core.rng.seed_sequence(seed, "thermometer")).
        progress(epoch, loss) is called after each epoch.

        Returns train_accuracy, heldout_accuracy, neighbour_confusion (fraction of held-out
        errors that land on an adjacent temperature), heldout_within_one (fraction of held-out
        predictions within one grid step), confusion (n_T, n_T) held-out counts (rows: true,
        columns: predicted), chance (1/n_T), loss (per epoch), n_train, n_heldout.
        """
        x = _flat_configs(configs)
        t = _temperature_grid(temperatures)
        y = np.asarray(labels)
        if y.shape != (x.shape[0],) or y.dtype.kind not in "iu":
            raise UsageError(f"labels must be {x.shape[0]} integers, got shape {y.shape} "
                             f"dtype {y.dtype}")
        if (y < 0).any() or (y >= t.size).any():
            raise UsageError(f"labels must index the {t.size} temperatures")
        epochs, batch = int(epochs), int(batch)
        if epochs < 1 or batch < 1:
            raise UsageError("epochs and batch must be >= 1")
        if not (0 <= holdout_fraction < 1):
            raise UsageError(f"holdout_fraction must be in [0, 1), got {holdout_fraction}")
        if not (lr > 0 and math.isfinite(lr)):
            raise UsageError(f"learning rate must be positive, got {lr}")
        y = y.astype(np.int64)
        rng = np.random.default_rng(seed_sequence(int(seed), "thermometer"))

        held = np.zeros(y.size, dtype=bool)
        for k in range(t.size):
            idx = np.flatnonzero(y == k)
            n_held = int(round(holdout_fraction * idx.size))
            held[rng.permutation(idx)[:n_held]] = True
        train_idx = np.flatnonzero(~held)
        if train_idx.size == 0:
            raise UsageError("no training configurations left after the hold-out split")

        self.temperatures = t
        self._init_params(x.shape[1], t.size, rng)
        params = [self.W1, self.b1, self.W2, self.b2]
        m = [np.zeros_like(p) for p in params]
        v = [np.zeros_like(p) for p in params]
        beta1, beta2, eps = 0.9, 0.999, 1e-8
        step = 0
        losses = []
        for epoch in range(epochs):
            order = rng.permutation(train_idx)
            total = 0.0
            for start in range(0, order.size, batch):
                sel = order[start : start + batch]
                loss, grads = self._loss_and_grads(np.asarray(x[sel], dtype=self.dtype), y[sel])
                total += loss * sel.size
                step += 1
                c1 = 1.0 - beta1**step
                c2 = 1.0 - beta2**step
                for p_, g, m_, v_ in zip(params, grads, m, v, strict=True):
                    m_ *= beta1
                    m_ += (1 - beta1) * g
                    v_ *= beta2
                    v_ += (1 - beta2) * g * g
                    p_ -= (lr * (m_ / c1) / (np.sqrt(v_ / c2) + eps)).astype(self.dtype)
            losses.append(total / train_idx.size)
            if progress is not None:
                progress(epoch + 1, losses[-1])

        pred_train = self._predict_labels(x[train_idx])
        out = {
            "train_accuracy": float((pred_train == y[train_idx]).mean()),
            "chance": 1.0 / t.size,
            "loss": losses,
            "n_train": int(train_idx.size),
            "n_heldout": int(held.sum()),
        }
        out.update(self._heldout_metrics(x[held], y[held]))
        self.history = {k: out[k] for k in ("train_accuracy", "heldout_accuracy",
                                            "neighbour_confusion", "n_train", "n_heldout")}
        return out

    def evaluate(self, configs, labels) -> dict:
        """Accuracy, neighbour_confusion, within-one and confusion matrix on labelled data."""
        self._require_fitted()
        x = _flat_configs(configs, self.n_inputs)
        y = np.asarray(labels, dtype=np.int64)
        if y.shape != (x.shape[0],) or (y < 0).any() or (y >= self.temperatures.size).any():
            raise UsageError("labels must be one grid index per configuration")
        res = self._heldout_metrics(x, y)
        return {k.replace("heldout_", ""): v for k, v in res.items()}

    def _heldout_metrics(self, x, y) -> dict:
        n_t = self.temperatures.size
        conf = np.zeros((n_t, n_t), dtype=np.int64)
        if y.size == 0:
            return {"heldout_accuracy": None, "neighbour_confusion": None,
                    "heldout_within_one": None, "confusion": conf.tolist()}
        pred = self._predict_labels(x)
        np.add.at(conf, (y, pred), 1)
        wrong = pred != y
        n_wrong = int(wrong.sum())
        near = int((np.abs(pred - y) == 1).sum())
        return {
            "heldout_accuracy": float(1.0 - n_wrong / y.size),
            "neighbour_confusion": float(near / n_wrong) if n_wrong else None,
            "heldout_within_one": float((np.abs(pred - y) <= 1).mean()),
            "confusion": conf.tolist(),
        }

    # -- prediction

    def predict_proba(self, configs) -> np.ndarray:
        """(n, n_T) softmax probabilities over the temperature grid (float64)."""
        self._require_fitted()
        x = _flat_configs(configs, self.n_inputs)
        out = np.empty((x.shape[0], self.temperatures.size), dtype=np.float64)
        for start in range(0, x.shape[0], 4096):
            xb = np.asarray(x[start : start + 4096], dtype=self.dtype)
            out[start : start + xb.shape[0]] = self._forward(xb)[2]
        return out

    def _predict_labels(self, x) -> np.ndarray:
        return np.argmax(self.predict_proba(x), axis=1)

    def predict_temperature(self, configs, method: str = "argmax") -> np.ndarray:
        """Temperature per configuration: the grid temperature of the most probable class
        ("argmax", the authors' choice) or the probability-weighted mean ("mean")."""
        if method not in ("argmax", "mean"):
            raise UsageError(f"method must be 'argmax' or 'mean', got {method!r}")
        p = self.predict_proba(configs)
        if method == "argmax":
            return self.temperatures[np.argmax(p, axis=1)]
        return p @ self.temperatures

    def histogram(self, configs) -> np.ndarray:
        """int64 (n_T,): how many configurations are assigned (argmax) to each grid point."""
        p = self.predict_proba(configs)
        return np.bincount(np.argmax(p, axis=1), minlength=self.temperatures.size).astype(
            np.int64)

    # -- persistence (plain arrays, no pickle)

    def state_arrays(self) -> dict:
        self._require_fitted()
        return {
            "W1": self.W1.copy(), "b1": self.b1.copy(), "W2": self.W2.copy(),
            "b2": self.b2.copy(), "temperatures": self.temperatures.copy(),
            "activation": np.array(self.activation),
            "l2": np.array(self.l2, dtype=np.float64),
        }

    @classmethod
    def from_state_arrays(cls, arrays) -> "MLPThermometer":
        try:
            W1, b1, W2, b2 = (np.asarray(arrays[k]) for k in ("W1", "b1", "W2", "b2"))
            t = _temperature_grid(arrays["temperatures"])
            activation = str(np.asarray(arrays["activation"]))
            l2 = float(np.asarray(arrays.get("l2", 0.0)))
        except KeyError as exc:
            raise UsageError(f"thermometer arrays lack {exc.args[0]!r}") from None
        ok = (W1.ndim == 2 and W2.ndim == 2 and b1.shape == (W1.shape[1],)
              and W2.shape == (W1.shape[1], t.size) and b2.shape == (t.size,)
              and all(a.dtype.kind == "f" for a in (W1, b1, W2, b2))
              and W1.dtype == W2.dtype == b1.dtype == b2.dtype)
        if not ok:
            raise UsageError("thermometer arrays have inconsistent shapes or dtypes")
        if not all(np.isfinite(a).all() for a in (W1, b1, W2, b2)):
            raise UsageError("thermometer arrays contain NaN or infinite values")
        th = cls(n_hidden=W1.shape[1], activation=activation, l2=l2, dtype=W1.dtype)
        th.W1, th.b1, th.W2, th.b2 = (np.ascontiguousarray(a).copy() for a in (W1, b1, W2, b2))
        th.temperatures = t
        return th


def grouped_dataset(spins, temperatures=None):
    """(n_T, n, L, L) Monte Carlo output (rgflow.core.sampling.generate) -> (configs (n_T*n, L, L),
    labels (n_T*n,)) for `MLPThermometer.fit`."""
    s = np.asarray(spins)
    if s.ndim != 4:
        raise UsageError(f"grouped spins must have shape (n_T, n, L, L), got {s.shape}")
    if temperatures is not None and len(temperatures) != s.shape[0]:
        raise UsageError("one temperature per group of configurations is needed")
    labels = np.repeat(np.arange(s.shape[0], dtype=np.int64), s.shape[1])
    return s.reshape(-1, s.shape[2], s.shape[3]), labels


# ---------------------------------------------------------------------------------------------
# (b) observable matching


def _isotonic(y, w):
    """Weighted least-squares nondecreasing fit (pool adjacent violators).
    Returns (fit, weight of the pooled block each point belongs to)."""
    blocks = []  # [value, weight, count]
    for yi, wi in zip(y, w, strict=True):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            v2, w2, c2 = blocks.pop()
            v1, w1, c1 = blocks.pop()
            wt = w1 + w2
            blocks.append([(v1 * w1 + v2 * w2) / wt, wt, c1 + c2])
    fit = np.concatenate([np.full(c, v) for v, _, c in blocks])
    wts = np.concatenate([np.full(c, wt) for _, wt, c in blocks])
    return fit, wts


class _MonotoneCurve:
    """A reference curve y(T) made nondecreasing (decreasing curves are negated), piecewise
    linear between grid points, with a generalised inverse (midpoint of {T : y(T) = value})."""

    def __init__(self, t, y, err, increasing: bool):
        self.t = t
        self.sign = 1.0 if increasing else -1.0
        y = self.sign * np.asarray(y, dtype=np.float64)
        err = np.asarray(err, dtype=np.float64)
        self.pooled = False
        if (np.diff(y) < 0).any():
            # Noise made a Monte Carlo curve non-monotone: use its weighted isotonic fit.
            w = 1.0 / np.maximum(err, 1e-300) ** 2 if (err > 0).all() else np.ones_like(y)
            y_fit, wts = _isotonic(y, w)
            if (err > 0).all():
                err = 1.0 / np.sqrt(wts)
            y = y_fit
            self.pooled = True
        self.y = y
        self.err = err

    def _t_lo(self, v):
        """min {T : y(T) >= v}, for v in [y0, yN]."""
        t, y = self.t, self.y
        j = np.clip(np.searchsorted(y, v, side="left"), 1, y.size - 1)
        y0, y1 = y[j - 1], y[j]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(y1 > y0, (v - y0) / (y1 - y0), 1.0)
        out = t[j - 1] + np.clip(frac, 0, 1) * (t[j] - t[j - 1])
        return np.where(v <= y[0], t[0], out)

    def _t_hi(self, v):
        """max {T : y(T) <= v}, for v in [y0, yN]."""
        t, y = self.t, self.y
        j = np.clip(np.searchsorted(y, v, side="right") - 1, 0, y.size - 2)
        y0, y1 = y[j], y[j + 1]
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(y1 > y0, (v - y0) / (y1 - y0), 0.0)
        out = t[j] + np.clip(frac, 0, 1) * (t[j + 1] - t[j])
        return np.where(v >= y[-1], t[-1], out)

    def invert(self, value):
        """(T, flag): flag -1 below the range, +1 above, 0 inside; T clipped to the grid."""
        v = self.sign * np.asarray(value, dtype=np.float64)
        flag = np.where(v < self.y[0], -1, np.where(v > self.y[-1], 1, 0))
        vc = np.clip(v, self.y[0], self.y[-1])
        return 0.5 * (self._t_lo(vc) + self._t_hi(vc)), flag

    def ref_error(self, T):
        return np.interp(T, self.t, self.err)

    def estimate(self, value, sigma_meas):
        """T, its error and the local slope dT/d(value) for a measured mean +- sigma."""
        T, flag = self.invert(value)
        sigma = math.hypot(float(sigma_meas), float(self.ref_error(T)))
        v = self.sign * float(value)
        lo_v = np.clip(v - sigma, self.y[0], self.y[-1])
        hi_v = np.clip(v + sigma, self.y[0], self.y[-1])
        t_dn = float(self._t_lo(lo_v))
        t_up = float(self._t_hi(hi_v))
        T = float(T)
        err = max(t_up - T, T - t_dn)
        span = hi_v - lo_v
        dtdv = self.sign * (t_up - t_dn) / span if span > 0 else float("nan")
        return T, err, int(flag), dtdv


_RANGE = {-1: "below", 0: "inside", 1: "above"}


class ObservableThermometer:
    """Temperature from E/N and <|m|> matched to reference curves of the same L.

    E/N increases with T and <|m|> decreases; measured means are inverted by linear
    interpolation on the reference grid (Monte Carlo curves that noise made non-monotone are
    replaced by their weighted isotonic fit). The error of each estimate propagates the
    measurement's standard error and the reference curve's error through the curve: half
    the T-interval that the value +- sigma maps to (the larger side), which is sigma / slope
    where the curve is smooth and the plateau half-width where it is flat (e.g. E/N = -2 at
    very low T). Values outside the reference range are clipped to its end and flagged.
    """

    def __init__(self, temperatures, e_mean, e_err, m_mean, m_err, L, source: str,
                 use_abs_m: bool = True):
        t = _temperature_grid(temperatures)
        arrs = []
        for name, a in (("e_mean", e_mean), ("e_err", e_err), ("m_mean", m_mean),
                        ("m_err", m_err)):
            a = np.asarray(a, dtype=np.float64).ravel()
            if a.shape != t.shape:
                raise UsageError(f"{name} must have one value per temperature ({t.size})")
            if not np.isfinite(a).all():
                raise UsageError(f"{name} contains NaN or infinite values")
            arrs.append(a)
        if (arrs[1] < 0).any() or (arrs[3] < 0).any():
            raise UsageError("reference errors must be >= 0")
        self.temperatures = t
        self.e_mean, self.e_err, self.m_mean, self.m_err = arrs
        self.L = None if L is None else int(L)
        self.source = source
        self.use_abs_m = bool(use_abs_m)
        self._e = _MonotoneCurve(t, self.e_mean, self.e_err, increasing=True)
        self._m = _MonotoneCurve(t, self.m_mean, self.m_err, increasing=False)

    # -- construction

    @classmethod
    def from_monte_carlo(cls, temperatures, e_means, e_errs, m_means, m_errs, L,
                         use_abs_m: bool = True) -> "ObservableThermometer":
        """Reference curves measured by Monte Carlo at lattice size L (see reference_curves)."""
        return cls(temperatures, e_means, e_errs, m_means, m_errs, L, "monte_carlo",
                   use_abs_m)

    @classmethod
    def from_reference(cls, ref: dict, use_abs_m: bool = True) -> "ObservableThermometer":
        """From the dict returned by `reference_curves`."""
        return cls.from_monte_carlo(ref["temperatures"], ref["e_mean"], ref["e_err"],
                                    ref["m_mean"], ref["m_err"], ref["L"], use_abs_m)

    @classmethod
    def from_exact(cls, L, temperatures, infinite_lattice: bool = False,
                   n_dense: int = 2001, use_abs_m: bool | None = None
                   ) -> "ObservableThermometer":
        """Exact reference curves, no errors, sampled on the grid `temperatures` refined by
        n_dense evenly spaced points over its range (so linear interpolation is accurate).

        L*L <= 16: exact enumeration of the periodic L x L lattice (rgflow.core.exact).
        infinite_lattice=True: Onsager's infinite-lattice E/N and spontaneous magnetisation,
        labelled "onsager_infinite_lattice"; L is recorded only. Finite lattices differ from
        it (most of all in |m|, which is nonzero above Tc on any finite lattice), so |m| is
        left out of the estimate by default there (use_abs_m=False).
        """
        from .exact import MAX_ENUMERATION_SITES, enumerate_ising, exact_curves

        t = _temperature_grid(temperatures)
        n_dense = int(n_dense)
        if n_dense > 0:
            t = np.union1d(t, np.linspace(t[0], t[-1], max(n_dense, 2)))
        if infinite_lattice:
            c = exact_curves(None, t)
            zeros = np.zeros_like(t)
            return cls(t, c["energy_per_spin"], zeros, c["abs_magnetisation"], zeros,
                       L, "onsager_infinite_lattice",
                       False if use_abs_m is None else use_abs_m)
        if L is None or int(L) ** 2 > MAX_ENUMERATION_SITES:
            raise UsageError(f"no exact curves for L={L}: enumeration needs L*L <= "
                             f"{MAX_ENUMERATION_SITES}; use a Monte Carlo reference or "
                             "infinite_lattice=True (Onsager, labelled as such)")
        c = enumerate_ising(int(L), t)
        zeros = np.zeros_like(t)
        return cls(t, c["energy_per_spin"], zeros, c["abs_magnetisation"], zeros, L,
                   "exact_enumeration", True if use_abs_m is None else use_abs_m)

    # -- estimation

    def _check_size(self, x):
        if self.L is not None and self.source != "onsager_infinite_lattice" \
                and x.shape[1] != self.L:
            raise UsageError(f"configurations are {x.shape[1]} x {x.shape[1]}, the reference "
                             f"curves are for L={self.L}")

    def estimate(self, configs) -> dict:
        """Temperature of a configuration set (assumed independent configurations).

        Returns a JSON-able dict:
          T, T_err            combined estimate (inverse-variance weights; the error includes
                              the covariance of the two estimates, which share configurations)
          T_from_energy, T_from_energy_err, T_from_abs_m, T_from_abs_m_err
          energy_per_spin, energy_per_spin_err, abs_m, abs_m_err   measured means, std errors
          energy_range, abs_m_range   "inside" | "below" | "above" the reference range
                              (outside: T clipped to the grid end, left out of the combination
                              unless both are outside)
          disagreement, disagreement_sigma   T_from_energy - T_from_abs_m, and in units of
                              its standard error
          combined_from       which estimates entered T; n; source; L
        """
        x = _lattices(configs)
        self._check_size(x)
        n = x.shape[0]
        if n < 2:
            raise UsageError("a temperature estimate needs at least 2 configurations "
                             "(use per_configuration for single ones)")
        e, am = energy_and_abs_m(x)
        e_mean, m_mean = float(e.mean()), float(am.mean())
        e_sem = float(e.std(ddof=1) / math.sqrt(n))
        m_sem = float(am.std(ddof=1) / math.sqrt(n))
        cov_em = float(np.cov(e, am, ddof=1)[0, 1] / n) if n > 1 else 0.0
        te, te_err, fe, ge = self._e.estimate(e_mean, e_sem)
        tm, tm_err, fm, gm = self._m.estimate(m_mean, m_sem)
        # Covariance of the two T estimates from the shared configurations (linearised).
        c_t = ge * gm * cov_em if np.isfinite(ge) and np.isfinite(gm) else 0.0

        use = [("energy", te, te_err, fe)]
        if self.use_abs_m:
            use.append(("abs_m", tm, tm_err, fm))
        inside = [u for u in use if u[3] == 0]
        chosen = inside if inside else use[:1]
        if len(chosen) == 2 and te_err > 0 and tm_err > 0:
            w = np.array([1.0 / te_err**2, 1.0 / tm_err**2])
            w /= w.sum()
            T = float(w[0] * te + w[1] * tm)
            var = w[0] ** 2 * te_err**2 + w[1] ** 2 * tm_err**2 + 2 * w[0] * w[1] * c_t
            T_err = math.sqrt(max(var, 0.0))
        elif len(chosen) == 2:
            # One estimate has zero error (exact reference and exactly reproducible data).
            k = 0 if te_err == 0 else 1
            T, T_err = float(chosen[k][1]), 0.0
        else:
            T, T_err = float(chosen[0][1]), float(chosen[0][2])
        dvar = te_err**2 + tm_err**2 - 2 * c_t
        if dvar <= 0:
            dvar = te_err**2 + tm_err**2
        diff = te - tm
        return {
            "T": T,
            "T_err": T_err,
            "T_from_energy": te,
            "T_from_energy_err": te_err,
            "T_from_abs_m": tm,
            "T_from_abs_m_err": tm_err,
            "energy_per_spin": e_mean,
            "energy_per_spin_err": e_sem,
            "abs_m": m_mean,
            "abs_m_err": m_sem,
            "energy_range": _RANGE[fe],
            "abs_m_range": _RANGE[fm],
            "disagreement": diff,
            "disagreement_sigma": diff / math.sqrt(dvar) if dvar > 0 else
            (0.0 if diff == 0 else float("inf")),
            "combined_from": [c[0] for c in chosen],
            "n": n,
            "source": self.source,
            "L": self.L,
        }

    def temperature_from_values(self, energy_per_spin=None, abs_m=None) -> dict:
        """Invert given mean values (no measurement error): T from E/N and/or from |m|."""
        out = {}
        if energy_per_spin is not None:
            t, f = self._e.invert(energy_per_spin)
            out["T_from_energy"], out["energy_range"] = t, f
        if abs_m is not None:
            t, f = self._m.invert(abs_m)
            out["T_from_abs_m"], out["abs_m_range"] = t, f
        return out

    def per_configuration(self, configs) -> np.ndarray:
        """T per configuration from its energy per spin alone (clipped to the grid; for
        histograms). A single configuration's energy fluctuates, so these spread widely."""
        x = _lattices(configs)
        self._check_size(x)
        e, _ = energy_and_abs_m(x)
        return self._e.invert(e)[0]

    def state_arrays(self) -> dict:
        return {
            "temperatures": self.temperatures.copy(), "e_mean": self.e_mean.copy(),
            "e_err": self.e_err.copy(), "m_mean": self.m_mean.copy(),
            "m_err": self.m_err.copy(),
            "L": np.array(-1 if self.L is None else self.L, dtype=np.int64),
            "source": np.array(self.source), "use_abs_m": np.array(self.use_abs_m),
        }

    @classmethod
    def from_state_arrays(cls, arrays) -> "ObservableThermometer":
        try:
            L = int(np.asarray(arrays["L"]))
            return cls(arrays["temperatures"], arrays["e_mean"], arrays["e_err"],
                       arrays["m_mean"], arrays["m_err"], None if L < 0 else L,
                       str(np.asarray(arrays["source"])), bool(np.asarray(arrays["use_abs_m"])))
        except KeyError as exc:
            raise UsageError(f"thermometer arrays lack {exc.args[0]!r}") from None


# ---------------------------------------------------------------------------------------------
# Reading a configuration set with both thermometers


def _grid_edges(t) -> np.ndarray:
    t = np.asarray(t, dtype=float)
    mid = 0.5 * (t[1:] + t[:-1])
    return np.concatenate([[t[0] - (mid[0] - t[0])], mid, [t[-1] + (t[-1] - mid[-1])]])


def measure_temperature(configs, mlp, obs) -> dict:
    """Both thermometers on one configuration set: histograms over the grid, mean assigned
    temperatures with errors, <|m|>."""
    x = np.ascontiguousarray(configs, dtype=np.int8)
    n = x.shape[0]
    t = mlp.temperatures
    t_mlp = mlp.predict_temperature(x)
    hist_mlp = np.bincount(np.searchsorted(t, t_mlp), minlength=t.size)
    est = obs.estimate(x)
    t_obs_each = obs.per_configuration(x)
    hist_obs = np.histogram(t_obs_each, _grid_edges(obs.temperatures))[0]
    _, am = energy_and_abs_m(x)
    return {
        "T_obs_bound": obs_bound(est),
        "hist_mlp": hist_mlp.astype(np.int64),
        "hist_obs": hist_obs.astype(np.int64),
        "T_mlp": float(t_mlp.mean()),
        "T_mlp_err": float(t_mlp.std(ddof=1) / math.sqrt(n)),
        "T_obs": est["T"],
        "T_obs_err": est["T_err"],
        "abs_m": float(am.mean()),
        "abs_m_err": float(am.std(ddof=1) / math.sqrt(n)),
        "obs": est,
    }


def obs_bound(est: dict) -> int:
    """+1 when the observable thermometer's T is only a lower bound (every observable it uses
    lies above the reference range: T was clipped to the grid's top), -1 for an upper bound,
    0 for a measurement."""
    ranges = [est["energy_range"]] + ([est["abs_m_range"]]
                                      if "abs_m" in est["combined_from"] else [])
    if "inside" in ranges or est["energy_range"] == "inside":
        return 0
    return 1 if est["energy_range"] == "above" else -1


# ---------------------------------------------------------------------------------------------
# Monte Carlo reference


def reference_curves(L: int, temperatures, n_per_T: int, seed: int, algorithm: str = "auto",
                     threads: int | None = None, progress=None) -> dict:
    """Monte Carlo reference curves for `ObservableThermometer.from_reference`.

    Runs rgflow.core.sampling.generate (autocorrelation-spaced samples, one stream per temperature)
    and measures E/N and |m| of every sample. Errors are standard errors of the mean
    inflated by sqrt(2 tau_int) with tau_int measured on each output series (>= 1/2), so any
    correlation left between the spaced samples is accounted for.
    Returns temperatures, e_mean, e_err, m_mean, m_err (float64 (n_T,)), tau_e, tau_m, L,
    n_per_T, seed, and meta (the sampler's).
    """
    from .sampling import SampleSpec, generate

    t = _temperature_grid(temperatures)
    spec = SampleSpec(L=int(L), temperatures=tuple(float(x) for x in t), n=int(n_per_T),
                      algorithm=algorithm, seed=int(seed), threads=threads)
    spins, temps, meta = generate(spec, progress=progress)
    out = reference_from_spins(spins)
    out.update(temperatures=temps, L=int(L), n_per_T=spins.shape[1], seed=int(seed), meta=meta)
    return out


def reference_from_spins(spins) -> dict:
    """E/N and |m| means per temperature of a dataset (n_T, n, L, L), with standard errors
    inflated by sqrt(2 tau_int) (tau_int >= 1/2 measured on each series): e_mean, e_err,
    m_mean, m_err, tau_e, tau_m, each float64 (n_T,)."""
    from .observables import tau_int

    n_t, n = spins.shape[:2]
    out = {k: np.empty(n_t) for k in ("e_mean", "e_err", "m_mean", "m_err", "tau_e", "tau_m")}
    for k in range(n_t):
        e, am = energy_and_abs_m(spins[k])
        for name, series in (("e", e), ("m", am)):
            tau = 0.5
            if n >= 20 and np.ptp(series) > 0:
                tau = max(0.5, float(tau_int(series)[0]))
            sd = float(series.std(ddof=1)) if n > 1 else 0.0
            out[f"{name}_mean"][k] = float(series.mean())
            out[f"{name}_err"][k] = sd / math.sqrt(n) * math.sqrt(2.0 * tau)
            out[f"tau_{name}"][k] = tau
    return out
