"""Ensembles over training seeds: one number from N independent runs of the same measurement.

Each seed k gives a measured number x_k ± e_k (e_k: its within-run error: Monte Carlo,
configuration and jackknife noise). The ensemble number is

    value = x̄ = (1/N) Σ x_k,    error = max(s, w) / √N,
    s² = Σ (x_k − x̄)² / (N − 1),    w² = (1/N) Σ e_k²,

the standard error of the mean over seeds. Each x_k already scatters by its within-run noise,
so s contains it: nothing is added in quadrature. But each x_k's variance is at least its
within-run variance, and s, estimated from a few seeds (one degree of freedom for two), can
by chance fall far below it: two seeds that agree to a tenth of their own errors do not make
the mean ten times more precise than either. The within-run error w is therefore a floor
under s. Beside the error the ensemble records the seed spread s and w: s ≈ w says the
training seed adds nothing beyond the run's own noise; s ≫ w says the seed dominates.

With one seed there is no spread to measure: the error is that run's own e_1, and
`error_basis` says so.
"""

import math

import numpy as np

from .verdicts import as_number, meas

SEM_BASIS = "standard error of the mean over seeds"
FLOOR_BASIS = "within-run error / √N (the seeds scatter less than their runs' own errors)"
SINGLE_BASIS = "within-run error of the only seed"
FORMULA = ("value = mean of the per-seed values x_k; error = max(s, w)/√N with "
           "s² = Σ(x_k − mean)²/(N − 1) the seeds' spread (each x_k already carries its "
           "within-run noise, so s contains it) and w² = mean of the runs' own squared errors, "
           "a floor under s")


def is_meas(x) -> bool:
    return isinstance(x, dict) and "value" in x and "error" in x


def ensemble(per_seed: list) -> dict:
    """The ensemble number of per-seed measured numbers (dicts from `meas`), with `seeds` (the
    per-seed numbers as given), `n_seeds` (how many had a value and an error),
    `seed_spread` s, `within_run_error` w and `error_basis` (which of s and w set the error).

    Seeds without a value or an error bar are left out of the mean. Bounds: if any used seed is
    a lower bound (and none an upper), the mean is a lower bound too; mixed bounds leave the
    value undetermined."""
    used = [m for m in per_seed if m.get("value") is not None and m.get("error") is not None]
    seeds = [dict(m) for m in per_seed]
    bounds = {m.get("bound") for m in used} - {None}
    if not used or len(bounds) > 1:
        return meas(None, None, seeds=seeds, n_seeds=len(used))
    bound = bounds.pop() if bounds else None
    x = np.array([m["value"] for m in used], dtype=float)
    e = np.array([m["error"] for m in used], dtype=float)
    n = x.size
    within = float(np.sqrt(np.mean(e ** 2)))
    if n == 1:
        return meas(x[0], e[0], bound, seeds=seeds, n_seeds=1, within_run_error=within,
                    error_basis=SINGLE_BASIS)
    spread = float(x.std(ddof=1))
    basis = SEM_BASIS if spread >= within else FLOOR_BASIS
    return meas(float(x.mean()), max(spread, within) / math.sqrt(n), bound, seeds=seeds,
                n_seeds=n, seed_spread=spread, within_run_error=within, error_basis=basis)


def ensemble_tree(trees: list):
    """Merge per-seed result trees of the same shape: every measured number becomes its
    ensemble (`ensemble`), lists are merged element by element, and any other leaf (or
    `settings` entry) is kept if every seed agrees, else listed per seed as {"seeds": [...]}."""
    first = trees[0]
    if is_meas(first):
        return ensemble(trees)
    if isinstance(first, dict):
        out = {}
        for k in first:
            if k == "settings":
                out[k] = _merge_settings([t[k] for t in trees])
            else:
                out[k] = ensemble_tree([t[k] for t in trees])
        return out
    if isinstance(first, list) and all(isinstance(t, list) and len(t) == len(first)
                                       for t in trees):
        return [ensemble_tree([t[i] for t in trees]) for i in range(len(first))]
    if all(t == first for t in trees):
        return first
    return {"seeds": list(trees)}


def _merge_settings(settings: list) -> dict:
    out = {}
    for k, v in settings[0].items():
        values = [s.get(k) for s in settings]
        out[k] = v if all(x == v for x in values) else {"seeds": values}
    return out


def combined_z(m: dict) -> float | None:
    """Stouffer's combination of per-seed z-scores held as an ensemble number (value = mean
    z): mean z · √N, standard normal when every seed's z is."""
    if m.get("value") is None:
        return None
    return as_number(m["value"] * math.sqrt(m.get("n_seeds") or 1))


def stack_seeds(per_seed: list, shared: tuple) -> dict:
    """One array dict from per-seed array dicts: arrays named in `shared` (equal for every
    seed) once, the others stacked on a leading seed axis; "seeds" holds the seed indices."""
    out = {k: per_seed[0][k] for k in shared}
    out.update({k: np.stack([d[k] for d in per_seed]) for k in per_seed[0] if k not in shared})
    out["seeds"] = np.arange(len(per_seed))
    return out
