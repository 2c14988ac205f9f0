"""How well is an RBM doing? Training monitors and log-likelihood estimates (core/SCIENCE.md §3).

Everything here reads only the RBM's arrays (`W`, `visible_bias`, `hidden_bias`, `units`)
and computes in float64 whatever the RBM's dtype, so numbers are comparable between float32
and float64 models and exact references stay exact. Visible batches are 2D (B, n_visible),
values ±1 ("spin") or 0/1 ("binary").

Cheap, called while training (`monitor`):
  reconstruction_error  mean over units and samples of (v - E[v | h = E[h|v]])²; note that
                        for spin units the scale is ±1, four times the 0/1 scale.
  pseudo_log_likelihood mean over visible units of log P(v_i | v_-i), per unit.
  free_energy_gap       mean F(held-out) - mean F(train); grows when the model overfits.
Exact when the smaller layer has at most 20 units:
  exact_log_partition   log Z by enumerating the smaller layer, the other one marginalised.
  exact_log_likelihood  mean log P(v) = -F(v) - log Z.
On demand only (never called by `monitor`, it costs n_chains * n_betas Gibbs sweeps):
  ais_log_partition     annealed importance sampling estimate of log Z with an error bar.
"""

import math

import numpy as np
from numba import njit, prange

from .errors import UsageError
from .rbm import _free_energy_chunk, uniforms
from .rng import check_state, random_indices

UNITS = ("spin", "binary")
EXACT_MAX_UNITS = 20  # 2**20 states of the enumerated layer
PLL_EXACT_MAX_VISIBLE = 1024
PLL_EXACT_BUDGET = 1 << 24  # unit-flip evaluations per monitor call (~0.3 s CPU)
PLL_MIN_EXACT_SAMPLES = 32
EXACT_LL_BUDGET = 1 << 24  # 2**n_min * n_max terms for the exact log Z in monitor()
_CHUNK_ELEMENTS = 1 << 22  # float64 work arrays of at most 32 MiB


# ----------------------------------------------------------------------------- helpers


def _arrays(rbm):
    units = getattr(rbm, "units", "spin")
    if units not in UNITS:
        raise UsageError(f"unknown RBM units {units!r} (expected one of {', '.join(UNITS)})")
    W = np.asarray(rbm.W, dtype=np.float64)
    a = np.asarray(rbm.visible_bias, dtype=np.float64)
    b = np.asarray(rbm.hidden_bias, dtype=np.float64)
    if W.ndim != 2 or a.shape != (W.shape[0],) or b.shape != (W.shape[1],):
        raise UsageError(
            f"inconsistent RBM shapes: W {W.shape}, visible_bias {a.shape}, "
            f"hidden_bias {b.shape}"
        )
    return W, a, b, units


def _batch(v, n_visible, name="v") -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    if v.ndim == 1:
        v = v[None, :]
    if v.ndim != 2 or v.shape[1] != n_visible:
        raise UsageError(f"{name}: expected shape (B, {n_visible}), got {np.shape(v)}")
    if v.shape[0] == 0:
        raise UsageError(f"{name}: empty batch")
    return v


def _log_unit_sum(x, units):
    """log Σ_{s} exp(s x) over one unit's values: log(2 cosh x) for ±1, log(1 + e^x) for 0/1."""
    if units == "spin":
        return np.logaddexp(x, -x)
    return np.logaddexp(0.0, x)


def _mean_of(x, units):
    """E[s] for a unit with field x: tanh(x) for ±1, sigmoid(x) for 0/1."""
    if units == "spin":
        return np.tanh(x)
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free sigmoid


def _log_sigmoid(x):
    return -np.logaddexp(0.0, -x)


def _free_energy(W, a, b, units, v):
    """F(v) = -a·v - Σ_a log Σ_{h_a} exp(h_a (b_a + (vW)_a)), float64, shape (B,): the
    formula of rgflow.core.rbm.free_energy, on float64 arrays."""
    return _free_energy_chunk(units, v, W, a, b)


def _rows_per_chunk(width: int) -> int:
    return max(1, _CHUNK_ELEMENTS // max(1, width))


def _logsumexp(x) -> float:
    m = float(np.max(x))
    if not math.isfinite(m):
        return m
    return m + math.log(float(np.sum(np.exp(x - m))))


def free_energy(rbm, v) -> np.ndarray:
    """F(v) for a batch, float64 (B,); same formula as rgflow.core.rbm.free_energy."""
    W, a, b, units = _arrays(rbm)
    return _free_energy(W, a, b, units, _batch(v, W.shape[0]))


# ----------------------------------------------------------------------------- cheap monitors


def reconstruction_error(rbm, v) -> float:
    """Mean squared error between v and its one-step mean-field reconstruction
    visible_mean(hidden_mean(v)), averaged over samples and visible units."""
    W, a, b, units = _arrays(rbm)
    v = _batch(v, W.shape[0])
    h = _mean_of(b + v @ W, units)
    recon = _mean_of(a + h @ W.T, units)
    return float(np.mean((v - recon) ** 2))


def _flip(v, units):
    return -v if units == "spin" else 1.0 - v


@njit(inline="always")
def _log_unit_sum_scalar(x, spin):
    """log Σ_s exp(s x) up to the constant log 2 for ±1 units (it cancels in differences)."""
    ax = abs(x)
    if spin:
        return ax + np.log1p(np.exp(-2.0 * ax))
    return max(x, 0.0) + np.log1p(np.exp(-ax))


@njit(cache=True, nogil=True, parallel=True)
def _pll_rows(W, a, b, v, spin, out):
    """out[s] = Σ_i log σ(F(v_s with unit i flipped) - F(v_s)). One sample per parallel
    iteration, each summed sequentially, so the result does not depend on the thread count."""
    n_v, n_h = W.shape
    for s in prange(v.shape[0]):
        pre = b.copy()
        for i in range(n_v):
            vi = v[s, i]
            if vi != 0.0:
                for j in range(n_h):
                    pre[j] += vi * W[i, j]
        base = 0.0
        for j in range(n_h):
            base += _log_unit_sum_scalar(pre[j], spin)
        total = 0.0
        for i in range(n_v):
            dv = -2.0 * v[s, i] if spin else 1.0 - 2.0 * v[s, i]
            acc = 0.0
            for j in range(n_h):
                acc += _log_unit_sum_scalar(pre[j] + dv * W[i, j], spin)
            delta = -a[i] * dv - (acc - base)  # F(v_flip) - F(v)
            if delta >= 0.0:  # log σ(delta), overflow-free
                total -= np.log1p(np.exp(-delta))
            else:
                total += delta - np.log1p(np.exp(delta))
        out[s] = total


def _pll_exact(W, a, b, units, v) -> float:
    """Σ over samples and units of log σ(F(v with unit i flipped) - F(v))."""
    out = np.empty(v.shape[0])
    _pll_rows(W, a, b, np.ascontiguousarray(v), units == "spin", out)
    return float(out.sum())


def pseudo_log_likelihood(rbm, v, state=None) -> float:
    """Mean over samples and visible units of log P(v_i | v_-i) (per unit, so it lies in
    (-inf, 0] and is comparable between sizes; multiply by n_visible for the usual total).

    P(v_i | v_-i) = σ(F(v with v_i flipped) - F(v)).
    state=None: exact, every unit of every sample (chunked; cost B·n_visible·n_hidden log
    evaluations; meant for n_visible <= 1024 but correct for any size).
    state given (uint64[4] xoshiro, advanced in place): the scikit-learn estimate, one unit
    per sample drawn uniformly at random; unbiased for the same quantity, much cheaper, noisy.
    """
    W, a, b, units = _arrays(rbm)
    v = _batch(v, W.shape[0])
    n_v = W.shape[0]
    if state is None:
        return _pll_exact(W, a, b, units, v) / (v.shape[0] * n_v)
    idx = random_indices(check_state(state), v.shape[0], n_v)
    rows = np.arange(v.shape[0])
    v_flip = v.copy()
    v_flip[rows, idx] = _flip(v[rows, idx], units)
    delta = _free_energy(W, a, b, units, v_flip) - _free_energy(W, a, b, units, v)
    return float(np.mean(_log_sigmoid(delta)))


def free_energy_gap(rbm, v_train, v_heldout) -> float:
    """mean F(held-out) - mean F(train). Near 0 while the model generalises; it grows
    positive when the training data become more probable than unseen data (overfitting)."""
    W, a, b, units = _arrays(rbm)
    f_train = _free_energy(W, a, b, units, _batch(v_train, W.shape[0], "v_train"))
    f_held = _free_energy(W, a, b, units, _batch(v_heldout, W.shape[0], "v_heldout"))
    return float(np.mean(f_held) - np.mean(f_train))


# ----------------------------------------------------------------------------- exact log Z


def _all_states(start, stop, n, units):
    """Configurations start..stop-1 of n units (bit j of the index = unit j)."""
    idx = np.arange(start, stop, dtype=np.int64)
    bits = ((idx[:, None] >> np.arange(n, dtype=np.int64)) & 1).astype(np.float64)
    return 2.0 * bits - 1.0 if units == "spin" else bits


def exact_log_partition(rbm, max_units: int = EXACT_MAX_UNITS) -> float:
    """log Z exactly, by enumerating the 2**n states of the smaller layer (n <= max_units)
    and summing the other layer analytically; chunked, log-sum-exp in float64."""
    W, a, b, units = _arrays(rbm)
    n_v, n_h = W.shape
    if min(n_v, n_h) > max_units:
        raise UsageError(
            f"exact log Z needs a layer of at most {max_units} units (RBM is {n_v} x {n_h}); "
            "use ais_log_partition"
        )
    if n_h <= n_v:  # enumerate hidden: log Z = lse_h [ b·h + Σ_i logZ1(a_i + (W h)_i) ]
        n_enum, own_bias, other_bias, M = n_h, b, a, W.T
    else:  # enumerate visible: log Z = lse_v [ -F(v) ]
        n_enum, own_bias, other_bias, M = n_v, a, b, W
    n_states = 1 << n_enum
    rows = _rows_per_chunk(M.shape[1] + n_enum)
    partial = []
    for start in range(0, n_states, rows):
        s = _all_states(start, min(n_states, start + rows), n_enum, units)
        terms = s @ own_bias + _log_unit_sum(other_bias + s @ M, units).sum(axis=1)
        partial.append(_logsumexp(terms))
    return _logsumexp(np.array(partial))


def exact_log_likelihood(rbm, v, log_z: float | None = None) -> float:
    """Mean over the batch of log P(v) = -F(v) - log Z (exact log Z unless given)."""
    W, a, b, units = _arrays(rbm)
    v = _batch(v, W.shape[0])
    if log_z is None:
        log_z = exact_log_partition(rbm)
    return float(np.mean(-_free_energy(W, a, b, units, v)) - log_z)


# ----------------------------------------------------------------------------- AIS


def base_rate_visible_bias(v, units: str = "spin", smoothing: float = 1.0) -> np.ndarray:
    """Visible biases of the independent-units model that matches the data's unit means
    (Salakhutdinov & Murray's base-rate model), with `smoothing` pseudo-counts per value so
    that units constant in the data get a large finite bias."""
    if units not in UNITS:
        raise UsageError(f"unknown RBM units {units!r}")
    v = np.asarray(v, dtype=np.float64)
    if v.ndim != 2 or v.shape[0] == 0:
        raise UsageError(f"expected a non-empty (B, n_visible) batch, got shape {v.shape}")
    ones = (v + 1.0) / 2.0 if units == "spin" else v
    p = (ones.sum(axis=0) + smoothing) / (v.shape[0] + 2.0 * smoothing)
    logit = np.log(p) - np.log1p(-p)
    return 0.5 * logit if units == "spin" else logit  # P(+1) = σ(2a) for ±1 units


def _sample_units(field, u, units):
    """Sample units with the given fields from uniforms u: P(up) = σ(2x) (±1) or σ(x) (0/1)."""
    p_up = _mean_of(2.0 * field if units == "spin" else field, "binary")
    up = u < p_up
    if units == "spin":
        return np.where(up, 1.0, -1.0)
    return up.astype(np.float64)


def ais_log_partition(
    rbm, n_chains: int = 100, n_betas: int = 1000, state=None, *, base_visible_bias=None,
    betas=None,
) -> tuple[float, float]:
    """Annealed importance sampling estimate of log Z: returns (log_z, log_z_error).

    Path (Salakhutdinov & Murray 2008): p_β(v, h) ∝ exp(((1-β) a_A + β a)·v + β (b·h + vᵀWh)),
    from the independent model β = 0 (visible biases a_A, hidden units uniform; log Z_A is
    exact) to the RBM at β = 1. a_A defaults to the RBM's own visible biases; pass
    base_rate_visible_bias(data) for the usual better-matched start. Each chain starts from
    an exact sample of p_0 and makes one Gibbs sweep (h then v) at each β_k; the log weight
    collects log p*_k(v) - log p*_{k-1}(v) with h marginalised analytically.

    log_z = log Z_A + log(mean of weights). log_z_error = std(w)/(sqrt(n_chains) mean(w)),
    the delta-method standard error of log mean w; it is itself estimated from the same
    weights, so it can under-state the error when the weights are heavy-tailed (too few
    betas). Random numbers come from `state` (uint64[4] xoshiro, advanced in place); the
    result is reproducible from it.
    """
    W, a, b, units = _arrays(rbm)
    if state is None:
        raise UsageError("ais_log_partition needs an explicit xoshiro state")
    state = check_state(state)
    n_chains = int(n_chains)
    if n_chains < 2:
        raise UsageError(f"AIS needs at least 2 chains for an error bar, got {n_chains}")
    if betas is None:
        if int(n_betas) < 2:
            raise UsageError(f"AIS needs at least 2 inverse temperatures, got {n_betas}")
        betas = np.linspace(0.0, 1.0, int(n_betas))
    betas = np.asarray(betas, dtype=np.float64)
    if betas.ndim != 1 or betas.size < 2 or betas[0] != 0.0 or betas[-1] != 1.0 or np.any(
        np.diff(betas) <= 0
    ):
        raise UsageError("AIS betas must increase strictly from 0 to 1")
    n_v, n_h = W.shape
    a_base = a.copy() if base_visible_bias is None else np.asarray(base_visible_bias, np.float64)
    if a_base.shape != (n_v,) or not np.all(np.isfinite(a_base)):
        raise UsageError(f"base_visible_bias: expected {n_v} finite values")
    log_z_base = float(_log_unit_sum(a_base, units).sum()) + n_h * math.log(2.0)

    def log_p_star(beta, v, vW):
        return ((1.0 - beta) * a_base + beta * a) @ v.T + _log_unit_sum(
            beta * (b + vW), units
        ).sum(axis=1)

    u_v = np.empty((n_chains, n_v))
    u_h = np.empty((n_chains, n_h))
    u_v[...] = uniforms(state, u_v.shape)
    v = _sample_units(np.broadcast_to(a_base, (n_chains, n_v)), u_v, units)
    log_w = np.zeros(n_chains)
    for k in range(1, betas.size):
        beta_prev, beta = betas[k - 1], betas[k]
        vW = v @ W
        log_w += log_p_star(beta, v, vW) - log_p_star(beta_prev, v, vW)
        if k == betas.size - 1:
            break  # the last transition would not change the weights
        u_h[...] = uniforms(state, u_h.shape)
        h = _sample_units(beta * (b + vW), u_h, units)
        u_v[...] = uniforms(state, u_v.shape)
        v = _sample_units((1.0 - beta) * a_base + beta * (a + h @ W.T), u_v, units)
    lme = _logsumexp(log_w) - math.log(n_chains)
    ratios = np.exp(log_w - lme)  # weights / their mean
    error = float(np.std(ratios, ddof=1) / math.sqrt(n_chains))
    return log_z_base + lme, error


# ----------------------------------------------------------------------------- monitor


def monitor(
    rbm, v_train_sample, v_heldout=None, state=None, *, exact_max_units: int = EXACT_MAX_UNITS,
    pll_exact_budget: int = PLL_EXACT_BUDGET, exact_budget: int = EXACT_LL_BUDGET,
) -> dict:
    """The numbers recorded while training, all cheap:
      reconstruction_error  on v_train_sample
      pll, pll_method, pll_samples
            exact PLL (every unit) on the first m = min(B, pll_exact_budget // (n_v n_h))
            configurations when n_visible <= 1024 and m >= 32 (a fixed subset, so the curve
            is smooth; ~0.3 s CPU at 1024 x 256); otherwise the one-random-unit estimate on
            all B from `state` ("stochastic"; exact over the first m >= 1 without a state)
      free_energy_gap       None without held-out data
      log_z, exact_ll, exact_ll_heldout
            exact when the smaller layer has n <= exact_max_units units and the enumeration
            costs 2**n * (other layer) <= exact_budget evaluations (~60 ns each, so the
            default is ~1 s), else None.
    AIS is never run here (n_chains * n_betas Gibbs sweeps): call ais_log_partition."""
    W, _, _, _ = _arrays(rbm)
    n_v, n_h = W.shape
    v_train_sample = _batch(v_train_sample, n_v, "v_train_sample")
    n = v_train_sample.shape[0]
    out = {"reconstruction_error": reconstruction_error(rbm, v_train_sample)}
    m = min(n, max(1, pll_exact_budget // (n_v * n_h)))
    if (n_v <= PLL_EXACT_MAX_VISIBLE and m >= min(n, PLL_MIN_EXACT_SAMPLES)) or state is None:
        out["pll"] = pseudo_log_likelihood(rbm, v_train_sample[:m])
        out["pll_method"], out["pll_samples"] = "exact", m
    else:
        out["pll"] = pseudo_log_likelihood(rbm, v_train_sample, state)
        out["pll_method"], out["pll_samples"] = "stochastic", n
    has_heldout = v_heldout is not None and len(v_heldout) > 0
    out["free_energy_gap"] = (
        free_energy_gap(rbm, v_train_sample, v_heldout) if has_heldout else None
    )
    out["exact_ll"] = out["exact_ll_heldout"] = out["log_z"] = None
    n_min, n_max = min(n_v, n_h), max(n_v, n_h)
    if n_min <= exact_max_units and (1 << n_min) * n_max <= exact_budget:
        log_z = exact_log_partition(rbm, max_units=exact_max_units)
        out["log_z"] = log_z
        out["exact_ll"] = exact_log_likelihood(rbm, v_train_sample, log_z)
        if has_heldout:
            out["exact_ll_heldout"] = exact_log_likelihood(rbm, v_heldout, log_z)
    return out
