"""`rgflow rg`: RG block-spin hierarchies of a sampled dataset (headless).

Input: an npz from `rgflow sample` with `spins` int8 (n_T, n, L, L) of +-1, optional
`temperatures` (n_T,) and `meta`. A 3-D `spins` (n, L, L) is accepted as one temperature and
promoted to (1, n, L, L); meta records the input shape. Output: `level1` .. `levelK`
(n_T, n, L/b^k, L/b^k) (float32 for "average", int8 otherwise), `temperatures` copied when
present, and `meta` JSON.

Majority tie-breaks use the stream rgflow.core.rng.new_states(seed, name="rg"), passed through the
temperatures in order: for each temperature, rgflow.core.rg.hierarchy(spins[t], ...) with that one
state. Without --seed a seed is drawn and recorded, so every run can be repeated.
"""

import argparse

from rgflow.tui.cli.common import nonnegative_int, positive_int

# show a per-temperature progress bar from this many input spins on
PROGRESS_MIN_SPINS = 1 << 24


def add_parser(sub) -> None:
    from rgflow.core.config import RG_RULES  # the one list of rules (numpy, never numba)

    p = sub.add_parser(
        "rg",
        help="block-spin RG hierarchy (average, majority, decimation) of a sampled dataset",
        description="Apply an RG block-spin rule `levels` times to every configuration of an "
        "npz dataset written by `rgflow sample` and write level1..levelK to a new npz.",
    )
    p.add_argument("--data", required=True, metavar="FILE.npz", help="input dataset (spins)")
    p.add_argument(
        "--rule",
        choices=RG_RULES,
        default="average",
        help="average: b x b mean, float values, no re-binarisation (the paper); majority: "
        "sign of the block sum, random tie-break; decimation: keep each block's top-left spin "
        "(default: average)",
    )
    p.add_argument("--b", type=positive_int, default=2, help="block size (default: 2)")
    p.add_argument("--levels", type=positive_int, default=1, help="number of RG steps (default: 1)")
    p.add_argument("--out", required=True, metavar="FILE.npz", help="output file")
    p.add_argument(
        "--seed",
        type=nonnegative_int,
        default=None,
        help="seed for majority-rule tie-breaks (default: drawn at random and recorded)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output file")
    p.set_defaults(run=run)


def _load_spins(path):
    """Read and validate the dataset: (spins int8 (n_T, n, L, L), temperatures or None,
    source meta, input shape). Every problem is one DataFileError."""
    import numpy as np

    from rgflow.core.errors import DataFileError
    from rgflow.core.filekinds import DATASET, require_kind
    from rgflow.core.npzio import read_npz
    from rgflow.core.rg import is_spins

    arrays, meta = read_npz(path)
    require_kind(path, meta, arrays, DATASET, "--data")
    if "spins" not in arrays:
        raise DataFileError(path, "missing member(s): spins")
    spins = arrays["spins"]
    shape = tuple(spins.shape)
    if spins.dtype.kind not in "iuf":
        raise DataFileError(path, f"'spins' must be int8 +-1 spins, got dtype {spins.dtype}")
    if spins.ndim not in (3, 4):
        raise DataFileError(
            path, f"'spins' must have shape (n_T, n, L, L) or (n, L, L), got {shape}"
        )
    if spins.shape[-1] != spins.shape[-2] or spins.shape[-1] < 1:
        raise DataFileError(path, f"'spins' lattices must be square L x L, got {shape}")
    if spins.size == 0:
        raise DataFileError(path, f"'spins' is empty, shape {shape}")
    if not is_spins(spins):
        raise DataFileError(path, "'spins' contains values other than +1/-1")
    spins = np.ascontiguousarray(spins, dtype=np.int8)
    if spins.ndim == 3:
        spins = spins[None]
    temps = arrays.get("temperatures")
    if temps is not None:
        if temps.dtype.kind not in "iuf":
            raise DataFileError(path, f"'temperatures' must be numbers, got dtype {temps.dtype}")
        temps = np.asarray(temps, dtype=np.float64).reshape(-1)
        if temps.shape != (spins.shape[0],):
            raise DataFileError(
                path,
                f"'temperatures' has {temps.size} value(s) but 'spins' has "
                f"{spins.shape[0]} temperature(s)",
            )
        if not np.isfinite(temps).all():
            raise DataFileError(path, "'temperatures' contains NaN or infinite values")
    return spins, temps, meta, shape


def run(args: argparse.Namespace) -> int:
    import secrets
    from pathlib import Path

    import numpy as np

    from rgflow.core import rg
    from rgflow.core.errors import UsageError
    from rgflow.core.filekinds import RG_LEVELS
    from rgflow.core.npzio import atomic_write_npz, check_output_path, file_sha256, versions
    from rgflow.core.rng import new_states
    from rgflow.tui.cli.common import emit_json, progress_bar

    if args.b < 2:
        raise UsageError(f"--b must be >= 2, got {args.b}")
    if args.seed is not None and not (args.rule == "majority" and args.b % 2 == 0):
        raise UsageError("--seed applies to --rule majority with an even --b only (the other "
                         "rules, and odd blocks, never draw a random number)")
    out = check_output_path(args.out, args.force)
    data = Path(args.data)
    if data.resolve() == out.resolve():
        raise UsageError(f"{out}: output would overwrite the input dataset")
    spins, temps, source_meta, input_shape = _load_spins(data)
    n_t, n, L = spins.shape[0], spins.shape[1], spins.shape[-1]
    sizes = rg.level_sizes(L, args.b, args.levels)

    uses_rng = args.rule == "majority" and args.b % 2 == 0
    seed = args.seed
    if uses_rng and seed is None:
        seed = secrets.randbits(63)
    state = new_states(seed, name="rg") if uses_rng else None

    dtype = np.float32 if args.rule == "average" else np.int8
    levels = [np.empty((n_t, n, s, s), dtype=dtype) for s in sizes[1:]]

    def one_temperature(t):
        for k, arr in enumerate(rg.hierarchy(spins[t], args.rule, args.b, args.levels, state)):
            levels[k][t] = arr

    if spins.size >= PROGRESS_MIN_SPINS and n_t > 1:
        with progress_bar(f"rg {args.rule} b={args.b}", total=n_t) as update:
            for t in range(n_t):
                one_temperature(t)
                update(completed=t + 1)
    else:
        for t in range(n_t):
            one_temperature(t)

    arrays = {f"level{k + 1}": arr for k, arr in enumerate(levels)}
    if temps is not None:
        arrays["temperatures"] = temps
    meta = {
        "format": RG_LEVELS,
        "schema": 1,
        "rule": args.rule,
        "b": args.b,
        "levels": args.levels,
        "seed": seed,
        "rng_stream": "rg" if uses_rng else None,
        "tie_break": (
            "stream new_states(seed, name='rg'); for each temperature in order, for each "
            "level in order: one next_u64 per tied block, row-major over (config, K, J); "
            "+1 iff bit 63 of the draw is set"
            if uses_rng
            else None
        ),
        "decimation_site": "top-left (K*b, J*b)" if args.rule == "decimation" else None,
        "sizes": sizes,
        "input_shape": list(input_shape),
        "layout": "(n_T, n, L, L)",
        "source": {
            "path": str(data.resolve()),
            "sha256": file_sha256(data),
            "meta": source_meta,
        },
        "versions": versions(),
    }
    atomic_write_npz(out, arrays, meta)
    emit_json(
        {
            "out": str(out),
            "rule": args.rule,
            "b": args.b,
            "levels": args.levels,
            "seed": seed,
            "sizes": sizes,
            "shapes": {name: list(arr.shape) for name, arr in arrays.items()},
        }
    )
    return 0
