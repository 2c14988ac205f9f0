"""`rgflow reproduce`: the paper's analyses (core/SCIENCE.md §7–§9) end to end, as one command,
on Dask.

Stages (Monte Carlo datasets, RBM training, thermometers, analyses), N copies of each
seed-dependent one, run as Dask futures: on a LocalCluster of single-threaded worker processes
(--workers N, default: one per core) or on a running cluster (--scheduler ADDRESS). Stages are
cached by content in DIR/cache, so a re-run computes only what is missing; Ctrl-C stops at once
and loses only the stages in progress (files are written atomically). Progress on stderr, JSON
summary on stdout.
"""

import sys

from rgflow.tui.cli.common import format_seconds, plural, positive_int

PRESETS = ("tiny", "quick", "paper")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "reproduce",
        help="run the paper's experiments and write a report",
        description="Reproduce the analyses of 'Is Deep Learning a Renormalization Group "
        "Flow?': <v h> maps of RG vs a trained RBM, the RG flow of temperature, the RBM flow "
        "with two thermometers and scaling-dimension fits, stacked RBMs (paper preset). Every "
        "number that depends on a random seed is an ensemble over --seeds training seeds. "
        "Writes report.md (the paper's claims first; methods in core/SCIENCE.md), "
        "report.html, results.json, stages.json, correlators.npz, flow.npz and PNG figures "
        "(DIR/figures) to DIR. Presets: tiny (seconds; a smoke test, its numbers mean "
        "nothing), quick (minutes), paper (the authors' sizes).",
    )
    p.add_argument("--preset", choices=PRESETS, default="quick",
                   help="which settings to run (default quick)")
    p.add_argument("--out", metavar="DIR",
                   help="output directory (default: reproduce-<preset>); finished stages "
                   "found in DIR/cache are reused. With --scheduler it must be on a "
                   "filesystem every worker sees")
    p.add_argument("--seeds", type=positive_int, metavar="N",
                   help="training seeds per seed-dependent measurement (default: tiny 2, "
                   "quick 3, paper 5)")
    p.add_argument("--workers", type=positive_int, metavar="N",
                   help="worker processes of the local Dask cluster, one stage each at a "
                   "time (default: one per core)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="use a running Dask scheduler (e.g. tcp://host:8786) instead of a "
                   "local cluster; default: $DASK_SCHEDULER_ADDRESS if set")
    p.add_argument("--threads", "--jobs", dest="threads", type=positive_int, metavar="N",
                   default=1, help="numba threads per stage (default 1); results do not "
                   "depend on it")
    p.add_argument("--dashboard", action="store_true",
                   help="serve the Dask dashboard and print its address")
    p.add_argument("--force", action="store_true",
                   help="recompute every stage instead of reusing the cache, and allow a "
                   "non-empty DIR that is not a previous reproduce output")
    p.add_argument("--plan", action="store_true",
                   help="print the stages and their time estimates as a table and stop")
    p.add_argument("--json", action="store_true",
                   help="with --plan: print the plan as JSON instead of a table")
    p.set_defaults(run=run)


def run(args) -> int:
    import dataclasses
    import time

    from rgflow.core.errors import UsageError
    from rgflow.core.npzio import ensure_output_dir
    from rgflow.core.reproduce import Pipeline, check_out_dir, get_preset
    from rgflow.core.reproduce.runner import StageFailed
    from rgflow.tui.cli.common import emit_json

    if args.workers and args.scheduler:
        raise UsageError("--workers sizes a local cluster; with --scheduler the running "
                         "cluster's workers are used")
    preset = get_preset(args.preset)
    if args.seeds:
        preset = dataclasses.replace(preset, seeds=args.seeds)
    out = args.out or f"reproduce-{args.preset}"
    ensure_output_dir(out)  # the rule every command follows: created if missing, writable
    out = check_out_dir(out, args.force)
    state = {"done": 0}

    def say(text: str) -> None:  # whole lines, never wrapped (logs and pipes read them)
        sys.stderr.write(text + "\n")
        sys.stderr.flush()

    def report(event, stage, **info):
        n = len(pipeline.stages)
        if event == "start" and info.get("cached"):
            state["done"] += 1
            say(f"[{state['done']}/{n}] {stage.name}: cached")
        elif event == "done":
            state["done"] += 1
            say(f"[{state['done']}/{n}] {stage.name}: {stage.title}, "
                f"{format_seconds(info['seconds'])} on {info.get('worker') or 'n/a'}")
        elif event == "status":
            on = ", ".join(info["running"]) or "none yet"
            say(f"rgflow reproduce: {state['done']}/{n} stages done; on workers: {on}")

    pipeline = Pipeline(preset, out, jobs=args.threads, force=args.force, report=report)
    plan = pipeline.estimates()
    todo = [s for s in plan if not s["cached"]]
    total = sum(s["estimate_s"] for s in todo)
    if args.plan:
        if args.json:
            emit_json({"preset": preset.name, "seeds": preset.seeds, "out": str(out),
                       "stages": plan, "estimate_s": round(total, 1),
                       "estimate_basis": "static per-unit costs of one stage on one core "
                                         "(rgflow.core.reproduce.costs), summed"})
        else:
            sys.stdout.write(plan_table(preset, out, plan, total))
        return 0
    from rgflow.core.reproduce.cluster import check_shared_dir, connect, run_on_dask

    t0 = time.perf_counter()
    with connect(workers=args.workers, scheduler=args.scheduler, dashboard=args.dashboard,
                 threads=args.threads) as client:
        ready = time.perf_counter() - t0
        pipeline.prepare()
        check_shared_dir(client, pipeline.cache_dir)
        n_workers = len(client.scheduler_info().get("workers", {}))
        say(
            f"rgflow reproduce: preset {preset.name}, {plural(preset.seeds, 'seed')}, "
            f"{len(plan)} stages ({len(plan) - len(todo)} cached), estimated "
            f"{format_seconds(total)} of one core from static per-unit costs measured on a "
            f"shared 2-core machine; output in {out}; Dask scheduler "
            f"{client.scheduler.address} with {plural(n_workers, 'worker')} "
            f"(ready in {ready:.1f} s)")
        if args.dashboard:
            say(f"rgflow reproduce: dashboard {client.dashboard_link}")
        try:
            summary = run_on_dask(pipeline, client, check_dir=False)
        except StageFailed as exc:
            sys.stderr.write(f"rgflow reproduce: {exc}; finished stages stay cached in "
                             f"{out / 'cache'}\n")
            return 1
    summary["estimate_s"] = round(total, 1)
    emit_json(summary)
    sys.stderr.write(f"rgflow reproduce: done in {format_seconds(summary['seconds'])}; report: "
                     f"{out / 'report.md'}\n")
    return 0


def plan_table(preset, out, plan: list, total: float) -> str:
    """The plan as plain text: one row per stage, what it computes, and its estimate."""
    rows = [(str(i), st["name"], st["title"],
             "cached" if st["cached"] else format_seconds(st["estimate_s"]))
            for i, st in enumerate(plan, 1)]
    head = ("#", "stage", "what it computes", "estimate")
    widths = [max(len(r[k]) for r in (head, *rows)) for k in range(4)]

    def line(r):
        return "  ".join(x.ljust(w) for x, w in zip(r, widths, strict=True)).rstrip()

    todo = sum(not st["cached"] for st in plan)
    return "\n".join([f"rgflow reproduce --preset {preset.name}, {preset.seeds} seeds: "
                      f"{len(plan)} stages, {todo} to compute, estimated "
                      f"{format_seconds(total)} on one core; output in {out}", "",
                      line(head), line(["-" * w for w in widths]), *map(line, rows),
                      "", "Estimates come from static per-unit costs measured on a 2-core "
                      "machine; expect ±50 %."]) + "\n"
