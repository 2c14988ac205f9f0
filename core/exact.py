"""Exact reference values for the 2D Ising model (J = 1, k_B = 1, periodic square lattice).

* Onsager's infinite-lattice solution at h = 0: energy per spin, spontaneous magnetisation
  (Yang), specific heat. Complete elliptic integrals come from the arithmetic-geometric mean,
  so everything is plain numpy, vectorised over temperature arrays, and accurate to ~1e-13.
* Finite lattices with L*L <= 16 by enumerating every state (4x4: 65,536 states). The
  (energy, magnetisation) histogram is computed once per L and cached; thermal averages use
  log-sum-exp so they stay finite at very low T.

Energies are those of H = -sum_<ij> s_i s_j - h sum_i s_i; per-spin quantities divide by
N = L*L. Everything here is pure numpy (no numba, nothing compiled at import).
"""

from functools import lru_cache

import numpy as np

from rgflow.core.errors import UsageError

TC = 2.0 / np.log1p(np.sqrt(2.0))
"""Critical temperature 2 / ln(1 + sqrt 2) = 2.269185314213022..."""

MAX_ENUMERATION_SITES = 16


# ---------------------------------------------------------------------------------------------
# Onsager (infinite lattice, h = 0)


def _as_temperature(T, allow_zero=True):
    t = np.asarray(T, dtype=np.float64)
    if not np.all(np.isfinite(t)):
        raise UsageError("temperature must be finite")
    if np.any(t < 0) or (not allow_zero and np.any(t == 0)):
        raise UsageError("temperature must be positive")
    return t


def _agm(kprime, k):
    """Arithmetic-geometric mean AGM(1, k') and two sums for complete elliptic integrals.

    With a_0 = 1, b_0 = k', c_0 = k (both passed in, so neither is computed from the other by
    a cancelling subtraction) and c_{n+1} = c_n^2 / (4 a_{n+1}) (= (a_n - b_n) / 2, without
    the subtraction):
      K(k) = pi / (2 a_inf),  E(k) = K(k) (1 - k^2/2 - rest),  rest = sum_{n>=1} 2^(n-1) c_n^2,
      gap = a_inf - b_0 = c_1 - sum_{n>=2} c_n  (accurate when k' -> 1).
    Returns (a_inf, rest, gap). Vectorised; converges quadratically.
    """
    a = np.ones_like(kprime)
    b = np.array(kprime, dtype=np.float64, copy=True)
    c = np.array(k, dtype=np.float64, copy=True)
    rest = np.zeros_like(a)
    gap = np.zeros_like(a)
    power = 0.5
    for i in range(64):
        a_next = 0.5 * (a + b)
        b = np.sqrt(a * b)
        a = a_next
        c = c * c / (4.0 * a)
        power *= 2.0
        rest = rest + power * c * c
        gap = gap + (c if i == 0 else -c)
        if np.all(np.abs(c) <= 1e-17 * a):
            break
    return a, rest, gap


def _coupling_parts(t):
    """K = 1/T, tanh(2K), sech(2K) and the signed complementary modulus k'' = 2 tanh^2(2K) - 1.

    |k''| is the complementary modulus of k = 2 sinh 2K / cosh^2 2K = 2 tanh 2K sech 2K; it
    vanishes exactly at Tc. T = 0 is handled as the limit (K = inf).
    """
    with np.errstate(divide="ignore", over="ignore"):
        k = np.where(t > 0, 1.0 / np.where(t > 0, t, 1.0), np.inf)
        th = np.tanh(2.0 * k)
        sech = 1.0 / np.cosh(2.0 * k)
        k2 = 2.0 * th * th - 1.0
    return k, th, sech, k2


def _bracket(k2, agm, gap):
    """1 + k''/AGM(1, |k''|), without cancellation when k'' -> -1 (high T)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.where(k2 >= 0, (agm + k2) / agm, gap / agm)
    return np.where(k2 == 0.0, 1.0, out)


def onsager_energy_per_spin(T):
    """Exact internal energy per spin of the infinite lattice at h = 0.

    u = -coth(2K) [1 + (2/pi) k'' K(k)], K = 1/T, k'' = 2 tanh^2(2K) - 1. With
    K(k) = pi / (2 AGM(1, |k''|)) the bracket is 1 + k'' / AGM(1, |k''|), which is finite at
    Tc (k'' = 0 there, u(Tc) = -sqrt 2). Accepts scalars or arrays; T = 0 gives -2.
    """
    t = _as_temperature(T)
    _, th, sech, k2 = _coupling_parts(t)
    agm, _, gap = _agm(np.abs(k2), 2.0 * th * sech)
    u = -_bracket(k2, agm, gap) / th
    u = np.where(t == 0, -2.0, u)
    return u[()] if u.ndim == 0 else u


def onsager_magnetisation(T):
    """Spontaneous magnetisation per spin (Yang): (1 - sinh(2/T)^-4)^(1/8) below Tc, else 0."""
    t = _as_temperature(T)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        s = np.sinh(2.0 / np.where(t > 0, t, 1.0))
        inner = 1.0 - s**-4.0
        m = np.where(t < TC, np.clip(inner, 0.0, None) ** 0.125, 0.0)
    m = np.where(t == 0, 1.0, m)
    return m[()] if m.ndim == 0 else m


def onsager_specific_heat(T):
    """Exact specific heat per spin at h = 0, c = du/dT = -K^2 du/dK, differentiated
    analytically (no finite differences). With k = 2 tanh(2K) sech(2K), k'' as above,
    dk/dK = -4 sech(2K) k'' and dK1/dk = E1/(k k''^2) - K1/k this gives

        du/dK = 2 (1 + k''/AGM) / sinh^2(2K)
                - (2/pi) [8 sech^2(2K) K1 - 2 (E1 - k''^2 K1) / tanh^2(2K)]

    (K1, E1: complete elliptic integrals of the first and second kind of modulus k), with
    E1 - k''^2 K1 = K1 (k^2/2 - rest) evaluated without cancellation. Diverges
    logarithmically at Tc (inf when k'' is exactly 0).
    """
    t = _as_temperature(T)
    k, th, sech, k2 = _coupling_parts(t)
    kmod = 2.0 * th * sech
    agm, rest, gap = _agm(np.abs(k2), kmod)
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        k1 = np.pi / (2.0 * agm)
        sech2 = sech * sech
        sinh2 = th * th / sech2
        e_minus = k1 * (0.5 * kmod * kmod - rest)  # E1 - k''^2 K1
        du_dk = 2.0 * _bracket(k2, agm, gap) / sinh2 - (2.0 / np.pi) * (
            8.0 * sech2 * k1 - 2.0 * e_minus / (th * th)
        )
        c = -k * k * du_dk
    c = np.where(k2 == 0.0, np.inf, c)
    c = np.where(t == 0, 0.0, c)
    return c[()] if c.ndim == 0 else c


# ---------------------------------------------------------------------------------------------
# Finite lattices by enumeration


def _check_enumerable(L):
    if isinstance(L, bool) or not isinstance(L, int | np.integer):
        raise UsageError(f"lattice size must be an integer, got {L!r}")
    L = int(L)
    if L < 2 or L * L > MAX_ENUMERATION_SITES:
        raise UsageError(
            f"exact enumeration needs 2 <= L and L*L <= {MAX_ENUMERATION_SITES}, got L={L}"
        )
    return L


@lru_cache(maxsize=8)
def state_histogram(L: int):
    """Density of states of the periodic L x L lattice by enumerating all 2^(L*L) states.

    Returns read-only arrays (bond_energy, magnetisation, count): every distinct pair of total
    bond energy E_b = -sum_<ij> s_i s_j and total magnetisation M = sum_i s_i, with the number
    of states having it. Bonds are counted like np.roll does: each site's right and down
    neighbour, so for L = 2 every neighbour pair appears twice (as in any periodic kernel).
    """
    L = _check_enumerable(L)
    n = L * L
    codes = np.arange(1 << n, dtype=np.int64)
    bits = (codes[:, None] >> np.arange(n, dtype=np.int64)) & 1
    s = (2 * bits - 1).astype(np.int32).reshape(-1, L, L)
    bonds = (s * np.roll(s, -1, axis=1)).sum(axis=(1, 2)) + (s * np.roll(s, -1, axis=2)).sum(
        axis=(1, 2)
    )
    eb = -bonds.astype(np.int64)
    m = s.sum(axis=(1, 2)).astype(np.int64)
    # Encode (E_b, M) as one integer key and count the distinct keys.
    key = (eb + 2 * n) * (2 * n + 1) + (m + n)
    uniq, count = np.unique(key, return_counts=True)
    e_out = uniq // (2 * n + 1) - 2 * n
    m_out = uniq % (2 * n + 1) - n
    for arr in (e_out, m_out, count):
        arr.setflags(write=False)
    return e_out, m_out, count.astype(np.int64)


def enumerate_ising(L: int, T, h: float = 0.0) -> dict:
    """Exact thermal averages on the periodic L x L lattice (L*L <= 16) at temperature(s) T.

    Returns a dict of floats (or arrays shaped like T):
      energy_per_spin   <H>/N with H = -sum_<ij> s_i s_j - h sum_i s_i
      magnetisation     <m>, m = M/N
      abs_magnetisation <|m|>
      m2, m4            <m^2>, <m^4>
      specific_heat     (<H^2> - <H>^2) / (N T^2)
      susceptibility    N (<m^2> - <|m|>^2) / T          (the finite-lattice |m| estimator)
      susceptibility_m2 N <m^2> / T
      susceptibility_connected N (<m^2> - <m>^2) / T
      binder            1 - <m^4> / (3 <m^2>^2)
      log_partition_function  ln Z
      free_energy_per_spin    -T ln Z / N
    """
    L = _check_enumerable(L)
    t = _as_temperature(T, allow_zero=False)
    h = float(h)
    if not np.isfinite(h):
        raise UsageError("field h must be finite")
    n = L * L
    eb, mtot, count = state_histogram(L)
    energy = eb.astype(np.float64) - h * mtot  # total H per histogram entry
    m = mtot / n
    tt = np.atleast_1d(t)[:, None]
    logw = np.log(count)[None, :] - energy[None, :] / tt
    shift = logw.max(axis=1, keepdims=True)  # log-sum-exp: the largest weight becomes 1
    w = np.exp(logw - shift)
    z_scaled = w.sum(axis=1, keepdims=True)
    log_z = (shift + np.log(z_scaled))[:, 0]
    w /= z_scaled

    def avg(x):
        return w @ x

    def var(x, mean):
        return np.einsum("ts,ts->t", w, (x[None, :] - mean[:, None]) ** 2)

    e_mean = avg(energy)
    am = avg(np.abs(m))
    mm = avg(m)
    m2 = avg(m * m)
    m4 = avg(m**4)
    tf = tt[:, 0]
    out = {
        "energy_per_spin": e_mean / n,
        "magnetisation": mm,
        "abs_magnetisation": am,
        "m2": m2,
        "m4": m4,
        "specific_heat": var(energy, e_mean) / (n * tf * tf),
        "susceptibility": n * var(np.abs(m), am) / tf,
        "susceptibility_m2": n * m2 / tf,
        "susceptibility_connected": n * var(m, mm) / tf,
        "binder": 1.0 - m4 / (3.0 * m2 * m2),
        "log_partition_function": log_z,
        "free_energy_per_spin": -tf * log_z / n,
    }
    if t.ndim == 0:
        return {k: float(v[0]) for k, v in out.items()}
    return {k: v.reshape(t.shape) for k, v in out.items()}


def exact_curves(L, temperatures) -> dict:
    """Exact reference curves over a temperature grid (for the observable-matching thermometer).

    L with L*L <= 16: enumeration (all keys of `enumerate_ising`, h = 0).
    L = None: the infinite lattice (Onsager), keys energy_per_spin, abs_magnetisation
    (the spontaneous magnetisation) and specific_heat.
    Larger finite L have no exact curves here; use a Monte Carlo reference instead.
    Always includes "temperature" (float64 array).
    """
    t = np.atleast_1d(_as_temperature(temperatures, allow_zero=L is None)).astype(np.float64)
    if L is None:
        return {
            "temperature": t,
            "energy_per_spin": np.atleast_1d(onsager_energy_per_spin(t)),
            "abs_magnetisation": np.atleast_1d(onsager_magnetisation(t)),
            "specific_heat": np.atleast_1d(onsager_specific_heat(t)),
        }
    out = enumerate_ising(L, t)
    out["temperature"] = t
    return out
