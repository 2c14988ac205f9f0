"""PCD with the chains' hidden field carried over from the last update (the default) against
recomputing it every step (`fresh_chain_field`): exact log-likelihood per sample of a small
spin RBM (8 -> 4) after training, over seeds, at the paper's learning rate and at large ones.

    python bench/pcd_chain_field.py [--seeds 16]

Data: 300 noisy copies of three 8-spin patterns (10% of spins flipped); batch 30 with 30
persistent chains. Both variants start from the same weights and random stream per seed, so
the paired difference carries much less noise than either mean.
"""

import argparse

import numpy as np

from rgflow.core.rbm import RBM, TrainConfig, Trainer
from rgflow.core.rbm_monitor import exact_log_likelihood
from rgflow.core.rng import new_states

SETTINGS = (  # optimizer, learning rate, updates
    ("adam", 1e-3, 2000),  # the paper's optimiser and rate
    ("adam", 3e-2, 300),
    ("sgd", 1e-1, 300),
    ("sgd", 3e-1, 300),
)
N_VISIBLE, N_HIDDEN, BATCH = 8, 4, 30


def _data() -> np.ndarray:
    rng = np.random.default_rng(12)
    patterns = np.array([[1] * 4 + [-1] * 4, [-1] * 4 + [1] * 4, [1, -1] * 4], np.float32)
    flips = np.where(rng.random((300, N_VISIBLE)) < 0.1, -1, 1).astype(np.float32)
    return patterns[rng.integers(0, 3, 300)] * flips


def trained_log_likelihood(data, optimizer, lr, updates, seed, fresh) -> float:
    rbm = RBM.create(N_VISIBLE, N_HIDDEN, seed_or_state=seed)
    cfg = TrainConfig(batch=BATCH, n_chains=BATCH, optimizer=optimizer, lr=lr, momentum=0.5,
                      fresh_chain_field=fresh)
    trainer = Trainer(rbm, cfg, new_states(100 + seed))
    for step in range(updates):
        i = step * BATCH % len(data)
        trainer.step(data[i:i + BATCH], reconstruction=False)
    return exact_log_likelihood(rbm, data)


def _seed_count(text: str) -> int:
    if not text.isdigit() or int(text) < 2:
        raise argparse.ArgumentTypeError(f"needs a whole number >= 2 (error bars), got {text!r}")
    return int(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=_seed_count, default=16, help="seeds (default 16)")
    seeds = range(parser.parse_args().seeds)
    data = _data()
    print(f"exact log-likelihood per sample, mean ± standard error over {len(seeds)} seeds")
    print(f"{'optimizer':<9} {'lr':>6} {'updates':>7} {'carried':>16} {'fresh':>16} "
          f"{'carried - fresh':>17}")
    for optimizer, lr, updates in SETTINGS:
        ll = np.array([[trained_log_likelihood(data, optimizer, lr, updates, s, fresh)
                        for fresh in (False, True)] for s in seeds])

        def mean_se(x):
            return f"{x.mean():.3f} ± {x.std(ddof=1) / np.sqrt(len(x)):.3f}"
        print(f"{optimizer:<9} {lr:>6g} {updates:>7} {mean_se(ll[:, 0]):>16} "
              f"{mean_se(ll[:, 1]):>16} {mean_se(ll[:, 0] - ll[:, 1]):>17}")


if __name__ == "__main__":
    main()
