"""`rgflow bench TARGET [--json]`: speed measurements as scripts, never timed tests.

Each target is a module exposing run(json_output: bool, quick: bool) -> list[dict]."""

import importlib.util

from rgflow.tui.cli.common import positive_int

TARGETS = {
    "ising": "rgflow.core.bench.ising",
    "rbm": "rgflow.core.bench.rbm",
    # PCD's carried hidden field against a fresh one: trained log-likelihood over seeds
    "chain-field": "rgflow.core.bench.chain_field",
    "tui": "rgflow.tui.bench_tui",
}


def available_targets() -> list[str]:
    return [name for name, module in TARGETS.items() if importlib.util.find_spec(module)]


def add_parser(sub):
    p = sub.add_parser("bench", help="measure kernel and app speed",
                       description="Benchmarks: medians of repeated runs after warm-up, with "
                       "a plain reference measured in the same run.")
    p.add_argument("target", choices=available_targets(), help="what to measure")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument("--quick", action="store_true", help="fewer repeats (smoke test)")
    p.add_argument("--repeats", type=positive_int,
                   help="repeats per case (default per target; seeds for chain-field)")
    p.set_defaults(run=run)


def run(args) -> int:
    module = importlib.import_module(TARGETS[args.target])
    kwargs = {"json_output": args.json, "quick": args.quick}
    if args.repeats is not None:
        kwargs["repeats"] = args.repeats
    module.run(**kwargs)
    return 0
