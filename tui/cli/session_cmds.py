"""Headless session commands: `rgflow run` and `rgflow resume`."""

from rgflow.tui.cli.common import positive_float, positive_int


def add_parser(sub):
    from rgflow.core.config import SESSION_PRESETS, settings_help

    p = sub.add_parser("run", help="start a new session and run it headless",
                       description="Start a new session (defaults, then a preset, a TOML "
                       "config and KEY=VALUE overrides) and run N steps, saving to NAME "
                       "(saves/NAME.npz) or PATH (containing '/', ending in .npz, or an "
                       "existing file). Settings and their defaults: " + settings_help() + ".")
    p.add_argument("--preset", choices=tuple(SESSION_PRESETS), help="named preset")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting (repeatable)")
    _run_options(p)
    p.add_argument("--save", required=True, metavar="NAME|PATH", help="save name or path")
    p.add_argument("--force", action="store_true", help="overwrite an existing save")
    p.set_defaults(run=run_new)

    p = sub.add_parser("resume", help="continue a saved session headless",
                       description="Load a session save (NAME in the saves directory, or a "
                       "PATH), run N more steps and save it back (or to --save). The save "
                       "carries its settings; the continuation is bit-identical to an "
                       "uninterrupted run on the same numpy and numba versions.")
    p.add_argument("name", metavar="NAME|PATH")
    _run_options(p)
    p.add_argument("--save", metavar="NAME|PATH", help="save elsewhere (default: back to NAME)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --save target")
    p.set_defaults(run=run_resume)


def _run_options(p):
    p.add_argument("--steps", type=positive_int, required=True, help="steps to run")
    p.add_argument("--checkpoint-every", type=positive_float, default=60.0, metavar="SECONDS",
                   help="save a checkpoint this often (default 60 s)")
    p.add_argument("--saves-dir", metavar="DIR",
                   help="saves directory (default ./saves or $RGFLOW_SAVES)")


def run_new(args) -> int:
    from rgflow.core.config import build_config
    from rgflow.core.persist import resolve_save_target
    from rgflow.core.session import Session

    path = resolve_save_target(args.save, args.saves_dir)
    _check_target(path, args.force)
    config = build_config(args.preset, args.config, args.set)
    session = Session(config)
    return _drive(session, path, args, started=True)


def run_resume(args) -> int:
    import sys

    from rgflow.core.live_analysis import CALIBRATION_PREFIX
    from rgflow.core.persist import (
        read_save,
        resolve_save_path,
        resolve_save_target,
        version_warnings,
    )
    from rgflow.core.session import Session

    source = resolve_save_path(args.name, args.saves_dir)
    arrays, meta = read_save(source)
    for warning in version_warnings(meta):
        sys.stderr.write(f"rgflow resume: warning: {warning}\n")
    session = Session.from_state(arrays, meta, source)
    target = resolve_save_target(args.save, args.saves_dir) if args.save else source
    if args.save:
        _check_target(target, args.force)
    # the app saves its classifier calibration beside the session: rewritten unchanged
    kept = {k: v for k, v in arrays.items() if k.startswith(CALIBRATION_PREFIX)}
    return _drive(session, target, args, started=False, kept_arrays=kept)


def _check_target(path, force):
    from rgflow.core.errors import UsageError
    from rgflow.core.npzio import check_output_path

    if path.exists() and not path.is_dir() and not force:
        raise UsageError(f"{path}: already exists (use --force to overwrite, or `rgflow resume`)")
    check_output_path(path, True)


def _checkpoint_failed_warning(call, *args) -> None:
    """A failed checkpoint is a warning: the run goes on and the final save (with its
    fallback in the temporary folder) still happens."""
    import sys

    try:
        call(*args)
    except OSError as exc:
        where = f"{exc.filename}: " if exc.filename else ""
        sys.stderr.write(f"rgflow: warning: checkpoint not written: {where}"
                         f"{exc.strerror or exc}\n")


def _drive(session, path, args, started: bool, kept_arrays: dict | None = None) -> int:
    """Run steps in chunks with checkpoints; SIGINT/SIGTERM stop at the next chunk and
    write a final checkpoint (exit 130/143). kept_arrays go into every write beside the
    session's own state."""
    import signal
    import time

    from rgflow.core.npzio import write_or_fallback
    from rgflow.core.persist import BackgroundSaver, write_save
    from rgflow.tui.cli.common import emit_json, progress_bar

    received = {"signal": None}

    def snapshot() -> tuple[dict, dict]:
        arrays, meta = session.snapshot()
        return {**arrays, **(kept_arrays or {})}, meta

    def on_signal(signum, _frame):
        received["signal"] = signum

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    t0 = time.perf_counter()
    last_checkpoint = t0
    done = 0
    start_step = session.step_count
    saver = BackgroundSaver()
    try:
        with progress_bar("running", args.steps, fields=("T", "E", "m", "train")) as update:
            while done < args.steps and received["signal"] is None:
                chunk_end = time.perf_counter() + 0.1
                while done < args.steps and time.perf_counter() < chunk_end:
                    session.step()
                    done += 1
                s = session.summary()
                update(completed=done, T=f"{session.T:.4f}",
                       E=f"{s['energy_per_spin']:.4f}", m=f"{s['abs_m']:.3f}",
                       train=s["train_steps"])
                if time.perf_counter() - last_checkpoint >= args.checkpoint_every \
                        and not saver.busy():
                    _checkpoint_failed_warning(saver.submit, path, *snapshot())
                    last_checkpoint = time.perf_counter()
        _checkpoint_failed_warning(saver.wait)
        write_or_fallback(path, lambda p: write_save(p, *snapshot()))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    summary = session.summary()
    summary.update(save=str(path), steps_run=session.step_count - start_step,
                   seconds=round(time.perf_counter() - t0, 3))
    if received["signal"] is not None:
        summary["interrupted"] = True
    emit_json(summary)
    if received["signal"] == signal.SIGTERM:
        return 143
    if received["signal"] is not None:
        return 130
    return 0
