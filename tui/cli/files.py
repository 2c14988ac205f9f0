"""`rgflow info` and `rgflow ls`: what any rgflow file is, and what the saves folder holds."""

SAVES_DIR_HELP = "saves directory (default ./saves or $RGFLOW_SAVES)"


def add_parser(sub):
    p = sub.add_parser(
        "info", help="summarise any rgflow file",
        description="Summarise an rgflow file: dataset (rgflow sample), RG levels (rgflow rg), "
        "trained RBM (rgflow train), session save (rgflow run, the app) or reproduce stage. "
        "NAME is a save in the saves directory (saves/NAME.npz); a PATH (containing '/', "
        "ending in .npz, or an existing file) is used as given.")
    p.add_argument("name", metavar="NAME|PATH")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--saves-dir", metavar="DIR", help=SAVES_DIR_HELP)
    p.set_defaults(run=run_info)

    p = sub.add_parser("ls", help="list the files in the saves directory, with their kinds",
                       description="List the .npz files of the saves directory, newest first, "
                       "with what each is (session, dataset, RBM, ...) and a short summary.")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.add_argument("--saves-dir", metavar="DIR", help=SAVES_DIR_HELP)
    p.set_defaults(run=run_ls)


def _fmt(v):
    return f"{v:.5g}" if isinstance(v, float) else str(v)


def _session_lines(meta) -> list[str]:
    s = meta.get("summary") or {}
    config = dict(meta.get("config") or {})
    if config.get("hidden") == 0 and s.get("n_hidden"):
        config["hidden"] = f"{s['n_hidden']}(auto)"
    lines = [f"  lattice  L={s.get('L')} T={_fmt(s.get('T'))} h={s.get('h')} "
             f"algorithm={s.get('algorithm')}",
             f"  counters steps={s.get('steps')} sweeps={s.get('sweeps')} "
             f"acceptance={_fmt(s.get('acceptance'))}",
             f"  state    E/N={_fmt(s.get('energy_per_spin'))} |m|={_fmt(s.get('abs_m'))} "
             f"dataset={s.get('dataset')} heldout={s.get('heldout')}",
             f"  rbm      {s.get('n_visible')} -> {s.get('n_hidden')} "
             f"train_steps={s.get('train_steps')} training={s.get('training')} "
             f"flow_steps={s.get('flow_steps')}"]
    if s.get("metrics"):
        lines.append("  metrics  " + " ".join(f"{k}={_fmt(v)}" for k, v in s["metrics"].items()))
    lines.append("  config   " + " ".join(f"{k}={_fmt(v)}" for k, v in config.items()))
    return lines


def _dataset_lines(meta, shapes) -> list[str]:
    lines = [f"  spins    {shapes.get('spins')} (n_T, n, L, L)  seed={meta.get('seed')} "
             f"symmetrized={meta.get('symmetrized')}"]
    for r in meta.get("per_temperature") or []:
        o = r.get("overlap") or {}
        lines.append(f"  T={_fmt(r.get('T')):<8} {r.get('algorithm')} "
                     f"spacing={r.get('spacing_sweeps')} tau_int={r.get('tau_int_sweeps')} "
                     f"independent={r.get('independent_samples')} "
                     f"overlap consecutive={o.get('consecutive')} far={o.get('far')}")
    return lines


def _rg_lines(meta, shapes) -> list[str]:
    return [f"  rule     {meta.get('rule')} b={meta.get('b')} levels={meta.get('levels')} "
            f"sizes={meta.get('sizes')}"] + [
        f"  {name:<8} {shape}" for name, shape in shapes.items() if name.startswith("level")]


def _rbm_lines(meta, shapes) -> list[str]:
    config = meta.get("config") or {}
    return [f"  rbm      {meta.get('n_visible')} -> {meta.get('n_hidden')} {meta.get('units')} "
            f"units, {meta.get('dtype')}, steps_done={meta.get('steps_done')}",
            "  config   " + " ".join(f"{k}={_fmt(v)}" for k, v in config.items())]


def describe_file(path) -> dict:
    """{path, kind, format, description, members (name -> shape), meta, lines}."""
    from rgflow.core import filekinds
    from rgflow.core.npzio import read_npz
    from rgflow.core.persist import read_save

    arrays, meta = read_npz(path)
    kind = filekinds.kind_of(meta, arrays)
    if kind == filekinds.SESSION:
        arrays, meta = read_save(path)  # verifies every checksum
    shapes = {name: list(a.shape) for name, a in arrays.items()}
    lines = {filekinds.SESSION: lambda: _session_lines(meta),
             filekinds.DATASET: lambda: _dataset_lines(meta, shapes),
             filekinds.RG_LEVELS: lambda: _rg_lines(meta, shapes),
             filekinds.TRAINED_RBM: lambda: _rbm_lines(meta, shapes)}.get(
        kind, lambda: [f"  members  {shapes}"])()
    return {"path": str(path), "kind": kind, "format": meta.get("format"),
            "description": filekinds.describe(kind), "members": shapes, "meta": meta,
            "lines": lines}


def run_info(args) -> int:
    import json
    import sys

    from rgflow.core.persist import resolve_save_path, version_warnings

    path = resolve_save_path(args.name, args.saves_dir)
    info = describe_file(path)
    meta = info["meta"]
    warnings = version_warnings(meta) if meta.get("versions") else []
    if args.json:
        out = {k: v for k, v in info.items() if k != "lines"}
        out["version_warnings"] = warnings
        for key in ("schema", "versions", "config", "summary", "counters"):  # as before
            out[key] = meta.get(key)
        sys.stdout.write(json.dumps(out, indent=2, sort_keys=True) + "\n")
        return 0
    v = meta.get("versions") or {}
    head = f"{path}: {info['description']}"
    if v:
        head += (f"  (schema {meta.get('schema', meta.get('version'))}, rgflow {v.get('rgflow')}, "
                 f"numpy {v.get('numpy')}, numba {v.get('numba')})")
    lines = [head, *info["lines"], *(f"  warning  {w}" for w in warnings)]
    sys.stdout.write("\n".join(lines) + "\n")
    return 0


def run_ls(args) -> int:
    import json
    import os
    import sys

    from rgflow.core.errors import DataFileError, UsageError
    from rgflow.core.persist import SAVES_ENV, saves_dir

    d = saves_dir(args.saves_dir)
    if (args.saves_dir or os.environ.get(SAVES_ENV)) and not d.is_dir():
        raise UsageError(f"{d}: no such folder")
    files = sorted(d.glob("*.npz"), key=lambda p: p.stat().st_mtime, reverse=True) \
        if d.is_dir() else []
    rows = []
    for path in files:
        try:
            info = describe_file(path)
        except DataFileError as exc:
            rows.append({"name": path.stem, "path": str(path), "kind": None,
                         "error": exc.reason, "summary": ""})
            continue
        summary = info["lines"][0].strip() if info["lines"] else ""
        rows.append({"name": path.stem, "path": str(path), "kind": info["kind"], "error": None,
                     "description": info["description"], "summary": summary})
    if args.json:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return 0
    if not rows:
        sys.stdout.write(f"no .npz files in {d}\n")
        return 0
    for r in rows:
        what = f"DAMAGED: {r['error']}" if r["error"] else f"{r['description']}: {r['summary']}"
        sys.stdout.write(f"{r['name']:<24} {what}\n")
    return 0
