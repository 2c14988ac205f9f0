"""`rgflow bench rbm`: RBM training throughput (training samples per second).

PCD-1 and CD-1 at 1024 -> 256, batch 100, float32, with BLAS pinned to one thread and to all
cores, next to a plain numpy PCD-1 step (np.tanh, Generator.random, two gradient GEMMs, Adam
in numpy) measured in the same run; `pcd1-recon` adds the per-step reconstruction error
(one more GEMM); `pcd1-fresh` recomputes the chains' hidden field every step
(TrainConfig.fresh_chain_field: one more GEMM); `gemm-only` runs just the four GEMMs of a
PCD-1 step on the same shapes (the BLAS ceiling: what PCD-1 would reach if sampling and the
update were free); `local-r2` is PCD-1 of the locally connected RBM with receptive field
R = 2 (rgflow.core.rbm_local: 36 of 1024 weights per hidden unit), and `x pcd1` its speed
relative to the global PCD-1 in the same repeats. With scikit-learn installed,
`sklearn` is its BernoulliRBM (PCD-1, binary units, SGD) on the same sizes and dtype, one
minibatch step at a time as its `fit` runs them (BernoulliRBM._fit; where a scikit-learn
lacks it, one `fit` pass per repeat, which adds its weight initialisation, about half a
step). Compilation and warm-up steps are excluded; the cases take turns within each repeat
and each number is the median over repeats, with the slowest and fastest repeat and the
rate per second of this process's CPU time (a check on load from other processes).
Data: synthetic ±1 configurations, half random, half nearly ordered (all up or all down
with 10% flipped), so no Monte Carlo is needed.
"""

import importlib.util
import sys
import time

import numpy as np

from . import print_results

N_VISIBLE, N_HIDDEN, BATCH = 1024, 256, 100
CASES = ("pcd1", "cd1", "pcd1-recon", "pcd1-fresh", "local-r2", "numpy-reference",
         "gemm-only", "sklearn")
PEERS = {"pcd1": "vs_pcd1", "numpy-reference": "vs_numpy_reference",
         "gemm-only": "vs_gemm_only", "sklearn": "vs_sklearn"}
LOCAL_FIELD = 2


def _synthetic_data(n: int, n_visible: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    data = np.where(rng.random((n, n_visible)) < 0.5, 1.0, -1.0)
    ordered = np.where(rng.random(n // 2) < 0.5, 1.0, -1.0)[:, None]
    flips = np.where(rng.random((n // 2, n_visible)) < 0.1, -1.0, 1.0)
    data[: n // 2] = ordered * flips
    return data.astype(np.float32)


class NumpyReferencePCD:
    """The same PCD-1 update written the straightforward numpy way (timing baseline). Like
    the Trainer, the chains' first hidden sample of a step uses their hidden field from the
    end of the previous step."""

    def __init__(self, W, a, b, n_chains: int, seed: int = 1,
                 lr=1e-3, betas=(0.9, 0.999), eps=1e-2):
        self.W, self.a, self.b = W.copy(), a.copy(), b.copy()
        self.rng = np.random.default_rng(seed)
        self.chains = np.where(self.rng.random((n_chains, W.shape[0])) < 0.5, 1.0,
                               -1.0).astype(W.dtype)
        self.chain_field = self.chains @ W + b
        self.m = [np.zeros_like(p) for p in (self.W, self.a, self.b)]
        self.v = [np.zeros_like(p) for p in (self.W, self.a, self.b)]
        self.lr, self.betas, self.eps, self.t = lr, betas, eps, 0

    def step(self, batch):
        W, a, b, rng = self.W, self.a, self.b, self.rng
        f = W.dtype
        h_data = np.tanh(batch @ W + b)
        p_h = 0.5 * (1.0 + np.tanh(self.chain_field))
        h = np.where(rng.random(p_h.shape, dtype=f) < p_h, 1.0, -1.0).astype(f)
        p_v = 0.5 * (1.0 + np.tanh(h @ W.T + a))
        self.chains = np.where(rng.random(p_v.shape, dtype=f) < p_v, 1.0, -1.0).astype(f)
        self.chain_field = self.chains @ W + b
        h_model = np.tanh(self.chain_field)
        grads = (batch.T @ h_data / len(batch) - self.chains.T @ h_model / len(self.chains),
                 batch.mean(axis=0) - self.chains.mean(axis=0),
                 h_data.mean(axis=0) - h_model.mean(axis=0))
        self.t += 1
        b1, b2 = self.betas
        for p, g, m, v in zip((W, a, b), grads, self.m, self.v, strict=True):
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            m_hat = m / (1 - b1 ** self.t)
            v_hat = v / (1 - b2 ** self.t)
            p += self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


def _gemm_only_step(W, n_chains: int):
    """The GEMMs of one PCD-1 step and nothing else: the batch's hidden fields, the chains'
    visible fields, their new hidden fields, and the stacked weight gradient."""
    B, (n_v, n_h) = BATCH, W.shape
    vv = np.zeros((B + n_chains, n_v), W.dtype)
    z = np.zeros((B + n_chains, n_h), W.dtype)
    vf = np.empty((n_chains, n_v), W.dtype)
    grad = np.empty_like(W)

    def step(batch):
        vv[:B] = batch
        np.matmul(vv[:B], W, out=z[:B])
        np.matmul(z[B:], W.T, out=vf)
        np.matmul(vv[B:], W, out=z[B:])
        np.matmul(vv.T, z, out=grad)
    return step


def _all_threads() -> int:
    from rgflow.core.cpu import available_cores

    return available_cores()


def _sklearn_runner(n_hidden: int, cycle):
    """scikit-learn's BernoulliRBM (PCD-1, SGD) stepping through the first n batches."""
    from sklearn.neural_network import BernoulliRBM
    from sklearn.utils import check_random_state

    binary = [(batch + 1) / 2 for batch in cycle]  # its units are 0/1

    def model():
        return BernoulliRBM(n_components=n_hidden, batch_size=BATCH, n_iter=1,
                            learning_rate=1e-3, random_state=0)
    peer, rng = model().fit(binary[0]), check_random_state(1)  # fit initialises it
    if not hasattr(peer, "_fit"):
        return lambda n: model().fit(np.concatenate(binary[:n]))

    def run(n):
        for batch in binary[:n]:
            peer._fit(batch, rng)
    return run


def _make_runner(case: str, rbm, threads: int, cycle):
    """A callable run(n) that trains on the first n batches of cycle, one step per batch."""
    from rgflow.core.rbm import TrainConfig
    from rgflow.core.rbm_local import LocalRBM, trainer_for
    from rgflow.core.rng import new_states

    if case == "sklearn":
        return _sklearn_runner(rbm.n_hidden, cycle)
    if case == "numpy-reference":
        step = NumpyReferencePCD(rbm.W, rbm.visible_bias, rbm.hidden_bias, BATCH).step
    elif case == "gemm-only":
        step = _gemm_only_step(rbm.W.copy(), BATCH)
    else:
        cfg = TrainConfig(k=1, persistent=case != "cd1", n_chains=BATCH, batch=BATCH,
                          fresh_chain_field=case == "pcd1-fresh")
        model = rbm.copy()
        if case == "local-r2":  # rbm's initial weights (seed 0), kept on the field
            model = LocalRBM.create(32, LOCAL_FIELD, units=rbm.units, dtype=rbm.dtype,
                                    seed_or_state=0)
        trainer = trainer_for(model, cfg, new_states(2, name="bench"), blas_threads=threads)
        recon = case == "pcd1-recon"

        def step(batch):
            trainer.step(batch, reconstruction=recon)

    def run(n):
        for batch in cycle[:n]:
            step(batch)
    return run


def available_cases() -> tuple[str, ...]:
    has_sklearn = importlib.util.find_spec("sklearn") is not None
    return tuple(c for c in CASES if c != "sklearn" or has_sklearn)


def _measure(threads: int, data, rbm, repeats: int, steps: int, warmup: int) -> list[dict]:
    """Time every case at one BLAS thread count. The cases take turns within each repeat,
    so load from other processes on the machine hits them alike."""
    from rgflow.core.rbm import blas_threads

    batches = [data[i:i + BATCH] for i in range(0, len(data) - BATCH + 1, BATCH)]
    cycle = [batches[i % len(batches)] for i in range(max(steps, warmup))]
    cases = available_cases()
    runners = {case: _make_runner(case, rbm, threads, cycle) for case in cases}
    times = {case: [] for case in cases}
    cpu_times = {case: [] for case in cases}
    with blas_threads(threads):
        for run in runners.values():
            run(warmup)
        for _ in range(repeats):
            for case, run in runners.items():
                t0, c0 = time.perf_counter(), time.process_time()
                run(steps)
                times[case].append(time.perf_counter() - t0)
                cpu_times[case].append(time.process_time() - c0)
    results = []
    for case in cases:
        rates = sorted(steps * BATCH / t for t in times[case])
        cpu_rates = [steps * BATCH / t for t in cpu_times[case] if t > 0]
        results.append({
            "case": case,
            "n_visible": N_VISIBLE,
            "n_hidden": N_HIDDEN,
            "batch": BATCH,
            "dtype": "float32",
            "threads": threads,
            "samples_per_s": float(np.median(rates)),
            "samples_per_s_min": rates[0],
            "samples_per_s_max": rates[-1],
            # per second of this process's CPU time (all its threads): far less sensitive
            # than wall time to other processes competing for the cores
            "samples_per_cpu_s": float(np.median(cpu_rates)) if cpu_rates else None,
            "repeats": repeats,
            "steps_per_repeat": steps,
        })
    for r in results:  # speed ratios: medians of per-repeat ratios (same minute of load)
        for peer, key in PEERS.items():
            if peer in times:
                r[key] = float(np.median(np.divide(times[peer], times[r["case"]])))
    return results


def run(json_output: bool, quick: bool = False, repeats: int | None = None) -> list[dict]:
    from rgflow.core.rbm import RBM

    default_repeats, steps, warmup = (3, 10, 3) if quick else (11, 30, 10)
    repeats = repeats or default_repeats
    data = _synthetic_data(20 * BATCH, N_VISIBLE)
    rbm = RBM.create(N_VISIBLE, N_HIDDEN, units="spin", dtype=np.float32, seed_or_state=0)
    results = []
    for threads in sorted({1, _all_threads()}):
        results += _measure(threads, data, rbm, repeats, steps, warmup)
    return print_results(results, json_output, format_table)


def format_table(results: list[dict]) -> str:
    r0 = results[0]
    ratios = [(key, f"x {peer.split('-')[0]}") for peer, key in PEERS.items() if key in r0]
    lines = [f"RBM training, {N_VISIBLE} -> {N_HIDDEN}, batch {BATCH}, float32: training "
             f"samples/s, median of {r0['repeats']} x {r0['steps_per_repeat']} steps "
             "(min-max), per CPU-second, and speed relative to other cases (median of "
             "per-repeat ratios; x gemm: the GEMMs alone)",
             f"{'case':<16} {'threads':>7} {'samples/s':>10} {'min-max':>15} {'per CPU s':>10}"
             + "".join(f" {title:>9}" for _, title in ratios)]
    for r in results:
        cpu = r["samples_per_cpu_s"]
        lines.append(f"{r['case']:<16} {r['threads']:>7d} {r['samples_per_s']:>10,.0f} "
                     f"{r['samples_per_s_min']:>7,.0f}-{r['samples_per_s_max']:<7,.0f} "
                     f"{'-' if cpu is None else format(cpu, ',.0f'):>10}"
                     + "".join(f" {r[key]:>9.2f}" for key, _ in ratios))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # python -m rgflow.core.bench.rbm [--json] [--quick]
    run("--json" in sys.argv[1:], quick="--quick" in sys.argv[1:])
