"""Headless session commands: `rgflow run`, `resume`, `info`, `ls`."""

from rgflow.tui.cli.common import positive_float, positive_int


def add_parser(sub):
    p = sub.add_parser("run", help="start a new session and run it headless",
                       description="Start a new session (defaults, a preset, a TOML config "
                       "and key=value overrides) and run N steps, saving to NAME.")
    p.add_argument("--preset", help="named preset (default, quick, flow, hierarchy, big)")
    p.add_argument("--config", metavar="FILE.toml", help="TOML file of settings")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override one setting (repeatable)")
    _run_options(p)
    p.add_argument("--save", required=True, metavar="NAME|PATH", help="save name or path")
    p.add_argument("--force", action="store_true", help="overwrite an existing save")
    p.set_defaults(run=run_new)

    p = sub.add_parser("resume", help="continue a saved session headless")
    p.add_argument("name", metavar="NAME|PATH")
    _run_options(p)
    p.add_argument("--save", metavar="NAME|PATH", help="save elsewhere (default: back to NAME)")
    p.add_argument("--force", action="store_true", help="overwrite an existing --save target")
    p.set_defaults(run=run_resume)

    p = sub.add_parser("info", help="summarise a saved session")
    p.add_argument("name", metavar="NAME|PATH")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--saves-dir", help="saves directory (default ./saves or $RGFLOW_SAVES)")
    p.set_defaults(run=run_info)

    p = sub.add_parser("ls", help="list saved sessions")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--saves-dir", help="saves directory (default ./saves or $RGFLOW_SAVES)")
    p.set_defaults(run=run_ls)


def _run_options(p):
    p.add_argument("--steps", type=positive_int, required=True, help="steps to run")
    p.add_argument("--checkpoint-every", type=positive_float, default=60.0, metavar="SECONDS",
                   help="save a checkpoint this often (default 60 s)")
    p.add_argument("--saves-dir", help="saves directory (default ./saves or $RGFLOW_SAVES)")


def run_new(args) -> int:
    from rgflow.core.config import build_config
    from rgflow.core.persist import resolve_save_path
    from rgflow.core.session import Session

    path = resolve_save_path(args.save, args.saves_dir)
    _check_target(path, args.force)
    config = build_config(args.preset, args.config, args.set)
    session = Session(config)
    return _drive(session, path, args, started=True)


def run_resume(args) -> int:
    import sys

    from rgflow.core.persist import read_save, resolve_save_path, version_warnings
    from rgflow.core.session import Session

    source = resolve_save_path(args.name, args.saves_dir)
    arrays, meta = read_save(source)
    for warning in version_warnings(meta):
        sys.stderr.write(f"rgflow resume: warning: {warning}\n")
    session = Session.from_state(arrays, meta, source)
    target = resolve_save_path(args.save, args.saves_dir) if args.save else source
    if args.save:
        _check_target(target, args.force)
    return _drive(session, target, args, started=False)


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


def _drive(session, path, args, started: bool) -> int:
    """Run steps in chunks with checkpoints; SIGINT/SIGTERM stop at the next chunk and
    write a final checkpoint (exit 130/143)."""
    import signal
    import time

    from rgflow.core.npzio import write_or_fallback
    from rgflow.core.persist import BackgroundSaver
    from rgflow.tui.cli.common import emit_json, progress_bar

    received = {"signal": None}

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
                    _checkpoint_failed_warning(saver.submit, path, *session.snapshot())
                    last_checkpoint = time.perf_counter()
        _checkpoint_failed_warning(saver.wait)
        write_or_fallback(path, lambda p: (session.save(p), p)[1])
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


def run_info(args) -> int:
    import json
    import sys

    from rgflow.core.persist import read_save, resolve_save_path, version_warnings

    path = resolve_save_path(args.name, args.saves_dir)
    _, meta = read_save(path)
    info = {
        "path": str(path),
        "schema": meta["schema"],
        "versions": meta.get("versions"),
        "config": meta.get("config"),
        "summary": meta.get("summary"),
        "counters": meta.get("counters"),
        "version_warnings": version_warnings(meta),
    }
    if args.json:
        sys.stdout.write(json.dumps(info, indent=2, sort_keys=True) + "\n")
        return 0
    s = info["summary"] or {}
    lines = [f"{path}  (schema {meta['schema']}, rgflow {meta['versions'].get('rgflow')}, "
             f"numpy {meta['versions'].get('numpy')}, numba {meta['versions'].get('numba')})"]
    lines.append(f"  lattice  L={s.get('L')} T={s.get('T')} h={s.get('h')} "
                 f"algorithm={s.get('algorithm')}")
    lines.append(f"  counters steps={s.get('steps')} sweeps={s.get('sweeps')} "
                 f"acceptance={s.get('acceptance')}")
    lines.append(f"  state    E/N={s.get('energy_per_spin')} |m|={s.get('abs_m')} "
                 f"dataset={s.get('dataset')} heldout={s.get('heldout')}")
    lines.append(f"  rbm      {s.get('n_visible')} -> {s.get('n_hidden')} "
                 f"train_steps={s.get('train_steps')} training={s.get('training')} "
                 f"flow_steps={s.get('flow_steps')}")
    if s.get("metrics"):
        lines.append("  metrics  " + " ".join(f"{k}={v:.5g}" if isinstance(v, float) else
                                             f"{k}={v}" for k, v in s["metrics"].items()))
    config = meta.get("config") or {}
    lines.append("  config   " + " ".join(f"{k}={v}" for k, v in config.items()))
    for w in info["version_warnings"]:
        lines.append(f"  warning  {w}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def run_ls(args) -> int:
    import json
    import sys

    from rgflow.core.persist import list_saves, saves_dir

    rows = []
    for path, meta, error in list_saves(args.saves_dir):
        s = (meta or {}).get("summary") or {}
        rows.append({"name": path.stem, "path": str(path), "error": error,
                     "L": s.get("L"), "T": s.get("T"), "steps": s.get("steps"),
                     "train_steps": s.get("train_steps")})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    if not rows:
        sys.stdout.write(f"no saves in {saves_dir(args.saves_dir)}\n")
        return 0
    for r in rows:
        if r["error"]:
            sys.stdout.write(f"{r['name']:<24} DAMAGED: {r['error']}\n")
        else:
            sys.stdout.write(f"{r['name']:<24} L={r['L']:<4} T={r['T']:.4f} "
                             f"steps={r['steps']} train_steps={r['train_steps']}\n")
    return 0
