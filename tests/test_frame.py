"""core/frame.py: the first frame of a new session, taken without numba, is the lattice
the session starts from, bit for bit."""

import subprocess
import sys

import numpy as np
import pytest

import rgflow.core.frame as frame_module
from rgflow.core.config import SessionConfig
from rgflow.core.frame import HISTORIES, initial_frame, initial_spins
from rgflow.core.ising import random_spins
from rgflow.core.rng import new_states
from rgflow.core.session import Session


@pytest.mark.parametrize("L", [4, 6, 8, 10, 14, 16, 32, 34, 130])
@pytest.mark.parametrize("seed", [0, 7, 123456789])
def test_initial_spins_are_random_spins_and_advance_the_state_alike(L, seed):
    # L = 6, 10, 14, 34, 130: the last draw is used only in part
    ours, kernels = new_states(seed), new_states(seed)
    np.testing.assert_array_equal(initial_spins(L, ours), random_spins(L, kernels))
    np.testing.assert_array_equal(ours, kernels)


def test_initial_spins_follow_the_bit_order_site_i_is_bit_i_mod_64():
    # a hand-made state whose first output is known: compute it with the reference
    from rgflow.core.streams import PyXoshiro

    state = new_states(3)
    first = PyXoshiro(state.copy()).next_u64()
    spins = initial_spins(8, state).reshape(-1)  # 64 sites: exactly one draw
    expected = [1 if (first >> i) & 1 else -1 for i in range(64)]
    assert spins.tolist() == expected


@pytest.mark.parametrize("changes", [{}, {"L": 12, "seed": 5, "T": 3.1, "algorithm": "wolff",
                                        "rg_rule": "average", "train": False}])
def test_initial_frame_is_the_new_sessions_state(changes):
    config = SessionConfig(**{"L": 16, "seed": 2, **changes})
    preview = initial_frame(config)
    session_frame = Session(config).frame()
    assert preview.preview and not session_frame.preview
    np.testing.assert_array_equal(preview.spins, session_frame.spins)
    assert not preview.spins.flags.writeable
    for name in ("step", "sweeps", "L", "T", "h", "algorithm", "training", "train_step",
                 "rg_rule", "dataset_count", "sample_spacing", "unsaved", "save_name"):
        assert getattr(preview, name) == getattr(session_frame, name), name
    assert preview.rg_levels == () and preview.rbm == {}
    assert set(preview.histories) == set(HISTORIES)
    assert all(len(h) == 0 for h in preview.histories.values())


def test_no_preview_above_the_size_drawn_without_numba(monkeypatch):
    monkeypatch.setattr(frame_module, "PREVIEW_MAX_L", 16)
    assert initial_frame(SessionConfig(L=16)) is not None
    assert initial_frame(SessionConfig(L=18)) is None


def test_the_preview_never_loads_numba():
    code = ("import sys\n"
            "from rgflow.core.config import SessionConfig\n"
            "from rgflow.core.frame import initial_frame\n"
            "initial_frame(SessionConfig(L=64))\n"
            "print('numba' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


@pytest.fixture
def saved(tmp_path):
    session = Session(SessionConfig(L=8, batch=10, chains=10, dataset_capacity=50,
                                    sample_spacing=2, flow_chains=4, seed=3))
    session.set_temperature(2.7)
    session.run_steps(25)
    session.flow_step()
    path = tmp_path / "s.npz"
    session.save(path)
    return path


def test_saved_frame_is_the_opened_sessions_frame(saved):
    from rgflow.core.frame import saved_frame
    from rgflow.core.persist import read_save, validate_session_state

    arrays, meta = read_save(saved)
    state = validate_session_state(arrays, meta, saved, HISTORIES)
    preview = saved_frame(state, arrays["spins"], "s")
    session = Session.from_state(arrays, meta, saved)
    session.save_name = "s"
    frame = session.frame()
    assert preview.preview and preview.step == 25 and preview.T == 2.7
    np.testing.assert_array_equal(preview.spins, frame.spins)
    for name in ("step", "sweeps", "L", "T", "h", "algorithm", "training", "train_step",
                 "rg_rule", "dataset_count", "flow_step", "save_name", "unsaved"):
        assert getattr(preview, name) == getattr(frame, name), name
    assert preview.tau_int_sweeps == frame.tau_int_sweeps or (
        np.isnan(preview.tau_int_sweeps) and np.isnan(frame.tau_int_sweeps))
    for name in HISTORIES:
        np.testing.assert_array_equal(preview.histories[name], frame.histories[name])


def test_a_malformed_training_count_is_left_to_the_sessions_restore(saved):
    from rgflow.core.frame import saved_frame
    from rgflow.core.persist import read_save, validate_session_state

    arrays, meta = read_save(saved)
    arrays["rbm_steps_done"] = np.array([1, 2])
    state = validate_session_state(arrays, meta, saved, HISTORIES)
    assert saved_frame(state, arrays["spins"], "s").train_step == 0
