"""Observables of spin configurations and their error analysis.

Configurations are (L, L) or batches (n, L, L) on a periodic square lattice (J = 1): int8 +-1
Ising spins, or float values (RG block averages, RBM reconstructions) -- every function here
accepts both. Large batches are processed in chunks, so memory stays bounded.

* Per configuration: energy per spin, magnetisation, and a compiled per-sweep measurement
  `energy_and_magnetisation` for Monte Carlo loops.
* Time series: integrated autocorrelation time with Sokal's automatic window, binning and
  jackknife error bars, and `thermo_from_series` (E, |m|, C, chi, Binder with errors that
  account for autocorrelation).
* Two-point functions: periodic connected G(r) and the second-moment correlation length, the
  paper's convention (Euclidean distance without periodic wrap, r < L/2, all pairs at a given
  distance averaged, not connected), and the energy-operator correlator.
"""

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from rgflow.core.errors import UsageError

CHUNK_ELEMENTS = 1 << 22  # sites converted to float64 at once (32 MiB)
BIN_TAU_FACTOR = 20  # automatic bins are at least this many tau_int long
MAX_AUTO_BINS = 200
MIN_RELIABLE_BINS = 10


class Estimate(NamedTuple):
    """A value with its one-sigma error bar."""

    mean: float
    error: float


# ---------------------------------------------------------------------------------------------
# Input handling


def _as_batch(configs, name="configs"):
    """(n, Ly, Lx) view of a configuration or batch, and whether the input was a single one."""
    a = np.asarray(configs)
    if a.dtype == np.bool_ or not (
        np.issubdtype(a.dtype, np.integer) or np.issubdtype(a.dtype, np.floating)
    ):
        raise UsageError(f"{name} must be an integer or float array, got dtype {a.dtype}")
    if a.ndim == 2:
        return a[None], True
    if a.ndim == 3:
        if a.shape[0] == 0:
            raise UsageError(f"{name} is empty")
        return a, False
    raise UsageError(f"{name} must have shape (L, L) or (n, L, L), got {a.shape}")


def _chunks(batch):
    """float64 copies of consecutive slices of a (n, Ly, Lx) batch, at most CHUNK_ELEMENTS each."""
    n, ly, lx = batch.shape
    step = max(1, CHUNK_ELEMENTS // (ly * lx))
    for i in range(0, n, step):
        c = np.asarray(batch[i : i + step], dtype=np.float64)
        if np.issubdtype(batch.dtype, np.floating) and not np.all(np.isfinite(c)):
            raise UsageError("configurations contain NaN or infinite values")
        yield c


def _as_series(x, name):
    a = np.asarray(x, dtype=np.float64)
    if a.ndim != 1:
        raise UsageError(f"{name} must be a 1-D series, got shape {a.shape}")
    if a.size < 2:
        raise UsageError(f"{name} needs at least 2 samples, got {a.size}")
    if not np.all(np.isfinite(a)):
        raise UsageError(f"{name} contains NaN or infinite values")
    return a


# ---------------------------------------------------------------------------------------------
# Single-configuration observables


def energy_per_spin(spins, h: float = 0.0):
    """Energy per spin of H = -sum_<ij> s_i s_j - h sum_i s_i (periodic, each bond once).

    (L, L) -> float; (n, L, L) -> float64 array of shape (n,).
    """
    batch, single = _as_batch(spins, "spins")
    if batch.dtype == np.int8:
        # Ising spins: the compiled kernel, ~20x faster than the float path and exact.
        e, m = energy_and_magnetisation_batch(np.ascontiguousarray(batch))
        out = (e - h * m) / (batch.shape[1] * batch.shape[2])
        return float(out[0]) if single else out
    out = np.empty(batch.shape[0], dtype=np.float64)
    i = 0
    for c in _chunks(batch):
        bonds = (c * np.roll(c, -1, axis=2)).sum(axis=(1, 2))
        bonds += (c * np.roll(c, -1, axis=1)).sum(axis=(1, 2))
        out[i : i + len(c)] = -(bonds + h * c.sum(axis=(1, 2))) / (c.shape[1] * c.shape[2])
        i += len(c)
    return float(out[0]) if single else out


def magnetisation(spins):
    """Signed magnetisation per spin: (L, L) -> float; (n, L, L) -> array (n,)."""
    batch, single = _as_batch(spins, "spins")
    m = batch.mean(axis=(1, 2), dtype=np.float64)
    return float(m[0]) if single else m


@njit(cache=True, nogil=True)
def energy_and_magnetisation(spins):
    """Total bond energy -sum_<ij> s_i s_j and total magnetisation of one periodic lattice,
    as two int64. For int8 C-contiguous spins (one compiled specialisation); callable from
    other compiled kernels. The field term, if any, is -h * M."""
    n0, n1 = spins.shape
    e = np.int64(0)
    m = np.int64(0)
    for i in range(n0):
        ip = i + 1 if i + 1 < n0 else 0
        for j in range(n1):
            jp = j + 1 if j + 1 < n1 else 0
            s = np.int64(spins[i, j])
            m += s
            e -= s * (np.int64(spins[ip, j]) + np.int64(spins[i, jp]))
    return e, m


@njit(cache=True, nogil=True)
def energy_and_magnetisation_batch(spins):
    """`energy_and_magnetisation` for each lattice of an (R, L, L) batch: two int64 arrays (R,)."""
    r = spins.shape[0]
    e = np.empty(r, dtype=np.int64)
    m = np.empty(r, dtype=np.int64)
    for k in range(r):
        ek, mk = energy_and_magnetisation(spins[k])
        e[k] = ek
        m[k] = mk
    return e, m


# ---------------------------------------------------------------------------------------------
# Autocorrelation and error bars


def autocorrelation(series):
    """Normalised autocorrelation rho(t), t = 0..n-1, via FFT.

    C(t) = sum_{i} (x_i - xbar)(x_{i+t} - xbar) / (n - t) and rho(t) = C(t) / C(0).
    A constant series has no defined rho; it returns rho = [1, 0, 0, ...].
    """
    x = _as_series(series, "series")
    n = x.size
    d = x - x.mean()
    size = 1 << (2 * n - 1).bit_length()  # zero padding: linear, not circular, correlation
    f = np.fft.rfft(d, size)
    acov = np.fft.irfft(f.real**2 + f.imag**2, size)[:n] / np.arange(n, 0, -1)
    rho = np.zeros(n)
    rho[0] = 1.0
    if acov[0] > 0:
        rho[1:] = acov[1:] / acov[0]
    return rho


def tau_int(series, c: float = 5.0):
    """Integrated autocorrelation time with Sokal's automatic window.

    Convention: tau_int = 1/2 + sum_{t=1}^{W} rho(t), so an uncorrelated series has
    tau_int = 1/2 and n samples are worth about n / (2 tau_int) independent ones (the variance
    of the mean is 2 tau_int sigma^2 / n). W is the smallest window with W >= c * tau_int(W)
    (Madras & Sokal 1988). Returns (tau, W, tau_error) with the Madras-Sokal error
    tau * sqrt(2 (2W + 1) / n). If no window qualifies (series shorter than ~c tau), W = n-1
    and tau is a lower bound. A constant series gives (0.5, 0, 0.0).
    """
    if not (c > 0 and math.isfinite(c)):
        raise UsageError(f"window factor c must be positive, got {c}")
    x = _as_series(series, "series")
    n = x.size
    if np.all(x == x[0]):
        return 0.5, 0, 0.0
    rho = autocorrelation(x)
    taus = 0.5 + np.cumsum(rho[1:])  # taus[W - 1] = tau_int(W)
    windows = np.arange(1, n)
    ok = np.flatnonzero(windows >= c * taus)
    w = int(windows[ok[0]]) if ok.size else n - 1
    tau = float(taus[w - 1])
    return tau, w, float(abs(tau) * math.sqrt(2.0 * (2 * w + 1) / n))


def auto_bins(n: int, tau: float) -> int:
    """Number of bins for n samples: bins at least BIN_TAU_FACTOR * tau long, at most
    MAX_AUTO_BINS bins, at least 2 (fewer than MIN_RELIABLE_BINS means the error is rough)."""
    size = max(1, math.ceil(BIN_TAU_FACTOR * max(tau, 0.5)))
    return int(min(MAX_AUTO_BINS, max(2, n // size), n))


def _bin_means(x, n_bins):
    """Means of n_bins equal consecutive bins; the first n % n_bins samples are dropped (the
    earliest samples are the most likely to be unequilibrated)."""
    b = x.size // n_bins
    return x[x.size - n_bins * b :].reshape(n_bins, b).mean(axis=1)


def _check_bins(n_bins, n):
    if isinstance(n_bins, bool) or not isinstance(n_bins, int | np.integer):
        raise UsageError(f"n_bins must be an integer, got {n_bins!r}")
    if not 2 <= n_bins <= n:
        raise UsageError(f"n_bins must be between 2 and the number of samples {n}, got {n_bins}")
    return int(n_bins)


def binning_error(series, n_bins=None) -> float:
    """Standard error of the mean from the scatter of n_bins bin means.

    n_bins=None chooses bins at least BIN_TAU_FACTOR * tau_int long (see `auto_bins`), so
    the autocorrelation is accounted for.
    """
    x = _as_series(series, "series")
    if n_bins is None:
        n_bins = auto_bins(x.size, tau_int(x)[0])
    n_bins = _check_bins(n_bins, x.size)
    means = _bin_means(x, n_bins)
    return float(np.std(means, ddof=1) / math.sqrt(n_bins))


def jackknife(func, *series, n_bins=None):
    """Jackknife estimate and error of func(<x1>, <x2>, ...) over bins of the series.

    `func` receives the means of each series: once as floats (the estimate) and once as
    arrays of the n_bins leave-one-bin-out means (it must be elementwise numpy code). The
    estimate is func of the means over all samples (no bias correction); the error is
    sqrt((n_bins - 1) / n_bins * sum_k (theta_k - mean theta)^2) over n_bins equal bins of the
    last n_bins * (n // n_bins) samples. n_bins=None picks bins from the largest tau_int of
    the series (see `auto_bins`). All series must have equal length. Returns (estimate, error).
    """
    if not series:
        raise UsageError("jackknife needs at least one series")
    xs = [_as_series(s, f"series {i}") for i, s in enumerate(series)]
    n = xs[0].size
    if any(x.size != n for x in xs):
        raise UsageError("jackknife series must all have the same length")
    if n_bins is None:
        n_bins = auto_bins(n, max(tau_int(x)[0] for x in xs))
    n_bins = _check_bins(n_bins, n)
    bins = [_bin_means(x, n_bins) for x in xs]
    full = [float(x.mean()) for x in xs]
    loo = [(b.sum() - b) / (n_bins - 1) for b in bins]
    with np.errstate(divide="ignore", invalid="ignore"):
        est = float(func(*full))
        theta = np.asarray(func(*loo), dtype=np.float64)
    err = math.sqrt((n_bins - 1) / n_bins * float(np.sum((theta - theta.mean()) ** 2)))
    return est, err


def thermo_from_series(e_per_spin, m_per_spin, T: float, N: int, n_bins=None) -> dict:
    """Thermodynamics with jackknife error bars from Monte Carlo time series.

    e_per_spin, m_per_spin: per-measurement energy per spin and signed magnetisation per spin
    (equal length, in time order). T: temperature, N: number of spins.
    Returns a dict of Estimate(mean, error):
      energy_per_spin, magnetisation, abs_magnetisation, m2,
      specific_heat      N (<e^2> - <e>^2) / T^2
      susceptibility     N (<m^2> - <|m|>^2) / T
      susceptibility_m2  N <m^2> / T
      binder             1 - <m^4> / (3 <m^2>^2)
      tau_energy, tau_abs_magnetisation   tau_int (1/2 + sum rho convention) with error
    and plain values n_samples, n_bins, bin_size, reliable (bins >= BIN_TAU_FACTOR * tau_int
    long and at least MIN_RELIABLE_BINS of them). Estimates use all samples; errors come from
    the jackknife over bins (see `jackknife`), so autocorrelation is accounted for.
    """
    e = _as_series(e_per_spin, "e_per_spin")
    m = _as_series(m_per_spin, "m_per_spin")
    if e.size != m.size:
        raise UsageError("energy and magnetisation series must have the same length")
    T = float(T)
    if not (T > 0 and math.isfinite(T)):
        raise UsageError(f"temperature must be positive, got {T}")
    if isinstance(N, bool) or not isinstance(N, int | np.integer) or N < 1:
        raise UsageError(f"N must be a positive integer, got {N!r}")
    a = np.abs(m)
    tau_e = tau_int(e)
    tau_a = tau_int(a)
    tau_max = max(tau_e[0], tau_a[0])
    if n_bins is None:
        n_bins = auto_bins(e.size, tau_max)
    n_bins = _check_bins(n_bins, e.size)
    bin_size = e.size // n_bins
    # Fluctuations from shifted series: variances are shift-invariant and this avoids
    # cancellation in <x^2> - <x>^2.
    e0 = e - e.mean()
    a0 = a - a.mean()
    m2 = m * m

    def jk(func, *xs):
        return Estimate(*jackknife(func, *xs, n_bins=n_bins))

    out = {
        "energy_per_spin": jk(lambda x: x, e),
        "magnetisation": jk(lambda x: x, m),
        "abs_magnetisation": jk(lambda x: x, a),
        "m2": jk(lambda x: x, m2),
        "specific_heat": jk(lambda x, x2: N * (x2 - x * x) / (T * T), e0, e0 * e0),
        "susceptibility": jk(lambda x, x2: N * (x2 - x * x) / T, a0, a0 * a0),
        "susceptibility_m2": jk(lambda x2: N * x2 / T, m2),
        "binder": jk(lambda q2, q4: 1.0 - q4 / (3.0 * q2 * q2), m2, m2 * m2),
        "tau_energy": Estimate(tau_e[0], tau_e[2]),
        "tau_abs_magnetisation": Estimate(tau_a[0], tau_a[2]),
        "n_samples": int(e.size),
        "n_bins": n_bins,
        "bin_size": bin_size,
        "reliable": bool(bin_size >= BIN_TAU_FACTOR * tau_max and n_bins >= MIN_RELIABLE_BINS),
    }
    return out


# ---------------------------------------------------------------------------------------------
# Two-point functions


def _power_sum(chunks, shape):
    """Sum over configurations of |FFT|^2 on a grid of the given shape (zero-padded when larger
    than the lattice), plus the number of configurations and the sum of all values."""
    total = None
    count = 0
    value_sum = 0.0
    for c in chunks:
        f = np.fft.rfft2(c, s=shape)
        p = (f.real**2 + f.imag**2).sum(axis=0)
        total = p if total is None else total + p
        count += c.shape[0]
        value_sum += float(c.sum())
    return total, count, value_sum


def _periodic_from_power(power, count, value_sum, ly, lx, connected):
    n_sites = ly * lx
    g = np.fft.irfft2(power, s=(ly, lx)) / (count * n_sites)
    if connected:
        g -= (value_sum / (count * n_sites)) ** 2
    return g


def correlation_periodic(configs, connected: bool = True):
    """Periodic two-point function as a function of the lattice vector, via FFT.

    G[dy, dx] = (1/N) sum_x <s(x) s(x + (dy, dx))> (indices mod L), averaged over the
    configurations; connected=True subtracts sbar^2, sbar the mean over all sites and
    configurations (translation invariance). Returns an (Ly, Lx) float64 array.
    """
    batch, _ = _as_batch(configs)
    _, ly, lx = batch.shape
    power, count, value_sum = _power_sum(_chunks(batch), (ly, lx))
    return _periodic_from_power(power, count, value_sum, ly, lx, connected)


def _periodic_distance2(ly, lx):
    dy = np.arange(ly)
    dx = np.arange(lx)
    dy = np.minimum(dy, ly - dy)
    dx = np.minimum(dx, lx - dx)
    return dy[:, None] ** 2 + dx[None, :] ** 2


def radial_average_periodic(g2d, exact: bool = False):
    """Average an (Ly, Lx) function of the lattice vector over vectors of equal periodic
    (minimum-image) length. exact=False bins lengths to the nearest integer r = 0, 1, ...;
    exact=True groups identical lengths. Returns (r, G) for the non-empty groups."""
    g = np.asarray(g2d, dtype=np.float64)
    if g.ndim != 2:
        raise UsageError(f"expected a 2-D array, got shape {g.shape}")
    d2 = _periodic_distance2(*g.shape)
    if exact:
        keys, inv = np.unique(d2.ravel(), return_inverse=True)
        sums = np.bincount(inv, weights=g.ravel())
        counts = np.bincount(inv)
        return np.sqrt(keys.astype(np.float64)), sums / counts
    idx = np.rint(np.sqrt(d2)).astype(np.int64).ravel()
    sums = np.bincount(idx, weights=g.ravel())
    counts = np.bincount(idx)
    keep = counts > 0
    return np.flatnonzero(keep).astype(np.float64), sums[keep] / counts[keep]


def _second_moment_series(batch):
    """Per configuration: chi_k = |s(0)|^2 / N, F_k = mean of |s(2pi/L)|^2 / N over both axes,
    and the magnetisation per spin."""
    chis, fs, ms = [], [], []
    for c in _chunks(batch):
        n_sites = c.shape[1] * c.shape[2]
        f = np.fft.rfft2(c)
        p = (f.real**2 + f.imag**2) / n_sites
        chis.append(p[:, 0, 0])
        fs.append(0.5 * (p[:, 0, 1] + p[:, 1, 0]))
        ms.append(c.mean(axis=(1, 2)))
    return np.concatenate(chis), np.concatenate(fs), np.concatenate(ms)


def correlation_length_second_moment(
    configs, connected: bool = False, with_error: bool = False, n_bins=None
):
    """Second-moment correlation length xi_2 = sqrt(chi / F - 1) / (2 sin(pi / L)).

    chi = G^(0) and F = G^(2 pi / L) (the two axes averaged) are Fourier components of the
    periodic two-point function. connected=False (default) uses chi = N <m^2>, the standard
    finite-size-scaling definition, independent of the sign of the configurations;
    connected=True uses N (<m^2> - <m>^2). NaN if chi < F (noise at high T), inf if F = 0.
    with_error=True returns Estimate(xi, jackknife error) over bins of the configurations
    (in the order given; n_bins as in `jackknife`). Square lattices only.
    """
    batch, _ = _as_batch(configs)
    _, ly, lx = batch.shape
    if ly != lx:
        raise UsageError(f"second-moment correlation length needs a square lattice, got {ly}x{lx}")
    if ly < 2:
        raise UsageError("second-moment correlation length needs L >= 2")
    n_sites = ly * lx
    scale = 2.0 * math.sin(math.pi / ly)
    chi_k, f_k, m_k = _second_moment_series(batch)

    def xi(chi, f, m):
        c = chi - n_sites * m * m if connected else chi
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.sqrt(c / f - 1.0) / scale

    if not with_error:
        return float(xi(chi_k.mean(), f_k.mean(), m_k.mean()))
    if chi_k.size < 2:
        raise UsageError("an error bar needs at least 2 configurations")
    return Estimate(*jackknife(xi, chi_k, f_k, m_k, n_bins=n_bins))


def _paper_from_power(power, count, value_sum, ly, lx, r_max, connected):
    """Pair-averaged correlator at Euclidean distances 0 < r < r_max, no periodic wrap, from the
    power spectrum on the zero-padded (2Ly, 2Lx) grid."""
    corr = np.fft.irfft2(power, s=(2 * ly, 2 * lx))
    dy = np.arange(-(ly - 1), ly)
    dx = np.arange(-(lx - 1), lx)
    # Displacement d sits at index d mod 2L of the padded linear correlation.
    sums = corr[np.ix_(dy % (2 * ly), dx % (2 * lx))]
    pairs = np.outer(ly - np.abs(dy), lx - np.abs(dx)) * float(count)
    d2 = dy[:, None] ** 2 + dx[None, :] ** 2
    # Both d and -d are included: each unordered pair counted twice in sums and in pairs.
    sel = (d2 > 0) & (d2 < r_max * r_max)
    keys, inv = np.unique(d2[sel], return_inverse=True)
    g = np.bincount(inv, weights=sums[sel]) / np.bincount(inv, weights=pairs[sel])
    if connected:
        g -= (value_sum / (count * ly * lx)) ** 2
    return np.sqrt(keys.astype(np.float64)), g


def _check_r_max(r_max, ly, lx):
    if r_max is None:
        return 0.5 * min(ly, lx)
    r = float(r_max)
    if not (r > 0 and math.isfinite(r)):
        raise UsageError(f"r_max must be positive, got {r_max}")
    return r


def correlation_paper(configs, r_max=None, connected: bool = False):
    """Two-point function in the authors' convention (arXiv:1906.05212, their code):
    G(r) = average over all pairs of distinct sites at Euclidean distance r (no periodic wrap)
    and over the configurations of s(x) s(y), for 0 < r < r_max (default L/2; strictly less).
    Not connected by default; connected=True subtracts sbar^2 (sbar: mean over all sites and
    configurations). Every pair has equal weight. Computed for all displacements at once from
    zero-padded FFTs. Returns (r, G): the distinct distances, increasing, and G at each.
    """
    batch, _ = _as_batch(configs)
    _, ly, lx = batch.shape
    r_max = _check_r_max(r_max, ly, lx)
    power, count, value_sum = _power_sum(_chunks(batch), (2 * ly, 2 * lx))
    return _paper_from_power(power, count, value_sum, ly, lx, r_max, connected)


_DIRECTIONS = ("both", "axis0", "axis1")


def _epsilon(c, direction):
    if direction == "axis0":
        return c * np.roll(c, -1, axis=1)
    if direction == "axis1":
        return c * np.roll(c, -1, axis=2)
    return 0.5 * (c * np.roll(c, -1, axis=1) + c * np.roll(c, -1, axis=2))


def energy_operator_field(configs, direction: str = "both"):
    """Local energy operator eps(x) = s(x) s(x + e) with periodic neighbours, NOT mean-subtracted.

    direction="both" averages e = x^ and y^; "axis0" uses the next row only (what the authors'
    code does: s[r, c] s[r + 1, c]); "axis1" the next column. Same shape as the input, float64.
    """
    if direction not in _DIRECTIONS:
        raise UsageError(f"direction must be one of {', '.join(_DIRECTIONS)}, got {direction!r}")
    batch, single = _as_batch(configs)
    out = np.concatenate([_epsilon(c, direction) for c in _chunks(batch)])
    return out[0] if single else out


def energy_operator_correlation(
    configs, convention: str = "paper", r_max=None, direction: str = "both"
):
    """Energy-operator two-point function G_eps(r).

    eps(x) = s(x) s(x + e) (see `energy_operator_field` for `direction`) minus its mean over
    the whole dataset (all sites and configurations), then:
      convention="paper": pair average at Euclidean distance 0 < r < r_max, no wrap
                          (as `correlation_paper`; default r_max = L/2);
      convention="periodic": periodic G(vector) radially averaged to integer distances
                          (as `correlation_periodic` + `radial_average_periodic`).
    Returns (r, G).
    """
    if convention not in ("paper", "periodic"):
        raise UsageError(f"convention must be 'paper' or 'periodic', got {convention!r}")
    if direction not in _DIRECTIONS:
        raise UsageError(f"direction must be one of {', '.join(_DIRECTIONS)}, got {direction!r}")
    batch, _ = _as_batch(configs)
    _, ly, lx = batch.shape
    # First pass: the dataset mean of eps; second pass: spectra of the centred field.
    total = 0.0
    for c in _chunks(batch):
        total += float(_epsilon(c, direction).sum())
    mean = total / (batch.shape[0] * ly * lx)
    centred = (_epsilon(c, direction) - mean for c in _chunks(batch))
    if convention == "paper":
        r_max = _check_r_max(r_max, ly, lx)
        power, count, value_sum = _power_sum(centred, (2 * ly, 2 * lx))
        return _paper_from_power(power, count, value_sum, ly, lx, r_max, False)
    power, count, value_sum = _power_sum(centred, (ly, lx))
    g = _periodic_from_power(power, count, value_sum, ly, lx, False)
    return radial_average_periodic(g)
