"""`rgflow train`: train an RBM on an `rgflow sample` dataset, headless.

Ctrl-C or SIGTERM stops after the current update: the last complete state (weights, chains,
optimiser, RNG, steps done, metric history) is written to --out and the exit code is 130
(SIGINT) or 143 (SIGTERM). A second signal aborts at once without writing.
"""

import math
import signal
import sys
import threading
from contextlib import contextmanager

from rgflow.tui.cli.common import finite_float, nonnegative_int, positive_float, positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "train",
        help="train an RBM on Ising configurations",
        description="Train a restricted Boltzmann machine on configurations from "
        "`rgflow sample` (the authors' settings, core/SCIENCE.md §3: spin units, PCD-1, "
        "Adam lr 1e-3, batch 100). "
        "Progress on stderr, JSON summary on stdout. Ctrl-C saves the last complete state "
        "and exits 130 (SIGTERM: 143).",
    )
    p.add_argument("--data", required=True, metavar="FILE.npz", help="dataset from rgflow sample")
    p.add_argument("--T-index", dest="t_index", action="append", type=nonnegative_int, metavar="I",
                   help="train on temperature I of the file (repeatable; default: all)")
    p.add_argument("--hidden", type=positive_int, metavar="N",
                   help="hidden units (default: n_visible / 4)")
    p.add_argument("--receptive-field", type=nonnegative_int, metavar="R",
                   help="locally connected RBM: hidden unit a sees only the sites within "
                   "periodic Chebyshev distance R of its 2x2 block (needs L x L data and "
                   "n_visible / 4 hidden units; default: every site)")
    p.add_argument("--units", choices=("spin", "binary"), default="spin",
                   help="±1 (spin, the paper's) or 0/1 units (default: spin)")
    p.add_argument("--k", type=positive_int, default=1, help="Gibbs steps per update (default 1)")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--pcd", dest="persistent", action="store_true", default=True,
                      help="persistent contrastive divergence (default, as in the paper)")
    mode.add_argument("--cd", dest="persistent", action="store_false",
                      help="contrastive divergence restarted from the data")
    p.add_argument("--chains", type=positive_int, metavar="C",
                   help="persistent chains (default: the batch size; refused with --cd)")
    p.add_argument("--fresh-chain-field", action="store_true",
                   help="PCD: recompute the chains' hidden field from the updated parameters "
                   "every step instead of carrying it over from the last one (a fifth more "
                   "GEMM work; steadier at large learning rates)")
    p.add_argument("--optimizer", choices=("adam", "sgd"), default="adam",
                   help="adam (eps 1e-2, as in the paper) or sgd with momentum (default adam)")
    p.add_argument("--lr", type=positive_float, default=1e-3, help="learning rate (default 1e-3)")
    p.add_argument("--momentum", type=finite_float,
                   help="sgd momentum in [0, 1) (default 0.9; refused with adam)")
    p.add_argument("--l1", type=finite_float, default=0.0, help="L1 weight decay (default 0)")
    p.add_argument("--l2", type=finite_float, default=0.0, help="L2 weight decay (default 0)")
    p.add_argument("--batch", type=positive_int, default=100, help="minibatch size (default 100)")
    p.add_argument("--steps", type=positive_int, default=10000,
                   help="parameter updates (default 10000)")
    p.add_argument("--holdout", type=finite_float, default=0.1, metavar="FRACTION",
                   help="fraction held out for the free-energy gap, in [0, 1) (default 0.1)")
    p.add_argument("--seed", type=nonnegative_int, default=0, help="random seed (default 0)")
    p.add_argument("--monitor-every", type=positive_int, metavar="N",
                   help="steps between full monitoring evaluations (default: on a time "
                   "budget, at most 10%% of the training time; the minibatch reconstruction "
                   "error is refreshed twice a second either way)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output file")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out")
    p.set_defaults(run=run)


class _StopRequest:
    """stop() callable for rgflow.core.training: true once SIGINT/SIGTERM has arrived."""

    def __init__(self):
        self.signum = None

    def __call__(self) -> bool:
        return self.signum is not None


@contextmanager
def _deferred_signals():
    """Turn the first SIGINT/SIGTERM into a stop request honoured between updates (so the
    state saved is a complete one); a second one raises KeyboardInterrupt at once."""
    request = _StopRequest()
    if threading.current_thread() is not threading.main_thread():
        yield request
        return

    def handler(signum, frame):
        if request.signum is not None:
            raise KeyboardInterrupt
        request.signum = signum

    previous = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield request
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


WEIGHT_SCALE = 0.05  # W ~ Normal(0, 0.05²), core/SCIENCE.md §3


def _signal_name(signum, stopped):
    if signum == signal.SIGTERM:
        return "SIGTERM"
    if signum == signal.SIGINT or stopped == "interrupt":  # or KeyboardInterrupt in a callback
        return "SIGINT"
    return None


def _fmt(x, spec=".4f"):
    return "-" if x is None else format(x, spec)


def _check(ok: bool, message: str) -> None:
    from rgflow.core.errors import UsageError

    if not ok:
        raise UsageError(message)


def run(args) -> int:
    from pathlib import Path

    import numpy as np

    from rgflow.core.errors import UsageError
    from rgflow.core.npzio import check_output_path, write_or_fallback
    from rgflow.core.rbm import TrainConfig
    from rgflow.core.training import load_dataset, save_trained, train
    from rgflow.tui.cli.common import emit_json, progress_bar

    out = check_output_path(args.out, args.force)
    _check(math.isfinite(args.holdout) and 0.0 <= args.holdout < 1.0,
           f"--holdout must be in [0, 1), got {args.holdout}")
    # options that do not apply are refused, not silently ignored
    _check(args.momentum is None or args.optimizer == "sgd",
           "--momentum applies to --optimizer sgd only (adam has no momentum setting)")
    _check(args.chains is None or args.persistent,
           "--chains applies to --pcd only (--cd restarts its chains from the data)")
    _check(not args.fresh_chain_field or args.persistent,
           "--fresh-chain-field applies to --pcd only (--cd has no carried chains)")
    if args.momentum is None:
        args.momentum = 0.9
    _check(0.0 <= args.momentum < 1.0, f"--momentum must be in [0, 1), got {args.momentum}")
    _check(args.l1 >= 0.0, f"--l1 must be >= 0, got {args.l1}")
    _check(args.l2 >= 0.0, f"--l2 must be >= 0, got {args.l2}")
    data_path = Path(args.data)
    _check(not (out.exists() and data_path.exists() and out.resolve() == data_path.resolve()),
           f"--out {out} is the --data file; refusing to overwrite the dataset")
    try:
        config = TrainConfig(
            k=args.k, persistent=args.persistent, n_chains=args.chains or args.batch,
            fresh_chain_field=args.fresh_chain_field,
            optimizer=args.optimizer, lr=args.lr, momentum=args.momentum, l1=args.l1,
            l2=args.l2, batch=args.batch, total_steps=args.steps,
        )
    except (TypeError, ValueError) as exc:
        raise UsageError(f"invalid training settings: {exc}") from None

    spins, temps, data_meta, sha = load_dataset(data_path, args.t_index)
    t_indices = args.t_index if args.t_index else list(range(len(temps)))
    n_visible = int(np.prod(spins.shape[1:]))
    n_hidden = args.hidden or max(1, n_visible // 4)
    if args.receptive_field is not None:
        from rgflow.core.rbm_local import lattice_side

        lattice_side(n_visible, n_hidden)
    monitor_every = args.monitor_every  # None: on a time budget
    n_held = int(round(args.holdout * len(spins)))
    _check(len(spins) - n_held >= args.batch,
           f"--batch {args.batch} is larger than the {len(spins) - n_held} training "
           f"configurations ({len(spins)} minus {n_held} held out)")
    sys.stderr.write(
        f"rgflow train: {n_visible} -> {n_hidden} {args.units} RBM"
        f"{'' if args.receptive_field is None else f' (receptive field {args.receptive_field})'}, "
        f"{'PCD' if args.persistent else 'CD'}-{args.k}, {args.optimizer} lr {args.lr:g}, "
        f"{len(spins) - n_held} training + {n_held} held-out configurations, "
        f"{args.steps} steps\n"
    )

    # Signals stay deferred until the file is written: a first Ctrl-C / SIGTERM during the
    # save only changes the exit code; a second one aborts (the atomic write leaves no file).
    with _deferred_signals() as stop:
        with progress_bar("train", total=args.steps,
                          fields=("batch_recon", "pll", "fe_gap", "monitored_at")) as update:

            def progress(step, metrics):
                update(completed=step,
                       batch_recon=_fmt(metrics.get("batch_reconstruction_error")),
                       pll=_fmt(metrics.get("pll")),
                       fe_gap=_fmt(metrics.get("free_energy_gap")),
                       monitored_at=metrics.get("step"))

            result = train(
                config, spins, args.steps, n_hidden=n_hidden, units=args.units,
                holdout_fraction=args.holdout, seed=args.seed, monitor_every=monitor_every,
                weight_scale=WEIGHT_SCALE, receptive_field=args.receptive_field,
                progress=progress, stop=stop,
            )
        signame = _signal_name(stop.signum, result.stopped)
        meta = {
            "data": {
                "path": str(data_path),
                "abs_path": str(data_path.resolve()),
                "sha256": sha,
                "t_indices": [int(i) for i in t_indices],
                "temperatures": [None if not math.isfinite(t) else float(t) for t in temps],
                "n_configurations": int(len(spins)),
                "lattice": list(spins.shape[1:]),
                "meta": data_meta,
            },
            "seed": int(args.seed),
            "holdout_fraction": float(args.holdout),
            "n_train": result.n_train,
            "n_heldout": result.n_heldout,
            "steps_requested": int(args.steps),
            "monitor_every": monitor_every,
            "weight_scale": WEIGHT_SCALE,
            "history": result.history,
            "interrupted": signame,
            "train_seconds": result.train_seconds,
            "monitor_seconds": result.monitor_seconds,
            "samples_per_s": result.samples_per_s,
        }
        write_or_fallback(out, lambda p: save_trained(p, result.trainer, meta))
    signame = signame or _signal_name(stop.signum, None)  # a signal during the save
    final = result.history[-1] if result.history else {}
    emit_json({
        "path": str(out),
        "steps": result.steps_done,
        "steps_requested": int(args.steps),
        "interrupted": signame,
        "n_visible": n_visible,
        "n_hidden": n_hidden,
        "receptive_field": args.receptive_field,
        "final": final,
        "samples_per_s": round(result.samples_per_s, 1),
        "train_seconds": round(result.train_seconds, 3),
        "monitor_seconds": round(result.monitor_seconds, 3),
    })
    if signame is None:
        return 0
    sys.stderr.write(f"rgflow train: {signame}: stopped after step {result.steps_done} of "
                     f"{args.steps}; saved the last complete state to {out}\n")
    return 143 if signame == "SIGTERM" else 130
