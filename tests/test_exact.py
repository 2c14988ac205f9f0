"""Exact references: Onsager/Yang closed forms and finite-lattice enumeration.

Each closed form is checked against something computed a different way: series expansions,
quadrature of the elliptic integral, another algebraic form, finite differences; the
enumeration against a pure-Python loop over states and a transfer matrix.
"""

import itertools
import math

import numpy as np
import pytest

from rgflow.core import exact
from rgflow.core.errors import UsageError

# ---------------------------------------------------------------------------------------------
# Onsager


def test_tc_value():
    assert exact.TC == pytest.approx(2.269185314213022, abs=1e-15)
    assert math.sinh(2.0 / exact.TC) == pytest.approx(1.0, abs=1e-15)  # self-dual point


def test_energy_at_tc_is_minus_sqrt2():
    assert exact.onsager_energy_per_spin(exact.TC) == pytest.approx(-math.sqrt(2.0), abs=1e-13)


def test_energy_limits():
    assert exact.onsager_energy_per_spin(0.0) == -2.0
    assert exact.onsager_energy_per_spin(0.05) == pytest.approx(-2.0, abs=1e-15)
    # Far above Tc, u = -2 tanh(1/T) + O(T^-3).
    for t in (1e3, 1e5):
        v = math.tanh(1 / t)
        assert exact.onsager_energy_per_spin(t) == pytest.approx(-2 * v - 4 * v**3, rel=1e-13)


@pytest.mark.parametrize("t", [0.4, 0.5])
def test_energy_low_temperature_series(t):
    # ln Z / N = 2K + x^4 + 2x^6 + 9/2 x^8 + 12 x^10 + ..., x = exp(-2K), u = -d/dK.
    x = math.exp(-2.0 / t)
    series = -2.0 + 8 * x**4 + 24 * x**6 + 72 * x**8
    assert abs(exact.onsager_energy_per_spin(t) - series) < 1e-12 + 480 * x**10


@pytest.mark.parametrize("t", [50.0, 100.0])
def test_energy_high_temperature_series(t):
    # ln Z / N = ln 2 + 2 ln cosh K + v^4 + 2 v^6 + 9/2 v^8 + ..., v = tanh K.
    v = math.tanh(1.0 / t)
    series = -2 * v - (4 * v**3 + 12 * v**5 + 36 * v**7) * (1 - v * v)
    assert abs(exact.onsager_energy_per_spin(t) - series) < 1e-13 + 240 * v**9


@pytest.mark.parametrize("t", [1.2, 1.5, 2.0, 2.6, 3.5])
def test_energy_against_quadrature(t):
    # The elliptic integral by Gauss-Legendre quadrature instead of the AGM.
    nodes, weights = np.polynomial.legendre.leggauss(400)
    theta = (nodes + 1) * np.pi / 4
    k_coupling = 1.0 / t
    k = 2 * math.sinh(2 * k_coupling) / math.cosh(2 * k_coupling) ** 2
    ell_k = np.sum(weights * np.pi / 4 / np.sqrt(1 - k * k * np.sin(theta) ** 2))
    th = math.tanh(2 * k_coupling)
    u = -(1 / th) * (1 + 2 / np.pi * (2 * th * th - 1) * ell_k)
    assert exact.onsager_energy_per_spin(t) == pytest.approx(u, abs=1e-12)


def test_onsager_vectorised_matches_scalars():
    ts = np.array([0.0, 0.7, 1.9, exact.TC, 2.5, 8.0])
    for f in (exact.onsager_energy_per_spin, exact.onsager_magnetisation):
        arr = f(ts)
        assert arr.shape == ts.shape
        np.testing.assert_array_equal(arr, [f(float(t)) for t in ts])
    assert exact.onsager_specific_heat(ts.reshape(2, 3)).shape == (2, 3)


@pytest.mark.parametrize("t", [0.6, 1.0, 1.8, 2.2, 2.26])
def test_magnetisation_against_yang_other_form(t):
    z = math.exp(-2.0 / t)
    m = (1 + z * z) ** 0.25 * (1 - 6 * z * z + z**4) ** 0.125 / math.sqrt(1 - z * z)
    assert exact.onsager_magnetisation(t) == pytest.approx(m, abs=1e-13)


def test_magnetisation_limits_and_shape():
    assert exact.onsager_magnetisation(0.0) == 1.0
    assert exact.onsager_magnetisation(0.01) == 1.0
    assert exact.onsager_magnetisation(exact.TC) == 0.0
    assert np.all(exact.onsager_magnetisation(np.linspace(exact.TC, 10, 7)) == 0.0)
    ts = np.linspace(0.5, exact.TC * (1 - 1e-9), 200)
    m = exact.onsager_magnetisation(ts)
    assert np.all(np.diff(m) < 0) and m[-1] < 0.2  # (1 - T/Tc)^(1/8) vanishes slowly
    # beta = 1/8 near Tc: m ~ A (Tc - T)^(1/8)
    t1, t2 = exact.TC * (1 - 1e-6), exact.TC * (1 - 1e-7)
    slope = math.log(exact.onsager_magnetisation(t1) / exact.onsager_magnetisation(t2))
    assert slope / math.log(10.0) == pytest.approx(0.125, rel=1e-5)


@pytest.mark.parametrize("t", [0.8, 1.5, 2.0, 2.2, 2.4, 3.0, 5.0, 20.0])
def test_specific_heat_is_derivative_of_energy(t):
    h = 1e-4 * t
    u = exact.onsager_energy_per_spin
    # Fourth-order central difference.
    d = (-u(t + 2 * h) + 8 * u(t + h) - 8 * u(t - h) + u(t - 2 * h)) / (12 * h)
    c = exact.onsager_specific_heat(t)
    assert c == pytest.approx(d, rel=1e-7, abs=1e-10)


def test_specific_heat_limits():
    assert exact.onsager_specific_heat(0.0) == 0.0
    assert exact.onsager_specific_heat(0.1) == pytest.approx(0.0, abs=1e-12)
    # float(TC) is ~1e-16 off the true Tc, where c = (8/pi) Kc^2 ln(1e16) + O(1) ~ 17.6.
    assert 17.0 < exact.onsager_specific_heat(exact.TC) < 19.0
    # Logarithmic divergence: c ~ (8/pi) Kc^2 ln(1/|t|), so equal steps in ln|t| add equally.
    tc = exact.TC
    c = [exact.onsager_specific_heat(tc * (1 + 10.0**-k)) for k in (5, 6, 7)]
    amp = 8 / np.pi / tc**2 * math.log(10)
    assert c[1] - c[0] == pytest.approx(amp, rel=1e-3)
    assert c[2] - c[1] == pytest.approx(amp, rel=1e-3)
    t = 1e3  # c ~ 2 / T^2 at high T
    assert exact.onsager_specific_heat(t) == pytest.approx(2 / t**2, rel=1e-5)


def test_onsager_rejects_bad_temperature():
    with pytest.raises(UsageError):
        exact.onsager_energy_per_spin(-1.0)
    with pytest.raises(UsageError):
        exact.onsager_magnetisation(np.nan)


# ---------------------------------------------------------------------------------------------
# Enumeration


def _brute_force(L, t, h):
    """Obviously-right reference: loop over every state and every site in Python."""
    n = L * L
    energies, mags = [], []
    for bits in itertools.product((-1, 1), repeat=n):
        s = [bits[i * L : (i + 1) * L] for i in range(L)]
        e = 0.0
        for i in range(L):
            for j in range(L):
                e -= s[i][j] * (s[(i + 1) % L][j] + s[i][(j + 1) % L])
        m = sum(bits)
        e -= h * m
        energies.append(e)
        mags.append(m / n)
    energies = np.array(energies)
    mags = np.array(mags)
    logw = -energies / t
    z = np.exp(logw - logw.max())
    log_z = logw.max() + math.log(z.sum())
    w = z / z.sum()
    e_mean = w @ energies
    am = w @ np.abs(mags)
    m2 = w @ mags**2
    m4 = w @ mags**4
    return {
        "energy_per_spin": e_mean / n,
        "magnetisation": w @ mags,
        "abs_magnetisation": am,
        "m2": m2,
        "m4": m4,
        "specific_heat": (w @ energies**2 - e_mean**2) / (n * t * t),
        "susceptibility": n * (m2 - am**2) / t,
        "susceptibility_m2": n * m2 / t,
        "susceptibility_connected": n * (m2 - (w @ mags) ** 2) / t,
        "binder": 1 - m4 / (3 * m2**2),
        "log_partition_function": log_z,
        "free_energy_per_spin": -t * log_z / n,
    }


@pytest.mark.parametrize(("t", "h"), [(1.7, 0.3), (0.9, 0.0), (3.0, -0.2)])
def test_enumeration_3x3_matches_brute_force(t, h):
    got = exact.enumerate_ising(3, t, h)
    ref = _brute_force(3, t, h)
    assert set(got) == set(ref)
    for key, value in ref.items():
        assert got[key] == pytest.approx(value, rel=1e-12, abs=1e-13), key


def _transfer_matrix_log_z(L, t, h):
    """ln Z of the periodic L x L lattice from an independent row-to-row transfer matrix."""
    rows = np.array(list(itertools.product((-1, 1), repeat=L)), dtype=np.float64)
    intra = -(rows * np.roll(rows, -1, axis=1)).sum(axis=1) - h * rows.sum(axis=1)
    inter = -(rows @ rows.T)
    tm = np.exp(-(intra[:, None] + inter) / t)
    eig = np.linalg.eigvals(tm)
    return math.log(float(np.sum(eig**L).real))


@pytest.mark.parametrize(("t", "h"), [(1.0, 0.0), (exact.TC, 0.0), (3.5, 0.4), (2.0, -0.7)])
def test_enumeration_4x4_matches_transfer_matrix(t, h):
    got = exact.enumerate_ising(4, t, h)
    assert got["log_partition_function"] == pytest.approx(
        _transfer_matrix_log_z(4, t, h), rel=1e-12
    )
    # <E> = -d ln Z / d beta and <M> = T d ln Z / dh, by finite differences of the TM.
    beta, d = 1.0 / t, 1e-5
    e_fd = -(
        _transfer_matrix_log_z(4, 1 / (beta + d), h) - _transfer_matrix_log_z(4, 1 / (beta - d), h)
    ) / (2 * d)
    assert got["energy_per_spin"] * 16 == pytest.approx(e_fd, rel=1e-7, abs=1e-7)
    m_fd = t * (_transfer_matrix_log_z(4, t, h + d) - _transfer_matrix_log_z(4, t, h - d)) / (2 * d)
    assert got["magnetisation"] * 16 == pytest.approx(m_fd, rel=1e-7, abs=1e-7)


def test_histogram_4x4_counts():
    eb, m, count = exact.state_histogram(4)
    assert count.sum() == 2**16
    assert eb.min() == -32
    assert count[eb == -32].sum() == 2  # the two ground states
    assert count[eb == -24].sum() == 32  # one flipped spin, from either ground state
    assert count[eb == -20].sum() == 64  # two adjacent flipped spins
    assert np.all((m[eb == -32] == 16) | (m[eb == -32] == -16))


def test_enumeration_field_symmetry():
    plus = exact.enumerate_ising(4, 2.1, 0.37)
    minus = exact.enumerate_ising(4, 2.1, -0.37)
    for key in plus:
        sign = -1 if key == "magnetisation" else 1
        assert minus[key] == pytest.approx(sign * plus[key], rel=1e-12, abs=1e-14), key
    assert plus["magnetisation"] > 0
    zero = exact.enumerate_ising(4, 2.1)
    assert zero["magnetisation"] == pytest.approx(0.0, abs=1e-14)


def test_enumeration_limits():
    cold = exact.enumerate_ising(4, 0.05)
    assert cold["energy_per_spin"] == pytest.approx(-2.0, abs=1e-12)
    assert cold["abs_magnetisation"] == pytest.approx(1.0, abs=1e-12)
    assert cold["binder"] == pytest.approx(2 / 3, abs=1e-12)
    assert cold["specific_heat"] == pytest.approx(0.0, abs=1e-12)
    assert np.isfinite(cold["log_partition_function"])  # no overflow at very low T
    n = 16
    hot = exact.enumerate_ising(4, 1e7)
    assert hot["energy_per_spin"] == pytest.approx(0.0, abs=1e-6)
    # Independent random spins: <m^2> = 1/N, <m^4> = (3N^2 - 2N)/N^4.
    assert hot["m2"] == pytest.approx(1 / n, rel=1e-5)
    assert hot["m4"] == pytest.approx((3 * n * n - 2 * n) / n**4, rel=1e-5)
    assert hot["binder"] == pytest.approx(2 / (3 * n), rel=1e-4)
    assert hot["log_partition_function"] == pytest.approx(n * math.log(2), rel=1e-6)


def test_enumeration_is_close_to_onsager_at_low_t():
    # Finite-size corrections are exponentially small deep in the ordered phase.
    got = exact.enumerate_ising(4, 1.0)
    assert got["energy_per_spin"] == pytest.approx(exact.onsager_energy_per_spin(1.0), abs=1e-3)


def test_enumeration_vectorised_and_curves():
    ts = np.array([0.5, 1.5, 2.5, 4.0])
    arr = exact.enumerate_ising(4, ts)
    for i, t in enumerate(ts):
        one = exact.enumerate_ising(4, float(t))
        for key, value in one.items():
            assert arr[key][i] == pytest.approx(value, rel=1e-13, abs=1e-15), key
    curves = exact.exact_curves(4, ts)
    np.testing.assert_array_equal(curves["temperature"], ts)
    np.testing.assert_array_equal(curves["abs_magnetisation"], arr["abs_magnetisation"])
    inf = exact.exact_curves(None, ts)
    np.testing.assert_array_equal(inf["energy_per_spin"], exact.onsager_energy_per_spin(ts))
    assert set(inf) == {"temperature", "energy_per_spin", "abs_magnetisation", "specific_heat"}


@pytest.mark.parametrize(
    ("L", "t", "h"), [(5, 1.0, 0.0), (1, 1.0, 0.0), (4, 0.0, 0.0), (4, -1.0, 0.0), (4, 1.0, np.inf)]
)
def test_enumeration_rejects_bad_input(L, t, h):
    with pytest.raises(UsageError):
        exact.enumerate_ising(L, t, h)
