"""PCD with the chains' hidden field carried over from the last update (the default) against
recomputing it every step (`fresh_chain_field`): exact log-likelihood per sample of a small
spin RBM (8 -> 4) after training, over seeds, at the paper's learning rate and at large ones.

    rgflow bench chain-field [--repeats SEEDS] [--json] [--quick]

(--repeats is the number of seeds, default 16; --quick uses 4.)

Data: 300 noisy copies of three 8-spin patterns (10% of spins flipped); batch 30 with 30
persistent chains. Both variants start from the same weights and random stream per seed, so
the paired difference carries much less noise than either mean.
"""

import numpy as np

from ..rbm import RBM, TrainConfig, Trainer
from ..rbm_monitor import exact_log_likelihood
from ..rng import new_states
from . import print_results

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


DEFAULT_SEEDS, QUICK_SEEDS = 16, 4


def measure(seeds: int) -> list[dict]:
    """One row per setting: mean and standard error over seeds of the exact log-likelihood
    per sample, carried and fresh, and of their paired difference."""
    from ..errors import UsageError

    if seeds < 2:
        raise UsageError(f"chain-field needs at least 2 seeds (error bars), got {seeds}")
    data = _data()
    rows = []
    for optimizer, lr, updates in SETTINGS:
        ll = np.array([[trained_log_likelihood(data, optimizer, lr, updates, s, fresh)
                        for fresh in (False, True)] for s in range(seeds)])
        row = {"case": f"{optimizer}-lr{lr:g}", "optimizer": optimizer, "lr": lr,
               "updates": updates, "seeds": seeds}
        for name, x in (("carried", ll[:, 0]), ("fresh", ll[:, 1]),
                        ("carried_minus_fresh", ll[:, 0] - ll[:, 1])):
            row[name] = round(float(x.mean()), 5)
            row[f"{name}_se"] = round(float(x.std(ddof=1) / np.sqrt(seeds)), 5)
        rows.append(row)
    return rows


def format_table(rows: list[dict]) -> str:
    def mean_se(r, name):
        return f"{r[name]:.3f} ± {r[name + '_se']:.3f}"

    seeds = rows[0]["seeds"] if rows else 0
    lines = [f"exact log-likelihood per sample, mean ± standard error over {seeds} seeds",
             f"{'optimizer':<9} {'lr':>6} {'updates':>7} {'carried':>16} {'fresh':>16} "
             f"{'carried - fresh':>17}"]
    for r in rows:
        lines.append(f"{r['optimizer']:<9} {r['lr']:>6g} {r['updates']:>7} "
                     f"{mean_se(r, 'carried'):>16} {mean_se(r, 'fresh'):>16} "
                     f"{mean_se(r, 'carried_minus_fresh'):>17}")
    return "\n".join(lines) + "\n"


def run(json_output: bool, quick: bool = False, repeats: int | None = None) -> list[dict]:
    """`rgflow bench chain-field`: repeats is the number of seeds."""
    seeds = repeats if repeats is not None else (QUICK_SEEDS if quick else DEFAULT_SEEDS)
    return print_results(measure(seeds), json_output, format_table)
