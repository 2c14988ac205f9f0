"""RG block-spin rules, hierarchies, index maps and the `rgflow rg` command."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from rgflow.core import rg
from rgflow.core.errors import UsageError
from rgflow.core.npzio import atomic_write_npz, read_npz
from rgflow.core.rng import PyXoshiro, new_states

# ---------------------------------------------------------------- references


def random_spins(rng, shape):
    return (rng.integers(0, 2, size=shape, dtype=np.int8) * 2 - 1).astype(np.int8)


def ref_block_sums(x, b):
    """Explicit loops: float64 block sums in row-major order inside each block."""
    n, L, _ = x.shape
    m = L // b
    out = np.zeros((n, m, m), dtype=np.float64)
    for i in range(n):
        for k in range(m):
            for j in range(m):
                acc = 0.0
                for dr in range(b):
                    for dc in range(b):
                        acc += float(x[i, k * b + dr, j * b + dc])
                out[i, k, j] = acc
    return out


def reshape_block_sums(x, b):
    n, L, _ = x.shape
    m = L // b
    return x.reshape(n, m, b, m, b).sum(axis=(2, 4), dtype=np.float64)


def ref_majority(x, b, state):
    """The documented tie-break: one next_u64 per tied block, row-major over (n, K, J);
    +1 iff bit 63 is set. Returns (result, final state)."""
    gen = PyXoshiro(state)
    sums = reshape_block_sums(x, b)
    out = np.zeros(sums.shape, dtype=np.int8)
    for idx in np.ndindex(*sums.shape):
        s = sums[idx]
        if s > 0:
            out[idx] = 1
        elif s < 0:
            out[idx] = -1
        else:
            out[idx] = 1 if gen.next_u64() >> 63 else -1
    return out, gen.state()


def ref_decimation(x, b):
    n, L, _ = x.shape
    m = L // b
    out = np.zeros((n, m, m), dtype=x.dtype)
    for i in range(n):
        for k in range(m):
            for j in range(m):
                out[i, k, j] = x[i, k * b, j * b]
    return out


CASES = [(2, 4), (2, 8), (2, 10), (3, 6), (3, 9), (4, 8), (4, 12)]


# ---------------------------------------------------------------- block average


@pytest.mark.parametrize(("b", "L"), CASES)
def test_block_average_matches_loops_and_reshape(b, L):
    rng = np.random.default_rng(100 * b + L)
    x = random_spins(rng, (5, L, L))
    got = rg.block_average(x, b)
    assert got.dtype == np.float32 and got.shape == (5, L // b, L // b)
    want = (ref_block_sums(x, b) / (b * b)).astype(np.float32)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got, (reshape_block_sums(x, b) / (b * b)).astype(np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("b", "L"), [(2, 8), (3, 9), (4, 8)])
def test_block_average_float_input(dtype, b, L):
    rng = np.random.default_rng(7 * b + L)
    x = rng.normal(size=(4, L, L)).astype(dtype)
    got = rg.block_average(x, b)
    # same float64 summation order as the loop reference: bit-exact
    np.testing.assert_array_equal(got, (ref_block_sums(x, b) / (b * b)).astype(np.float32))
    np.testing.assert_allclose(got, reshape_block_sums(x, b) / (b * b), rtol=1e-6, atol=1e-6)


def test_block_average_other_int_dtypes_and_single_lattice():
    rng = np.random.default_rng(3)
    x = random_spins(rng, (8, 8))
    want = rg.block_average(x[None], 2)[0]
    for dtype in (np.int16, np.int32, np.int64, np.float64):
        got = rg.block_average(x.astype(dtype), 2)
        assert got.shape == (4, 4)
        np.testing.assert_array_equal(got, want)


def test_block_average_b2_value_set():
    rng = np.random.default_rng(4)
    got = rg.block_average(random_spins(rng, (50, 16, 16)), 2)
    assert set(np.unique(got).tolist()) == {-1.0, -0.5, 0.0, 0.5, 1.0}


def test_block_average_fortran_and_strided_input():
    rng = np.random.default_rng(5)
    x = random_spins(rng, (6, 8, 8))
    want = rg.block_average(x, 2)
    np.testing.assert_array_equal(rg.block_average(np.asfortranarray(x), 2), want)
    big = random_spins(rng, (12, 8, 8))
    np.testing.assert_array_equal(rg.block_average(big[::2], 2), rg.block_average(big[::2].copy()))


def test_block_average_rejects_bad_input():
    with pytest.raises(UsageError, match="b must be >= 2"):
        rg.block_average(np.ones((4, 4), np.int8), 1)
    with pytest.raises(UsageError, match="3 does not divide 8"):
        rg.block_average(np.ones((8, 8), np.int8), 3)
    with pytest.raises(UsageError, match="square"):
        rg.block_average(np.ones((4, 6), np.int8), 2)
    with pytest.raises(UsageError, match="shape"):
        rg.block_average(np.ones(4, np.int8), 2)
    with pytest.raises(UsageError, match="dtype"):
        rg.block_average(np.ones((4, 4), bool), 2)
    with pytest.raises(UsageError, match="NaN"):
        rg.block_average(np.full((4, 4), np.nan), 2)


# ---------------------------------------------------------------- majority rule


@pytest.mark.parametrize(("b", "L"), CASES)
def test_majority_bit_exact_with_reference(b, L):
    rng = np.random.default_rng(200 + 10 * b + L)
    x = random_spins(rng, (7, L, L))
    state = new_states(b * 1000 + L, name="rg")
    want, want_state = ref_majority(x, b, state.copy())
    got = rg.majority_rule(x, b, state)
    assert got.dtype == np.int8
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(state, want_state)
    if b % 2 == 1:  # odd blocks never tie: no random number drawn
        np.testing.assert_array_equal(state, new_states(b * 1000 + L, name="rg"))


def test_majority_odd_b_needs_no_state_and_leaves_state_alone():
    rng = np.random.default_rng(8)
    x = random_spins(rng, (5, 9, 9))
    state = new_states(1)
    before = state.copy()
    np.testing.assert_array_equal(rg.majority_rule(x, 3, state), rg.majority_rule(x, 3))
    np.testing.assert_array_equal(state, before)
    np.testing.assert_array_equal(rg.majority_rule(x, 3), np.sign(reshape_block_sums(x, 3)))


def test_majority_even_b_without_state_is_refused():
    with pytest.raises(UsageError, match="RNG state"):
        rg.majority_rule(np.ones((4, 4), np.int8), 2)
    with pytest.raises(UsageError, match="RNG state"):
        rg.majority_rule(np.ones((4, 4), np.int8), 2, np.zeros(4, np.int64))


def test_majority_rejects_non_spins():
    x = np.ones((4, 4), np.int8)
    x[1, 2] = 0
    with pytest.raises(UsageError, match=r"\+1/-1"):
        rg.majority_rule(x, 2, new_states(1))
    with pytest.raises(UsageError, match=r"\+1/-1"):
        rg.majority_rule(np.full((4, 4), 0.5), 2, new_states(1))


def test_majority_batch_shapes_and_pieces_share_one_stream():
    rng = np.random.default_rng(9)
    x = random_spins(rng, (2, 3, 8, 8))
    s_all, s_piece = new_states(5), new_states(5)
    whole = rg.majority_rule(x, 2, s_all)
    assert whole.shape == (2, 3, 4, 4)
    flat = x.reshape(6, 8, 8)
    pieces = np.concatenate([rg.majority_rule(flat[i : i + 1], 2, s_piece) for i in range(6)])
    np.testing.assert_array_equal(whole.reshape(6, 4, 4), pieces)
    np.testing.assert_array_equal(s_all, s_piece)
    assert rg.majority_rule(x[0, 0], 2, new_states(5)).shape == (4, 4)


def test_majority_ties_are_fair_coin_flips():
    # every 2x2 block of this pattern sums to 0: N ties, each +1 with probability 1/2
    block = np.array([[1, -1], [1, -1]], dtype=np.int8)
    x = np.ascontiguousarray(np.tile(block, (400, 16, 16)))  # (400, 32, 32)
    got = rg.majority_rule(x, 2, new_states(2024, name="rg"))
    n = got.size
    ups = int((got == 1).sum())
    assert ups + int((got == -1).sum()) == n
    sigma = math.sqrt(n * 0.25)
    assert abs(ups - n / 2) < 5 * sigma, (ups, n)
    # neighbouring tie-breaks uncorrelated: products of consecutive draws average to 0
    flat = got.reshape(-1).astype(np.int64)
    corr = float((flat[1:] * flat[:-1]).sum())
    assert abs(corr) < 5 * math.sqrt(n - 1), corr


def test_majority_tie_rate_on_random_spins():
    # P(2x2 block sum = 0) = C(4,2)/16 = 3/8; the draws consumed must equal the ties
    rng = np.random.default_rng(11)
    x = random_spins(rng, (200, 16, 16))
    state = new_states(3)
    ref = PyXoshiro(state.copy())
    ties = int((reshape_block_sums(x, 2) == 0).sum())
    rg.majority_rule(x, 2, state)
    for _ in range(ties):
        ref.next_u64()
    np.testing.assert_array_equal(state, ref.state())
    n = 200 * 8 * 8
    assert abs(ties - n * 3 / 8) < 5 * math.sqrt(n * 3 / 8 * 5 / 8)


# ---------------------------------------------------------------- decimation


@pytest.mark.parametrize(("b", "L"), CASES)
def test_decimation_keeps_top_left(b, L):
    rng = np.random.default_rng(300 + 10 * b + L)
    x = random_spins(rng, (4, L, L))
    got = rg.decimation(x, b)
    assert got.dtype == np.int8 and got.flags.c_contiguous
    np.testing.assert_array_equal(got, ref_decimation(x, b))
    f = x.astype(np.float32) * 0.5
    assert rg.decimation(f, b).dtype == np.float32


def test_apply_rule_decimation_needs_spins():
    with pytest.raises(UsageError, match=r"\+1/-1"):
        rg.apply_rule("decimation", np.full((4, 4), 0.5, np.float32), 2)
    out = rg.apply_rule("decimation", np.ones((4, 4), np.float64), 2)
    assert out.dtype == np.int8


def test_apply_rule_dispatch_and_unknown_rule():
    rng = np.random.default_rng(12)
    x = random_spins(rng, (3, 8, 8))
    np.testing.assert_array_equal(rg.apply_rule("average", x, 2), rg.block_average(x, 2))
    np.testing.assert_array_equal(
        rg.apply_rule("majority", x, 2, new_states(1)), rg.majority_rule(x, 2, new_states(1))
    )
    np.testing.assert_array_equal(rg.apply_rule("decimation", x, 2), rg.decimation(x, 2))
    with pytest.raises(UsageError, match="average, majority, decimation"):
        rg.apply_rule("median", x, 2)
    assert rg.RULES == ("average", "majority", "decimation")


# ---------------------------------------------------------------- hierarchies


def test_average_hierarchy_64_to_8():
    rng = np.random.default_rng(13)
    x = random_spins(rng, (3, 64, 64))
    levels = rg.hierarchy(x, "average", 2, 3)
    assert [lv.shape for lv in levels] == [(3, 32, 32), (3, 16, 16), (3, 8, 8)]
    assert all(lv.dtype == np.float32 for lv in levels)
    for k, lv in enumerate(levels, start=1):
        # averages of averages of +-1 are dyadic: exactly the mean over the 2^k block
        direct = (reshape_block_sums(x, 2**k) / 4**k).astype(np.float32)
        np.testing.assert_array_equal(lv, direct)
    # iterating by hand gives the same arrays
    np.testing.assert_array_equal(levels[2], rg.block_average(rg.block_average(levels[0])))


@pytest.mark.parametrize("rule", ["majority", "decimation"])
def test_spin_hierarchies_match_references(rule):
    rng = np.random.default_rng(14)
    x = random_spins(rng, (4, 32, 32))
    state = new_states(77, name="rg")
    ref_state = state.copy()
    levels = rg.hierarchy(x, rule, 2, 3, state)
    prev = x
    for lv in levels:
        if rule == "majority":
            want, ref_state = ref_majority(prev, 2, ref_state)
        else:
            want = ref_decimation(prev, 2)
        assert lv.dtype == np.int8
        np.testing.assert_array_equal(lv, want)
        prev = want
    np.testing.assert_array_equal(state, ref_state)
    assert [lv.shape[-1] for lv in levels] == [16, 8, 4]


def test_hierarchy_validation_messages():
    x = np.ones((2, 64, 64), np.int8)
    with pytest.raises(UsageError, match="L=64 with b=2 supports at most 6 levels"):
        rg.hierarchy(x, "average", 2, 7)
    assert len(rg.hierarchy(x, "average", 2, 6)) == 6
    with pytest.raises(UsageError, match=r"L=24 with b=2 supports at most 3 levels \(24 -> 12"):
        rg.hierarchy(np.ones((24, 24), np.int8), "decimation", 2, 4)
    with pytest.raises(UsageError, match="levels must be >= 1"):
        rg.hierarchy(x, "average", 2, 0)
    with pytest.raises(UsageError, match="b must be >= 2"):
        rg.hierarchy(x, "average", 1, 1)
    with pytest.raises(UsageError, match="unknown RG rule"):
        rg.hierarchy(x, "mean", 2, 1)
    with pytest.raises(UsageError, match="RNG state"):
        rg.hierarchy(x, "majority", 2, 1)
    with pytest.raises(UsageError, match=r"\+1/-1"):
        rg.hierarchy(x * 0, "decimation", 2, 1)
    assert rg.level_sizes(64, 2, 3) == [64, 32, 16, 8]
    assert rg.level_sizes(27, 3, 3) == [27, 9, 3, 1]
    assert rg.max_levels(48, 2) == 4


# ---------------------------------------------------------------- index maps


@pytest.mark.parametrize(("b", "L"), CASES)
def test_block_index_maps_match_reshape_convention(b, L):
    m = L // b
    sites = np.arange(L * L).reshape(L, L)
    # row a of this matrix = visible indices of block a = (K, J) row-major
    blocks = sites.reshape(m, b, m, b).transpose(0, 2, 1, 3).reshape(m * m, b * b)
    owner = rg.block_of_site(L, b)
    assert owner.shape == (L * L,)
    for a in range(m * m):
        np.testing.assert_array_equal(rg.block_sites(L, b, a), blocks[a])
        assert (owner[blocks[a]] == a).all()
    assert np.bincount(owner).tolist() == [b * b] * (m * m)


def test_block_of_site_agrees_with_block_average():
    L, b = 12, 3
    eye = np.eye(L * L, dtype=np.float64).reshape(L * L, L, L)  # one-hot per visible index
    avg = rg.block_average(eye, b).reshape(L * L, -1)
    np.testing.assert_array_equal(avg.argmax(axis=1), rg.block_of_site(L, b))


def test_block_sites_range_check():
    with pytest.raises(UsageError, match="out of range"):
        rg.block_sites(8, 2, 16)
    with pytest.raises(UsageError, match="does not divide"):
        rg.block_of_site(10, 4)


# ---------------------------------------------------------------- CLI


@pytest.fixture
def cli(monkeypatch):
    """rgflow.tui.__main__.main restricted to `rg`, so this file does not depend on the other
    sub-commands' modules."""
    import rgflow.tui.__main__ as entry

    monkeypatch.setattr(entry, "COMMANDS", {"rg": "rgflow.tui.cli.rg"})
    return entry.main


def write_dataset(path, spins, temps=None, meta=None):
    arrays = {"spins": spins}
    if temps is not None:
        arrays["temperatures"] = temps
    atomic_write_npz(path, arrays, meta if meta is not None else {"kind": "test"})
    return path


@pytest.fixture
def dataset(tmp_path):
    rng = np.random.default_rng(21)
    spins = random_spins(rng, (3, 5, 16, 16))
    temps = np.array([1.5, 2.269, 3.5])
    return write_dataset(tmp_path / "data.npz", spins, temps, {"sampler": "test"}), spins, temps


def one_error_line(capsys):
    err = capsys.readouterr().err
    assert err.startswith("rgflow rg: error:"), err
    assert err.count("\n") == 1, err
    return err


def test_cli_average_end_to_end(cli, dataset, tmp_path, capsys):
    path, spins, temps = dataset
    out = tmp_path / "rg.npz"
    argv = ["rg", "--data", str(path), "--rule", "average", "--b", "2", "--levels", "3"]
    assert cli([*argv, "--out", str(out)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["out"] == str(out) and summary["rule"] == "average"
    assert summary["shapes"]["level3"] == [3, 5, 2, 2]
    arrays, meta = read_npz(out)
    assert sorted(arrays) == ["level1", "level2", "level3", "temperatures"]
    np.testing.assert_array_equal(arrays["temperatures"], temps)
    for t in range(3):
        want = rg.hierarchy(spins[t], "average", 2, 3)
        for k in range(3):
            np.testing.assert_array_equal(arrays[f"level{k + 1}"][t], want[k])
    assert arrays["level1"].dtype == np.float32
    assert meta["rule"] == "average" and meta["b"] == 2 and meta["levels"] == 3
    assert meta["sizes"] == [16, 8, 4, 2] and meta["seed"] is None
    import hashlib

    assert meta["source"]["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["source"]["path"] == str(path.resolve())
    assert meta["source"]["meta"] == {"sampler": "test"}
    assert set(meta["versions"]) == {"rgflow", "numpy", "numba"}


def test_cli_majority_is_seeded_and_reproducible(cli, dataset, tmp_path, capsys):
    path, spins, _ = dataset
    out = tmp_path / "maj.npz"
    argv = ["rg", "--data", str(path), "--rule", "majority", "--levels", "2", "--out", str(out)]
    assert cli([*argv, "--seed", "42"]) == 0
    arrays, meta = read_npz(out)
    assert meta["seed"] == 42 and meta["rng_stream"] == "rg"
    state = new_states(42, name="rg")
    for t in range(3):
        want = rg.hierarchy(spins[t], "majority", 2, 2, state)
        np.testing.assert_array_equal(arrays["level1"][t], want[0])
        np.testing.assert_array_equal(arrays["level2"][t], want[1])
    # no --seed: a seed is drawn, recorded, and reproduces the run
    capsys.readouterr()
    assert cli([*argv, "--force"]) == 0
    drawn = json.loads(capsys.readouterr().out)["seed"]
    first, meta2 = read_npz(out)
    assert meta2["seed"] == drawn
    assert cli([*argv, "--force", "--seed", str(drawn)]) == 0
    again, _ = read_npz(out)
    np.testing.assert_array_equal(first["level2"], again["level2"])


def test_cli_decimation_and_3d_input(cli, tmp_path, capsys):
    rng = np.random.default_rng(22)
    spins = random_spins(rng, (4, 9, 9))
    path = write_dataset(tmp_path / "d3.npz", spins)
    out = tmp_path / "dec.npz"
    argv = ["rg", "--data", str(path), "--rule", "decimation", "--b", "3", "--out", str(out)]
    assert cli(argv) == 0
    arrays, meta = read_npz(out)
    assert sorted(arrays) == ["level1"]
    assert arrays["level1"].shape == (1, 4, 3, 3) and arrays["level1"].dtype == np.int8
    np.testing.assert_array_equal(arrays["level1"][0], ref_decimation(spins, 3))
    assert meta["input_shape"] == [4, 9, 9]


def test_cli_refuses_existing_output(cli, dataset, tmp_path, capsys):
    path, _, _ = dataset
    out = tmp_path / "exists.npz"
    out.write_bytes(b"precious")
    assert cli(["rg", "--data", str(path), "--out", str(out)]) == 2
    assert "already exists" in one_error_line(capsys)
    assert out.read_bytes() == b"precious"


def test_cli_refuses_input_as_output(cli, dataset, capsys):
    path, _, _ = dataset
    before = path.read_bytes()
    assert cli(["rg", "--data", str(path), "--out", str(path), "--force"]) == 2
    one_error_line(capsys)
    assert path.read_bytes() == before


def _bad_files(tmp_path):
    good = random_spins(np.random.default_rng(0), (2, 3, 8, 8))
    notnpz = tmp_path / "text.npz"
    notnpz.write_text("not a zip file\n")
    nospins = tmp_path / "nospins.npz"
    atomic_write_npz(nospins, {"other": np.zeros(3)})
    zero = good.copy()
    zero[1, 2, 3, 4] = 0
    return {
        "missing": (tmp_path / "missing.npz", "no such file"),
        # np.load treats any non-zip file as a pickle; rgflow.core.npzio words that case itself
        "not npz": (notnpz, "text.npz: "),
        "no spins": (nospins, "missing member"),
        "zero value": (write_dataset(tmp_path / "zero.npz", zero), "other than"),
        "float values": (
            write_dataset(tmp_path / "half.npz", good * np.float32(0.5)),
            "other than",
        ),
        "string dtype": (
            write_dataset(tmp_path / "str.npz", np.full((2, 3, 8, 8), "a")),
            "dtype",
        ),
        "bool dtype": (write_dataset(tmp_path / "bool.npz", good > 0), "dtype"),
        "2-d": (write_dataset(tmp_path / "flat.npz", good[0, 0]), "shape"),
        "non-square": (write_dataset(tmp_path / "rect.npz", good[..., :4]), "square"),
        "temperatures mismatch": (
            write_dataset(tmp_path / "temps.npz", good, np.array([1.0, 2.0, 3.0])),
            "temperature",
        ),
    }


def test_cli_bad_files_one_line_exit_2(cli, tmp_path, capsys):
    out = tmp_path / "out.npz"
    for name, (path, fragment) in _bad_files(tmp_path).items():
        assert cli(["rg", "--data", str(path), "--out", str(out)]) == 2, name
        err = one_error_line(capsys)
        assert fragment in err, (name, err)
        assert not out.exists(), name


def test_cli_float_spins_of_exactly_pm1_accepted(cli, tmp_path, capsys):
    good = random_spins(np.random.default_rng(1), (1, 2, 8, 8))
    path = write_dataset(tmp_path / "f.npz", good.astype(np.float64))
    out = tmp_path / "o.npz"
    assert cli(["rg", "--data", str(path), "--rule", "decimation", "--out", str(out)]) == 0
    np.testing.assert_array_equal(read_npz(out)[0]["level1"], good[..., ::2, ::2])


def test_cli_b_not_dividing_l(cli, dataset, tmp_path, capsys):
    path, _, _ = dataset  # L = 16
    out = tmp_path / "o.npz"
    assert cli(["rg", "--data", str(path), "--b", "3", "--out", str(out)]) == 2
    assert "3 does not divide 16" in one_error_line(capsys)
    assert cli(["rg", "--data", str(path), "--levels", "5", "--out", str(out)]) == 2
    assert "L=16 with b=2 supports at most 4 levels" in one_error_line(capsys)
    assert cli(["rg", "--data", str(path), "--b", "1", "--out", str(out)]) == 2
    assert "--b must be >= 2" in one_error_line(capsys)
    assert not out.exists()


def test_cli_bad_rule_is_an_argument_error(cli, dataset, tmp_path, capsys):
    path, _, _ = dataset
    code = cli(["rg", "--data", str(path), "--rule", "median", "--out", str(tmp_path / "o.npz")])
    assert code == 2
    assert capsys.readouterr().err.count("\n") == 1
    assert not (tmp_path / "o.npz").exists()


def test_cli_module_is_light_and_offers_the_rules():
    from rgflow.tui.__main__ import build_parser

    sub = next(a for a in build_parser()._actions if a.dest == "command")
    rule = next(a for a in sub.choices["rg"]._actions if a.dest == "rule")
    assert tuple(rule.choices) == rg.RULES
    code = (
        "import sys, rgflow.tui.cli.rg; "
        "bad = [m for m in ('numpy', 'numba', 'rich', 'textual', 'rgflow.core.rg') "
        "if m in sys.modules]; "
        "print(','.join(bad))"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == ""


def test_cli_progress_bar_path(cli, dataset, tmp_path, capsys, monkeypatch):
    import rgflow.tui.cli.rg as cli_rg

    monkeypatch.setattr(cli_rg, "PROGRESS_MIN_SPINS", 0)
    path, spins, _ = dataset
    out = tmp_path / "p.npz"
    assert cli(["rg", "--data", str(path), "--levels", "2", "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["shapes"]["level2"] == [3, 5, 4, 4]
    np.testing.assert_array_equal(
        read_npz(out)[0]["level2"][2], rg.hierarchy(spins[2], "average", 2, 2)[1]
    )


def test_parallel_kernels_independent_of_thread_count():
    import numba

    rng = np.random.default_rng(23)
    x = random_spins(rng, (9, 16, 16))
    results = []
    old = numba.get_num_threads()
    try:
        for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
            numba.set_num_threads(threads)
            results.append((rg.block_average(x, 2), rg.majority_rule(x, 2, new_states(4))))
    finally:
        numba.set_num_threads(old)
    for avg, maj in results[1:]:
        np.testing.assert_array_equal(avg, results[0][0])
        np.testing.assert_array_equal(maj, results[0][1])
