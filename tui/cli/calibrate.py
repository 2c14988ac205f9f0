"""`rgflow calibrate`: fit the classifier thermometer at one lattice size, headless.

The same calibration as the app's palette command (Monte Carlo data on a grid of
temperatures, an MLP classifier, its held-out accuracy); the app reads the flow chains with
it after `o` opens a save that holds one, or the palette's 'Load classifier calibration…'.
"""

from rgflow.tui.cli.common import positive_int


def add_parser(sub) -> None:
    p = sub.add_parser(
        "calibrate",
        help="fit the classifier thermometer of the RBM flow view",
        description="Sample labelled Monte Carlo data at lattice size L and fit the "
        "classifier thermometer the app's flow view reads the RBM flow with. Writes an npz "
        "(classifier_* arrays, loadable in the app); JSON summary on stdout.")
    p.add_argument("L", type=positive_int, help="lattice size (even, as the session's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the Monte Carlo streams")
    p.add_argument("--out", metavar="PATH", help="output file (default classifier-L<L>.npz)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.add_argument("--jobs", type=positive_int, metavar="N",
                   help="threads for sampling (default: all cores)")
    p.set_defaults(run=run)


def run(args) -> int:
    import sys

    from rgflow.core.errors import UsageError
    from rgflow.core.live_analysis import calibrate_classifier, calibration_arrays
    from rgflow.core.npzio import atomic_write_npz, check_output_path
    from rgflow.tui.cli.common import emit_json

    if args.L < 4 or args.L % 2:
        raise UsageError(f"L must be even and at least 4 (got {args.L})")
    out = check_output_path(args.out or f"classifier-L{args.L}.npz", args.force)
    sys.stderr.write(f"calibrating the classifier thermometer at L={args.L}…\n")
    result = calibrate_classifier(args.L, args.seed, threads=args.jobs)
    summary = {k: result[k] for k in ("L", "n_T", "n", "heldout_accuracy",
                                      "heldout_within_one", "chance")}
    summary.update(seed=args.seed, out=str(out))
    atomic_write_npz(out, calibration_arrays(result), {"kind": "classifier-calibration",
                                                       **summary})
    emit_json(summary)
    return 0
