"""<v h> maps, locality numbers, power-law fits and scaling dimensions (rgflow.core.correlators)."""

import json
import math

import numpy as np
import pytest

from rgflow.core import correlators as C
from rgflow.core.errors import UsageError
from rgflow.core.rg import block_sites


def random_spins(rng, shape):
    return (rng.integers(0, 2, size=shape, dtype=np.int8) * 2 - 1).astype(np.int8)


# ---------------------------------------------------------------- <v h>


def test_vh_correlator_matches_triple_loop():
    rng = np.random.default_rng(1)
    n, L, nh = 7, 4, 5
    v = rng.normal(size=(n, L, L))
    h = rng.normal(size=(n, nh))
    ref = np.zeros((nh, L * L))
    for a in range(nh):
        for i in range(L * L):
            acc = 0.0
            for k in range(n):
                acc += v[k].ravel()[i] * h[k, a]
            ref[a, i] = acc / n
    got = C.vh_correlator(v, h)
    assert got.shape == (nh, L, L) and got.dtype == np.float64
    np.testing.assert_allclose(got.reshape(nh, -1), ref, rtol=1e-13, atol=1e-15)
    # Flat (n, L*L) visible input and +-1 int8 give the same maps.
    np.testing.assert_array_equal(C.vh_correlator(v.reshape(n, -1), h), got)
    s = random_spins(rng, (n, L, L))
    np.testing.assert_allclose(C.vh_correlator(s, h), C.vh_correlator(s.astype(float), h))


def test_vh_correlator_chunking_is_exact(monkeypatch):
    """Integer-valued products are summed exactly, so chunked and single GEMMs agree bit for
    bit; the chunk size only changes the summation order."""
    rng = np.random.default_rng(2)
    s = random_spins(rng, (50, 4, 4))
    h = random_spins(rng, (50, 3))
    whole = C.vh_correlator(s, h)
    monkeypatch.setattr(C, "VH_CHUNK", 7)
    np.testing.assert_array_equal(C.vh_correlator(s, h), whole)


def test_vh_correlator_rejects_bad_input():
    with pytest.raises(UsageError):
        C.vh_correlator(np.ones((3, 4, 4)), np.ones((2, 4)))  # sample counts differ
    with pytest.raises(UsageError):
        C.vh_correlator(np.ones((3, 15)), np.ones((3, 4)))  # 15 sites: not a square
    with pytest.raises(UsageError):
        C.vh_correlator(np.full((3, 4, 4), np.nan), np.ones((3, 4)))


def test_rg_maps_iid_spins_exact_finite_sample():
    """<v_i h_a> with h_a = (1/4) sum_{j in a} v_j equals (1/4) sum_{j in a} mean_k(v_i v_j)
    exactly: (1/4)(1 + sum_{j != i in a} mean(v_i v_j)) on the own block (expectation 1/4),
    (1/4) sum_{j in a} mean(v_i v_j) elsewhere (expectation 0)."""
    rng = np.random.default_rng(3)
    n, L, b = 200, 8, 2
    s = random_spins(rng, (n, L, L))
    flat = s.reshape(n, -1).astype(np.float64)
    maps = C.rg_vh_maps(s, b).reshape((L // b) ** 2, -1)
    pair = flat.T @ flat / n  # mean_k v_i v_j, exact (integer sums / n)
    for a in range((L // b) ** 2):
        sites = block_sites(L, b, a)
        expect = pair[:, sites].sum(axis=1) / 4.0
        for i in sites:  # own block: 1 + the three off-diagonal pair means
            own = 0.25 * (1.0 + sum(pair[i, j] for j in sites if j != i))
            assert expect[i] == pytest.approx(own, abs=1e-15)
        np.testing.assert_allclose(maps[a], expect, rtol=0, atol=1e-14)
    # In expectation 1/4 on the own block and 0 elsewhere: the sample deviations are
    # O(1/sqrt(n)); with n = 200 every entry is within 5 / sqrt(n) of its expectation.
    own_mask = np.zeros_like(maps, dtype=bool)
    for a in range(own_mask.shape[0]):
        own_mask[a, block_sites(L, b, a)] = True
    tol = 5 * math.sqrt(3 / 16 / n)  # own-block variance: 3 pair means of variance 1/n, /16
    assert np.abs(maps[own_mask] - 0.25).max() < tol
    assert np.abs(maps[~own_mask]).max() < 5 * math.sqrt(4 / 16 / n)


def test_rg_maps_ordered_configurations_are_one():
    rng = np.random.default_rng(4)
    signs = np.where(rng.random(9) < 0.5, 1, -1).astype(np.int8)
    s = np.ones((9, 8, 8), dtype=np.int8) * signs[:, None, None]
    maps = C.rg_vh_maps(s, 2)
    assert maps.shape == (16, 8, 8)
    np.testing.assert_array_equal(maps, 1.0)
    maps4 = C.rg_vh_maps(s, 4)
    assert maps4.shape == (4, 8, 8)
    np.testing.assert_array_equal(maps4, 1.0)


def test_rbm_maps_are_vh_of_the_hidden_mean_and_sample():
    rbm_mod = pytest.importorskip("rgflow.core.rbm")
    from rgflow.core.rng import new_states

    rng = np.random.default_rng(5)
    s = random_spins(rng, (30, 4, 4))
    rbm = rbm_mod.RBM.create(16, 4, units="spin", dtype=np.float64, seed_or_state=1,
                             weight_scale=0.3)
    v = rbm_mod.spins_to_visible(s.reshape(30, -1), "spin", np.float64)
    np.testing.assert_allclose(C.rbm_vh_maps(rbm, s),
                               C.vh_correlator(s, rbm_mod.hidden_mean(rbm, v)), rtol=1e-12)
    st1, st2 = new_states(9), new_states(9)
    got = C.rbm_vh_maps(rbm, s, sampled=True, state=st1)
    h = rbm_mod.sample_hidden(rbm, v, st2)
    np.testing.assert_allclose(got, C.vh_correlator(s, h), rtol=1e-12)
    np.testing.assert_array_equal(st1, st2)  # same draws consumed
    with pytest.raises(UsageError):
        C.rbm_vh_maps(rbm, s, sampled=True)
    # Binary units are compared in the spin convention: v -> 2v - 1, h -> 2h - 1.
    rbm_b = rbm_mod.RBM.create(16, 4, units="binary", dtype=np.float64, seed_or_state=1)
    vb = rbm_mod.spins_to_visible(s.reshape(30, -1), "binary", np.float64)
    hb = rbm_mod.hidden_mean(rbm_b, vb)
    np.testing.assert_allclose(C.rbm_vh_maps(rbm_b, s),
                               C.vh_correlator(2 * vb - 1, 2 * hb - 1), rtol=1e-12)


# ---------------------------------------------------------------- locality


def local_maps(L, b, rng):
    """Each unit a nonzero (random magnitudes and signs) only on its own block a."""
    nb = (L // b) ** 2
    maps = np.zeros((nb, L * L))
    for a in range(nb):
        maps[a, block_sites(L, b, a)] = rng.uniform(0.1, 1.0, b * b) * rng.choice([-1, 1], b * b)
    return maps.reshape(nb, L, L)


def test_locality_perfectly_local_maps():
    rng = np.random.default_rng(6)
    L, b = 8, 2
    maps = local_maps(L, b, rng)
    loc = C.locality(maps, b)
    np.testing.assert_allclose(loc["rg_own_block_fraction"], 1.0, rtol=1e-15)
    assert np.isinf(loc["rg_peak_to_far"]).all()
    np.testing.assert_array_equal(loc["best_block"], np.arange(16))
    assert loc["best_is_rg_block"].all() and loc["best_block_unique"].all()
    np.testing.assert_allclose(loc["best_own_block_fraction"], 1.0, rtol=1e-15)
    # The radial profile lives only in the first bin (the 4 sites at distance 1/sqrt 2).
    assert loc["radial_r"][0] == pytest.approx(math.sqrt(0.5))
    np.testing.assert_allclose(loc["rg_radial_profile"][:, 0],
                               np.abs(maps).reshape(16, -1).sum(axis=1) / 4)
    assert (loc["rg_radial_profile"][:, 1:] == 0).all()

    # An RBM-like permutation of the same maps: local, but not on the RG block of its index.
    perm = rng.permutation(16)
    lp = C.locality(maps[perm], b)
    np.testing.assert_array_equal(lp["best_block"], perm)
    np.testing.assert_allclose(lp["best_own_block_fraction"], 1.0, rtol=1e-15)
    np.testing.assert_array_equal(lp["best_is_rg_block"], perm == np.arange(16))
    np.testing.assert_array_equal(lp["rg_own_block_fraction"][perm != np.arange(16)], 0.0)
    assert lp["best_block_unique"].all()

    s = C.locality_summary(maps[perm], b)
    json.dumps(s)  # JSON-able
    assert s["best_block"]["own_block_fraction"]["mean"] == pytest.approx(1.0, rel=1e-15)
    assert s["best_block"]["peak_to_far"]["n_infinite"] == 16
    assert s["best_block_unique_fraction"] == 1.0
    assert s["best_is_rg_block_fraction"] == pytest.approx(np.mean(perm == np.arange(16)))


def test_locality_signed_means_of_a_peak_on_a_background():
    """The authors' RG picture: +0.8 on the unit's own block, +0.45 far away (a halo in
    between), and a sign-flipped copy for RBM-like units whose best block is elsewhere: a
    hidden unit's sign is a symmetry, so the means are those of the map oriented to a
    positive sum."""
    L, b = 16, 2
    m = L // b
    maps = np.empty((m * m, L, L))
    for a in range(m * m):
        K, J = divmod(a, m)
        d = C.periodic_distance(L, C.block_centre(L, b, a))
        maps[a] = np.where(d >= L / 4, 0.45, 0.6)
        maps[a, K * b:K * b + b, J * b:J * b + b] = 0.8
    loc = C.locality(maps, b)
    np.testing.assert_allclose(loc["rg_own_block_mean"], 0.8, rtol=1e-12)
    np.testing.assert_allclose(loc["rg_far_mean"], 0.45, rtol=1e-12)
    flipped = C.locality(-maps[::-1], b)  # best block of unit u is block n - 1 - u
    np.testing.assert_allclose(flipped["best_own_block_mean"], 0.8, rtol=1e-12)
    np.testing.assert_allclose(flipped["best_far_mean"], 0.45, rtol=1e-12)
    np.testing.assert_array_equal(flipped["best_block"], np.arange(m * m)[::-1])
    mixed = C.locality(np.concatenate([maps[:3], -0.5 * maps[3:]]), b)  # a few halved
    np.testing.assert_allclose(mixed["rg_own_block_mean"][3:], 0.4, rtol=1e-12)


def test_locality_uniform_map():
    L, b = 8, 2
    maps = np.full((16, L, L), -0.3)
    loc = C.locality(maps, b)
    np.testing.assert_allclose(loc["rg_own_block_fraction"], b * b / (L * L), rtol=1e-14)
    np.testing.assert_allclose(loc["rg_peak_to_far"], 1.0, rtol=1e-14)
    # Every block ties: no unit has a unique best block.
    assert loc["best_block_tied"].all() and not loc["best_block_unique"].any()
    np.testing.assert_allclose(loc["rg_radial_profile"], 0.3, rtol=1e-14)


def test_peak_to_far_definition_by_hand():
    """Block 5 of an 8x8 lattice (b = 2) is rows 2-3, cols 2-3, centre (2.5, 2.5); far sites
    are those at periodic distance >= 2 from it."""
    rng = np.random.default_rng(7)
    L, b, a = 8, 2, 5
    m = rng.normal(size=(16, L, L))
    loc = C.locality(m, b)
    absm = np.abs(m[a])
    near = absm[2:4, 2:4].mean()
    far_vals = []
    for r in range(L):
        for c in range(L):
            dr = min(abs(r - 2.5), L - abs(r - 2.5))
            dc = min(abs(c - 2.5), L - abs(c - 2.5))
            if math.hypot(dr, dc) >= L / 4:
                far_vals.append(absm[r, c])
    assert loc["rg_peak_to_far"][a] == pytest.approx(near / np.mean(far_vals), rel=1e-13)
    assert loc["rg_own_block_fraction"][a] == pytest.approx(
        absm[2:4, 2:4].sum() / absm.sum(), rel=1e-13)


def test_radial_profile_by_hand():
    L = 6
    x = np.arange(L * L, dtype=float).reshape(L, L) - 10
    r, p = C.radial_profile(x, (0.0, 0.0), L)
    d = np.array([[math.hypot(min(i, L - i), min(j, L - j)) for j in range(L)]
                  for i in range(L)])
    bins = np.floor(d + 1e-9).astype(int)
    for k, (rk, pk) in enumerate(zip(r, p, strict=True)):
        sel = bins == sorted(set(bins.ravel()))[k]
        assert rk == pytest.approx(d[sel].mean())
        assert pk == pytest.approx(np.abs(x[sel]).mean())
    _, ps = C.radial_profile(x, (0.0, 0.0), L, signed=True)
    assert ps[0] == x[0, 0]


def test_locality_with_other_hidden_counts():
    """n_hidden != (L/b)^2 (e.g. 100 -> 81): only best-block numbers exist."""
    rng = np.random.default_rng(8)
    maps = rng.normal(size=(9, 8, 8))
    loc = C.locality(maps, 2)
    assert "rg_own_block_fraction" not in loc
    assert loc["best_block"].shape == (9,)
    masses = np.abs(maps).reshape(9, 4, 2, 4, 2).sum(axis=(2, 4)).reshape(9, 16)
    np.testing.assert_array_equal(loc["best_block"], masses.argmax(axis=1))
    json.dumps(C.locality_summary(maps, 2))


def test_rg_maps_at_infinite_temperature_are_local():
    """For i.i.d. spins the RG map is 1/4 on the own block plus O(n^-1/2) noise, so the own
    block fraction is about (4 * 1/4) / (1 + 60 * mean|noise|): check it against that
    noise-level prediction and that every unit's best block is its own."""
    rng = np.random.default_rng(10)
    n, L = 2000, 8
    s = random_spins(rng, (n, L, L))
    loc = C.locality(C.rg_vh_maps(s, 2), 2)
    assert loc["best_is_rg_block"].all()
    # Off-block entries: (1/4) x (sum of 4 pair means of variance 1/n) -> sd = 1/(4 sqrt(n/4)).
    sd_off = 0.25 * math.sqrt(4 / n)
    expect = 1.0 / (1.0 + 60 * sd_off * math.sqrt(2 / math.pi))
    assert abs(loc["rg_own_block_fraction"].mean() - expect) < 0.05 * expect


# ---------------------------------------------------------------- power laws


def test_power_law_exact_recovery():
    r = np.array([1.0, math.sqrt(2), 2.0, math.sqrt(5), 3.0, 4.0, 5.0])
    G = 0.7 * r**-0.25
    fit = C.fit_power_law(r, G)
    assert fit["exponent"] == pytest.approx(0.25, abs=1e-12)
    assert fit["amplitude"] == pytest.approx(0.7, rel=1e-12)
    assert fit["n_points"] == 7
    fit = C.fit_power_law(r, G, G_err=0.01 * G, r_min=1.5, r_max=4.0)
    assert fit["n_points"] == 4 and fit["exponent"] == pytest.approx(0.25, abs=1e-12)
    assert fit["chi2_dof"] == pytest.approx(0.0, abs=1e-18)


def test_power_law_noisy_recovery_within_own_error():
    rng = np.random.default_rng(11)
    r = np.arange(1, 16, dtype=float)
    true = 2.0 * r**-2.0
    err = 0.03 * true + 1e-4
    pulls = []
    for _ in range(20):
        G = true + err * rng.normal(size=r.size)
        fit = C.fit_power_law(r, G, err)
        assert abs(fit["exponent"] - 2.0) < 4 * fit["exponent_err"]
        pulls.append((fit["exponent"] - 2.0) / fit["exponent_err"])
    # The error bar is right on average: the pulls' spread is about 1 (20 draws: 0.6-1.5).
    assert 0.6 < np.std(pulls) < 1.5
    # Non-positive points are skipped; too few points give nan, not an exception.
    G = true.copy()
    G[3:] = -1.0
    fit = C.fit_power_law(r, G)
    assert fit["n_points"] == 3
    fit = C.fit_power_law(r[:1], true[:1])
    assert fit["n_points"] == 1 and math.isnan(fit["exponent"])


def test_power_law_unweighted_error_from_scatter():
    rng = np.random.default_rng(12)
    r = np.arange(1, 30, dtype=float)
    exps = []
    errs = []
    for _ in range(200):
        G = r**-0.5 * np.exp(0.05 * rng.normal(size=r.size))
        f = C.fit_power_law(r, G)
        exps.append(f["exponent"])
        errs.append(f["exponent_err"])
    # The scatter-based error matches the spread of the exponents over repetitions
    # (200 repetitions: the sample sd is within ~10% of the truth; allow 20%).
    assert np.std(exps) == pytest.approx(np.mean(errs), rel=0.2)
    assert abs(np.mean(exps) - 0.5) < 4 * np.std(exps) / math.sqrt(200)


# ---------------------------------------------------------------- scaling dimensions


def test_scaling_dimensions_plumbing_and_jackknife():
    """delta = exponent / 2 of fits to rgflow.core.observables' G(r), with errors from an explicit
    leave-one-block-out recomputation."""
    from rgflow.core import observables as obs

    rng = np.random.default_rng(13)
    # Mildly correlated configurations: i.i.d. spins smoothed by a majority of a 3-site
    # neighbourhood along rows, so G_sigma(r) > 0 at short distances.
    n, L = 60, 8
    raw = random_spins(rng, (n, L, L)).astype(np.int64)
    s = np.sign(raw + np.roll(raw, 1, 2) + np.roll(raw, -1, 2)).astype(np.int8)
    res = C.scaling_dimensions(s, r_min=1, r_max=2.5, n_blocks=6)
    r, g = obs.correlation_paper(s)
    blocks = np.array_split(np.arange(n), 6)
    jk = np.array([obs.correlation_paper(np.delete(s, blk, axis=0))[1] for blk in blocks])
    g_err = np.sqrt(5 / 6 * ((jk - jk.mean(0)) ** 2).sum(0))
    np.testing.assert_allclose(res["G_sigma"], g)
    np.testing.assert_allclose(res["G_sigma_err"], g_err, rtol=1e-12)
    fit = C.fit_power_law(r, g, g_err, r_min=1, r_max=2.5)
    assert res["delta_sigma"] == pytest.approx(fit["exponent"] / 2, rel=1e-12)
    exps = np.array([C.fit_power_law(r, gk, g_err, 1, 2.5)["exponent"] for gk in jk])
    assert res["delta_sigma_err"] == pytest.approx(
        0.5 * math.sqrt(5 / 6 * ((exps - exps.mean()) ** 2).sum()), rel=1e-12)
    re, ge = obs.energy_operator_correlation(s, convention="paper")
    np.testing.assert_allclose(res["G_epsilon"], ge)
    assert res["fit_epsilon"]["n_points"] == int(((re >= 1) & (re <= 2.5) & (ge > 0)).sum())
    with pytest.raises(UsageError):
        C.scaling_dimensions(s[:3], n_blocks=6)


def test_scaling_fit_equals_scaling_dimensions():
    rng = np.random.default_rng(3)
    # Spatially correlated +-1 configurations: 2x2 blocks share a sign, 20% of sites flipped.
    blocks = np.where(rng.random((60, 4, 4)) < 0.6, 1, -1)
    x = np.kron(blocks, np.ones((1, 2, 2), dtype=int))
    x = np.where(rng.random(x.shape) < 0.2, -x, x).astype(np.int8)
    fast = C.scaling_fit(x, n_blocks=6, r_min=1.0)
    slow = C.scaling_dimensions(x, r_min=1.0, n_blocks=6)
    for k in ("delta_sigma", "delta_sigma_err", "delta_epsilon", "delta_epsilon_err"):
        assert fast[k] == pytest.approx(slow[k], rel=1e-9, abs=1e-12), k
    for k in ("G_sigma", "G_sigma_err", "G_epsilon", "G_epsilon_err", "r_sigma"):
        np.testing.assert_allclose(fast[k], slow[k], rtol=1e-9, atol=1e-13)
