"""Connected <v h> maps of core.live_analysis.correlators against covariances computed
directly, and on hand-made data whose answer is known."""

import numpy as np

from rgflow.core.config import SessionConfig
from rgflow.core.live_analysis import correlators
from rgflow.core.rbm import hidden_mean, spins_to_visible
from rgflow.core.session import Session


def _session_data():
    s = Session(SessionConfig(L=8, batch=10, chains=10, dataset_capacity=200,
                              sample_spacing=1, seed=1))
    s.run_steps(150)
    return s.training_data(), s.trainer.rbm


def test_connected_maps_are_covariances():
    data, rbm = _session_data()
    c = correlators(data, rbm, 2)
    n, L = len(data), data.shape[-1]
    v = data.reshape(n, -1).astype(np.float64)
    blocks = data.reshape(n, L // 2, 2, L // 2, 2).astype(np.float64).mean(axis=(2, 4))
    h_rg = blocks.reshape(n, -1)
    h_rbm = np.asarray(hidden_mean(rbm, spins_to_visible(data.reshape(n, -1), rbm.units,
                                                         rbm.dtype)), dtype=np.float64)
    for maps, h in ((c["rg_c"], h_rg), (c["rbm_c"], h_rbm)):
        for a in (0, 5, h.shape[1] - 1):
            cov = np.array([np.cov(v[:, i], h[:, a], ddof=0)[0, 1] for i in range(L * L)])
            np.testing.assert_allclose(maps[a].ravel(), cov, atol=1e-6)
    assert c["c_rg_own"].shape == c["rg_own"].shape  # locality numbers for both kinds


def test_a_fully_ordered_dataset_has_no_connected_correlation():
    _, rbm = _session_data()
    data = np.ones((20, 8, 8), dtype=np.int8)
    data[10:] = -1  # half all-up, half all-down: <v h> is m^2-like everywhere
    c = correlators(data, rbm, 2)
    np.testing.assert_allclose(c["rg"], 1.0)  # every site correlates with every block
    np.testing.assert_allclose(c["rg_c"], 1.0)  # <v> = 0 here, so nothing to subtract
    same = np.ones((20, 8, 8), dtype=np.int8)  # all up: <v h> = <v><h>, connected = 0
    c = correlators(same, rbm, 2)
    np.testing.assert_allclose(c["rg"], 1.0)
    np.testing.assert_allclose(c["rg_c"], 0.0, atol=1e-12)
    np.testing.assert_allclose(c["rbm_c"], 0.0, atol=1e-6)
