"""Locally connected ("short-sighted") RBMs: hidden unit a, tied to block a of the b = 2
blocking (row-major on the (L/2)×(L/2) grid, as for RG), connects only to the visible sites
within periodic Chebyshev distance R of its 2×2 block (de Mello Koch, de Mello Koch,
Kastanos, Cheng, "Short-sighted deep learning", Phys. Rev. E 102, 013307, 2020).

Storage. The weights are dense per-unit patches, `patches` (n_h, P) with P = p² and
p = min(2 + 2R, L), and `index` (n_h, P), the visible sites of each patch in ascending
order. Weights outside the field do not exist, so they cannot receive a gradient; `W` (the
dense (n_v, n_h) matrix with exact zeros outside the field) is built on request for views,
monitors and files. Files hold that dense W (and dense optimiser moments), so every reader
of trained-RBM files works unchanged; reading one back checks that everything outside the
field is exactly zero.

Kernels work site-major (visible or hidden index first, the batch contiguous last), so
their inner loops run over the batch and vectorise:
- hidden field z[r, a] = Σ_p patches[a, p] v[r, index[a, p]] (gather-dot);
- visible field f[r, i] = Σ_{(a, p): index[a, p] = i} patches[a, p] h[r, a] (scatter-add);
- gradient g[a, p] = Σ_r v[r, index[a, p]] hh[r, a], the weight gradient on the patch only.
The field kernels add in a fixed order (p, resp. (a, p), ascending; no fast-math), so
numpy replays them bit for bit. The gradient is a dot product over the batch, vectorised
with LLVM's reassociation (fastmath "reassoc"): its bits are fixed for a given CPU and
numba build, like a BLAS GEMM's, but differ from a sequential sum in the last places.

The Trainer keeps every array of a step site-major, so only the incoming batch is
transposed; sums over the batch (the bias gradients, the reconstruction error) vectorise
with reassociation like the weight gradient.

Randomness is the global RBM's: the same init stream (the global W's normals, gathered on
the field) and the same random number for each sampled unit (counter-based: found by the
unit's row-major index, see core/rbm.py), so with R covering the whole lattice a local RBM
follows the global one up to the summation order of its products.
"""

import math

import numpy as np
from numba import njit

from .errors import UsageError
from .rbm import (
    RBM,
    Trainer,
    _act,
    _check_count,
    _check_dtype,
    _check_units,
    _draw_row,
    initial_weights,
)
from .rng import next_u64

_KERNEL = dict(cache=True, nogil=True, error_model="numpy")
# sums over the batch: vectorised by letting LLVM reassociate them (see the docstring)
_SUM_KERNEL = dict(_KERNEL, fastmath={"reassoc", "contract"})


# ---- geometry -----------------------------------------------------------------------------
def check_receptive_field(R) -> int | None:
    """None (global) or a non-negative whole number."""
    if R is None:
        return None
    if isinstance(R, bool) or not isinstance(R, int | np.integer) or R < 0:
        raise UsageError(f"receptive field must be a whole number >= 0 (or none), got {R!r}")
    return int(R)


def lattice_side(n_visible: int, n_hidden: int) -> int:
    """L of an L×L lattice with n_visible = L² sites and one hidden unit per 2×2 block."""
    L = math.isqrt(int(n_visible))
    if L * L != n_visible or L % 2 or n_hidden != (L // 2) ** 2:
        raise UsageError(f"a receptive field needs an L×L lattice with L even and one hidden "
                         f"unit per 2×2 block (n_hidden = n_visible / 4); got {n_visible} "
                         f"visible and {n_hidden} hidden units")
    return L


def field_index(L: int, R: int) -> np.ndarray:
    """(n_h, P) int32: the visible sites (row-major) within periodic Chebyshev distance R of
    each hidden unit's 2×2 block, ascending. Rows (and columns) 2K - R … 2K + 1 + R mod L,
    fewer when 2 + 2R > L (each site once)."""
    R = check_receptive_field(R)
    if R is None:
        raise UsageError("a local RBM needs a receptive field (none means the global RBM)")
    lattice_side(L * L, (L // 2) ** 2)
    p = min(2 + 2 * R, L)
    offsets = np.arange(p) - R
    half = L // 2
    index = np.empty((half * half, p * p), dtype=np.int32)
    for K in range(half):
        rows = (2 * K + offsets) % L
        for J in range(half):
            cols = (2 * J + offsets) % L
            index[K * half + J] = np.sort((rows[:, None] * L + cols[None, :]).ravel())
    return index


def field_mask(L: int, R: int) -> np.ndarray:
    """(n_v, n_h) bool: True where a weight exists."""
    index = field_index(L, R)
    mask = np.zeros((L * L, index.shape[0]), dtype=bool)
    mask[index, np.arange(index.shape[0])[:, None]] = True
    return mask


# ---- kernels ------------------------------------------------------------------------------
@njit(**_KERNEL)
def _transpose_kernel(src, dst):
    """dst = srcᵀ in 16×16 tiles, writing along dst's rows (writing down its columns puts
    16 stores 4 KiB apart into one cache set when a row is 1024 floats: five times slower)."""
    n, m = src.shape
    for i0 in range(0, n, 16):
        i1 = min(i0 + 16, n)
        for j0 in range(0, m, 16):
            j1 = min(j0 + 16, m)
            for j in range(j0, j1):
                for i in range(i0, i1):
                    dst[j, i] = src[i, j]


@njit(**_KERNEL)
def _gather_dot_kernel(vT, patches, index, zT):
    """zT[a, r] = Σ_p patches[a, p] vT[index[a, p], r], p ascending."""
    n_h, P = patches.shape
    n = vT.shape[1]
    for a in range(n_h):
        out = zT[a]
        for r in range(n):
            out[r] = 0
        for p in range(P):
            w = patches[a, p]
            src = vT[index[a, p]]
            for r in range(n):
                out[r] += w * src[r]


@njit(**_KERNEL)
def _scatter_add_kernel(hT, patches, index, fT):
    """fT[i, r] = Σ patches[a, p] hT[a, r] over (a, p) with index[a, p] = i, (a, p) ascending."""
    n_h, P = patches.shape
    n = hT.shape[1]
    fT[:] = 0
    for a in range(n_h):
        src = hT[a]
        for p in range(P):
            w = patches[a, p]
            out = fT[index[a, p]]
            for r in range(n):
                out[r] += w * src[r]


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"reassoc", "contract"})
def _patch_gradient_kernel(vT, hT, wT, gT, index, g, zero):
    """g[a, p] = Σ_r vT[index[a, p], r] hT[a, r] + Σ_r wT[index[a, p], r] gT[a, r]
    (the data rows and the chain rows, kept in two site-major buffers)."""
    n_h, P = g.shape
    n, m = vT.shape[1], wT.shape[1]
    for a in range(n_h):
        h1, h2 = hT[a], gT[a]
        for p in range(P):
            x1, x2 = vT[index[a, p]], wT[index[a, p]]
            s = zero
            for r in range(n):
                s += x1[r] * h1[r]
            t = zero
            for r in range(m):
                t += x2[r] * h2[r]
            g[a, p] = s + t


@njit(**_SUM_KERNEL)
def _mean_rowsum_kernel(zT, bias, scale, spin, out, rowsum, reset):
    """out[a, r] = scale * mean(zT[a, r] + bias[a]); rowsum[a] (+)= Σ_r out[a, r]."""
    n_h, n = zT.shape
    for a in range(n_h):
        row, src, c = out[a], zT[a], bias[a]
        total = rowsum.dtype.type(0) if reset else rowsum[a]
        for r in range(n):
            mean, _ = _act(src[r] + c, spin)
            x = scale * mean
            row[r] = x
            total += x
        rowsum[a] = total


@njit(**_KERNEL)
def _sample_site_major_kernel(fieldT, bias, spin, state, outT, u):
    """outT[j, r] sampled given fieldT[j, r] + bias[j], with the random number that the
    row-major samplers use for unit (r, j) of a (batch, units) array: t = r·units + j.
    outT may be fieldT; u is a float64 scratch row of the batch's length."""
    m, n = fieldT.shape
    off = -1 if spin else 0
    key = next_u64(state)
    for j in range(m):
        row, src, c = outT[j], fieldT[j], bias[j]
        for r in range(n):
            _, p = _act(src[r] + c, spin)
            row[r] = p
        _draw_row(row, u, 1, off, key, j, m)


@njit(**_SUM_KERNEL)
def _squared_error_site_major_kernel(fT, bias, spin, vT):
    """Σ (vT - mean(fT + bias[:, None]))² in float64 (the reconstruction error)."""
    total = 0.0
    for i in range(fT.shape[0]):
        for r in range(fT.shape[1]):
            mean, _ = _act(fT[i, r] + bias[i], spin)
            d = np.float64(vT[i, r]) - np.float64(mean)
            total += d * d
    return total


@njit(**_SUM_KERNEL)
def _visible_bias_gradient_kernel(vT, scale_v, wT, scale_w, out):
    """out[i] = scale_v Σ_r vT[i, r] + scale_w Σ_r wT[i, r] (data term minus model term)."""
    for i in range(out.shape[0]):
        s = vT.dtype.type(0)
        for r in range(vT.shape[1]):
            s += vT[i, r]
        t = wT.dtype.type(0)
        for r in range(wT.shape[1]):
            t += wT[i, r]
        out[i] = scale_v * s + scale_w * t


def _transposed(x, out=None):
    if out is None:
        out = np.empty((x.shape[1], x.shape[0]), dtype=x.dtype)
    _transpose_kernel(x, out)
    return out


# ---- the model ----------------------------------------------------------------------------
class LocalRBM(RBM):
    """An RBM whose hidden unit a sees only the receptive field of block a (see the module
    docstring). `patches` (n_h, P) are its weights; `W` is their dense (n_v, n_h) image."""

    PARAMS = ("patches", "visible_bias", "hidden_bias")

    def __init__(self, patches, visible_bias, hidden_bias, units, L: int, receptive_field: int):
        _check_units(units)
        self.units = units
        self.receptive_field = check_receptive_field(receptive_field)
        if self.receptive_field is None:
            raise UsageError("a LocalRBM needs a receptive field (None is the global RBM)")
        self.L = int(L)
        self.index = field_index(self.L, self.receptive_field)
        patches = np.asarray(patches)
        dt = _check_dtype(patches.dtype) if patches.dtype.kind == "f" else np.dtype(np.float32)
        a, b = np.asarray(visible_bias), np.asarray(hidden_bias)
        if patches.shape != self.index.shape or a.shape != (self.L ** 2,) \
                or b.shape != (self.index.shape[0],):
            raise UsageError(f"patches {patches.shape}, visible_bias {a.shape}, hidden_bias "
                             f"{b.shape} do not fit L = {self.L}, R = {self.receptive_field}")
        self.patches = np.ascontiguousarray(patches, dtype=dt)
        self.visible_bias = np.ascontiguousarray(a, dtype=dt)
        self.hidden_bias = np.ascontiguousarray(b, dtype=dt)

    @property
    def W(self) -> np.ndarray:
        """The dense weights (n_v, n_h), exact zeros outside the field (a new array)."""
        return self.dense(self.patches)

    @property
    def n_visible(self) -> int:
        return self.L * self.L

    @property
    def n_hidden(self) -> int:
        return self.index.shape[0]

    @property
    def dtype(self) -> np.dtype:
        return self.patches.dtype

    def unit_weights(self, a: int) -> tuple[np.ndarray, np.ndarray]:
        """(weights, field) of hidden unit a over the visible sites (n_v,): the weights,
        zero off the field, and the boolean field itself."""
        weights = np.zeros(self.n_visible, dtype=self.dtype)
        weights[self.index[a]] = self.patches[a]
        field = np.zeros(self.n_visible, dtype=bool)
        field[self.index[a]] = True
        return weights, field

    def dense(self, patch_array) -> np.ndarray:
        """(n_v, n_h) array holding patch_array (n_h, P) on the field, zeros elsewhere."""
        out = np.zeros((self.n_visible, self.n_hidden), dtype=patch_array.dtype)
        out[self.index, np.arange(self.n_hidden)[:, None]] = patch_array
        return out

    def gather(self, dense, what: str = "W") -> np.ndarray:
        """The patches of a dense (n_v, n_h) array; UsageError if anything outside the field
        is not exactly zero."""
        dense = np.asarray(dense)
        if dense.shape != (self.n_visible, self.n_hidden):
            raise UsageError(f"{what} has shape {dense.shape}, expected "
                             f"{(self.n_visible, self.n_hidden)}")
        outside = dense.copy()
        outside[self.index, np.arange(self.n_hidden)[:, None]] = 0
        if np.any(outside != 0):
            raise UsageError(f"{what} has nonzero entries outside the receptive field "
                             f"R = {self.receptive_field}")
        return np.ascontiguousarray(dense[self.index, np.arange(self.n_hidden)[:, None]])

    @classmethod
    def create(cls, L, receptive_field, units="spin", dtype=np.float32, seed_or_state=0,
               weight_scale=0.05) -> "LocalRBM":
        """The global RBM.create's weights (same normals from the same stream) kept on the
        field: a local RBM starts as the masked global one."""
        L = _check_count("L", L)
        n_v, n_h = L * L, (L // 2) ** 2
        lattice_side(n_v, n_h)
        _check_units(units)
        W = initial_weights(n_v, n_h, dtype, seed_or_state, weight_scale)
        index = field_index(L, receptive_field)
        patches = W[index, np.arange(n_h)[:, None]]
        return cls(patches, np.zeros(n_v, W.dtype), np.zeros(n_h, W.dtype), units, L,
                   receptive_field)

    def copy(self) -> "LocalRBM":
        return LocalRBM(self.patches.copy(), self.visible_bias.copy(), self.hidden_bias.copy(),
                        self.units, self.L, self.receptive_field)

    def hidden_field(self, v, out=None) -> np.ndarray:
        v = np.ascontiguousarray(v, dtype=self.dtype)
        zT = np.empty((self.n_hidden, v.shape[0]), dtype=self.dtype)
        _gather_dot_kernel(_transposed(v), self.patches, self.index, zT)
        return _transposed(zT, out)

    def visible_field(self, h, out=None) -> np.ndarray:
        h = np.ascontiguousarray(h, dtype=self.dtype)
        fT = np.empty((self.n_visible, h.shape[0]), dtype=self.dtype)
        _scatter_add_kernel(_transposed(h), self.patches, self.index, fT)
        return _transposed(fT, out)

    def weight_gradient(self, v, hw) -> np.ndarray:
        """(n_h, P): Σ_r v[r, index[a, p]] hw[r, a], the weight gradient on the field for
        visible rows v and hidden rows hw that carry the data/model weights."""
        v = np.ascontiguousarray(v, dtype=self.dtype)
        hw = np.ascontiguousarray(hw, dtype=self.dtype)
        empty_v = np.empty((self.n_visible, 0), self.dtype)
        empty_h = np.empty((self.n_hidden, 0), self.dtype)
        g = np.empty_like(self.patches)
        _patch_gradient_kernel(_transposed(v), _transposed(hw), empty_v, empty_h, self.index, g,
                               self.dtype.type(0))
        return g


# ---- training -----------------------------------------------------------------------------
class LocalTrainer(Trainer):
    """The Trainer's CD-k / PCD-k step done site-major on the patches: every array of the
    step is kept (units, batch), so only the incoming batch is transposed. The samplers
    draw each unit's random number by its row-major index (see _sample_site_major_kernel),
    so the step consumes the same random numbers as the global Trainer's."""

    def _allocate(self, B, chains, chain_field=None):
        rbm, dt = self.rbm, self._dt
        n_v, n_h = rbm.n_visible, rbm.n_hidden
        C = self._set_batch_size(B)
        self._batch_T = np.empty((n_v, B), dt)   # the batch, site-major
        self._chains_T = np.empty((n_v, C), dt)  # the chains (CD: the batch's reconstructions)
        if chains is not None:
            _transpose_kernel(np.ascontiguousarray(chains, dtype=dt), self._chains_T)
        self._field_data_T = np.empty((n_h, B), dt)
        self._field_chains_T = np.empty((n_h, C), dt)  # with the hidden bias
        if chain_field is not None:
            _transpose_kernel(np.ascontiguousarray(chain_field, dtype=dt),
                              self._field_chains_T)
        self._h_data_T = np.empty((n_h, B), dt)    # hidden means / B
        self._h_chains_T = np.empty((n_h, C), dt)  # -hidden means / C
        self._h_sample_T = np.empty((n_h, C), dt)
        self._v_field_T = np.empty((n_v, C), dt)
        self._u = np.empty(C, np.float64)  # the samplers' scratch: C columns (CD: C = B)

    @property
    def chains(self):
        """The persistent chains (n_chains, n_visible), a copy; None for CD-k."""
        return _transposed(self._chains_T) if self.config.persistent else None

    @property
    def chain_field(self):
        """Trainer.chain_field, as a copy."""
        return _transposed(self._field_chains_T) if self._chain_field_ready else None

    def _set_chain_field(self, field) -> None:
        _transpose_kernel(np.ascontiguousarray(field, dtype=self._dt), self._field_chains_T)
        self._chain_field_ready = True

    def _gather(self, vT, zT, bias=None):
        _gather_dot_kernel(vT, self.rbm.patches, self.rbm.index, zT)
        if bias is not None:
            np.add(zT, bias[:, None], out=zT)

    def _gradient(self, batch, reconstruction: bool) -> float:
        """Trainer._gradient, site-major (see the class docstring)."""
        rbm, cfg = self.rbm, self.config
        spin, state, u = rbm.units == "spin", self.state, self._u
        a, b = rbm.visible_bias, rbm.hidden_bias
        v_data, v_chains = self._batch_T, self._chains_T
        z_data, z_chains = self._field_data_T, self._field_chains_T
        h_data, h_chains, hs = self._h_data_T, self._h_chains_T, self._h_sample_T
        gb = self._grads["hidden_bias"]  # = Σ of the scaled means, summed by their kernel

        _transpose_kernel(np.ascontiguousarray(batch, dtype=self._dt), v_data)
        self._gather(v_data, z_data)
        _mean_rowsum_kernel(z_data, b, self._scale_data, spin, h_data, gb, True)
        if cfg.persistent:
            if cfg.fresh_chain_field or not self._chain_field_ready:
                self._gather(v_chains, z_chains, b)
            _sample_site_major_kernel(z_chains, self._no_bias, spin, state, hs, u)
        else:
            _sample_site_major_kernel(z_data, b, spin, state, hs, u)
        recon = math.nan
        if reconstruction:
            recon = self._reconstruction_error(z_data)
        for sweep in range(cfg.k):
            if sweep > 0:
                self._gather(v_chains, z_chains)
                _sample_site_major_kernel(z_chains, b, spin, state, hs, u)
            _scatter_add_kernel(hs, rbm.patches, rbm.index, self._v_field_T)
            _sample_site_major_kernel(self._v_field_T, a, spin, state, v_chains, u)
        self._gather(v_chains, z_chains, b)  # with the bias: PCD's next step samples from it
        _mean_rowsum_kernel(z_chains, self._no_bias, self._scale_model, spin, h_chains, gb,
                            False)
        self._chain_field_ready = cfg.persistent

        g = self._grads
        _patch_gradient_kernel(v_data, h_data, v_chains, h_chains, rbm.index, g["patches"],
                               self._dt.type(0))
        _visible_bias_gradient_kernel(v_data, self._scale_data, v_chains, self._scale_model,
                                      g["visible_bias"])
        return recon

    def _reconstruction_error(self, z_data) -> float:
        rbm, B = self.rbm, self._B
        if self._recon is None:  # (means, their row sums, which are not needed; field)
            self._recon = (np.empty((rbm.n_hidden, B), self._dt),
                           np.empty(rbm.n_hidden, self._dt),
                           np.empty((rbm.n_visible, B), self._dt))
        h_mean, scratch, field = self._recon
        _mean_rowsum_kernel(z_data, rbm.hidden_bias, self._dt.type(1), rbm.units == "spin",
                            h_mean, scratch, True)
        _scatter_add_kernel(h_mean, rbm.patches, rbm.index, field)
        err = _squared_error_site_major_kernel(field, rbm.visible_bias, rbm.units == "spin",
                                               self._batch_T)
        return err / (B * rbm.n_visible)

    def state_arrays(self):
        """Trainer.state_arrays with the patch arrays (weights, their moments) as dense
        (n_v, n_h) arrays under the global RBM's names (W, m_W, ...), zeros off the field."""
        out = {}
        for key, value in super().state_arrays().items():
            if key == "patches" or key.endswith("_patches"):
                out[key[:-len("patches")] + "W"] = self.rbm.dense(value)
            else:
                out[key] = value
        return out

    @classmethod
    def from_state_arrays(cls, arrays, config, units, receptive_field=None,
                          blas_threads=1) -> "LocalTrainer":
        """Rebuild from state_arrays() output; UsageError if anything is inconsistent,
        including a nonzero weight or moment outside the field."""
        W = np.asarray(arrays["W"]) if "W" in arrays else None
        if W is None or W.ndim != 2 or W.dtype.kind != "f":
            raise UsageError("RBM state lacks a 2-D float 'W'")
        a = arrays.get("visible_bias")
        b = arrays.get("hidden_bias")
        if a is None or b is None:
            raise UsageError("RBM state lacks its biases")
        rbm = rbm_from_dense(W, a, b, units, receptive_field)
        converted = dict(arrays)
        for key in [k for k in arrays if k.endswith("_W")]:  # the weights' moments
            converted[key[:-1] + "patches"] = rbm.gather(np.asarray(arrays[key]), key)
        return cls._restore(rbm, converted, config, blas_threads)


def make_rbm(n_visible, n_hidden, receptive_field=None, **create_kwargs) -> RBM:
    """A new global RBM, or a LocalRBM when receptive_field is a number."""
    R = check_receptive_field(receptive_field)
    if R is None:
        return RBM.create(n_visible, n_hidden, **create_kwargs)
    return LocalRBM.create(lattice_side(n_visible, n_hidden), R, **create_kwargs)


def rbm_from_dense(W, visible_bias, hidden_bias, units: str, receptive_field=None) -> RBM:
    """An RBM from dense weights (n_v, n_h) and its biases, the form saves hold it in
    (state_arrays); a LocalRBM when receptive_field is a number, its W exactly zero outside
    the field. UsageError if they do not fit."""
    R = check_receptive_field(receptive_field)
    W, a, b = np.array(W), np.array(visible_bias), np.array(hidden_bias)
    if R is None:
        return RBM(W, a, b, units)
    if W.ndim != 2:
        raise UsageError(f"W must be a 2-D array, got shape {W.shape}")
    L = lattice_side(*W.shape)
    shell = LocalRBM(np.zeros(field_index(L, R).shape, W.dtype), a, b, units, L, R)
    return LocalRBM(shell.gather(W), a, b, units, L, R)


def trainer_for(rbm: RBM, config, state, chains=None, blas_threads=1) -> Trainer:
    """The Trainer that fits rbm: LocalTrainer for a LocalRBM."""
    cls = LocalTrainer if isinstance(rbm, LocalRBM) else Trainer
    return cls(rbm, config, state, chains=chains, blas_threads=blas_threads)


def restore_trainer(arrays, config, units, receptive_field=None, blas_threads=1) -> Trainer:
    """Trainer.from_state_arrays, or LocalTrainer's when receptive_field is a number."""
    R = check_receptive_field(receptive_field)
    if R is None:
        return Trainer.from_state_arrays(arrays, config, units, blas_threads=blas_threads)
    return LocalTrainer.from_state_arrays(arrays, config, units, R, blas_threads=blas_threads)


def receptive_field_of(rbm) -> int | None:
    return rbm.receptive_field if isinstance(rbm, LocalRBM) else None
