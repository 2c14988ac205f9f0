"""Numbers with error bars and the verdicts drawn from them: a measured number (`meas`),
comparisons (consistent / higher / lower / undetermined, with bounds), the direction of a
temperature flow relative to Tc, whether readings share an endpoint."""

import math

import numpy as np

from ..exact import TC

Z_AGREE = 2.0  # |difference| <= Z_AGREE combined standard errors: "consistent"


def meas(value, error, bound=None, **extra) -> dict:
    """A measured number: {"value", "error"} (+ details); non-finite -> None.

    bound: None for a measurement; "lower" when the true value is only known to be >= value
    (a reading clipped at the top of a thermometer's range), "upper" for <= value."""
    out = {"value": as_number(value), "error": as_number(error)}
    if bound is not None:
        out["bound"] = bound
    out.update({k: as_number(v) if isinstance(v, float | np.floating) else v
                for k, v in extra.items() if v is not None})
    if out["value"] is None:
        out["error"] = None
    elif out["error"] is None:  # no error bar (e.g. a fit failed on a jackknife subset)
        out["estimate_without_error"] = out["value"]
        out["value"] = None
    return out


def bound_of(flag) -> str | None:
    return {1: "lower", -1: "upper"}.get(int(flag))


def as_number(x):
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


_FLIP = {"lower": "upper", "upper": "lower"}


def compare(a: dict, b: dict, z_max: float = Z_AGREE) -> dict:
    """a - b with the combined error; verdict "consistent" (|z| <= z_max), "higher", "lower",
    or "undetermined" (a value or error missing, or bounds that leave the answer open: when
    a is a lower bound, a - b is a lower bound and only "higher" can be concluded)."""
    undetermined = {"difference": meas(None, None), "z": None, "verdict": "undetermined"}
    if a["value"] is None or b["value"] is None or a["error"] is None or b["error"] is None:
        return undetermined
    kinds = {a.get("bound"), _FLIP.get(b.get("bound"))} - {None}
    if len(kinds) > 1:
        return undetermined
    bound = kinds.pop() if kinds else None
    d = a["value"] - b["value"]
    e = math.hypot(a["error"], b["error"])
    if e > 0:
        z = d / e
    else:
        z = 0.0 if d == 0 else math.copysign(math.inf, d)
    verdict = "consistent" if abs(z) <= z_max else ("higher" if d > 0 else "lower")
    if (bound == "lower" and verdict != "higher") or (bound == "upper" and verdict != "lower"):
        verdict = "undetermined"
    return {"difference": meas(d, e, bound), "z": as_number(z) if math.isfinite(z) else None,
            "verdict": verdict}


def exact_value(x) -> dict:
    return meas(x, 0.0)


def binomial(p, n) -> dict:
    if p is None or not n:
        return meas(None, None)
    return meas(p, math.sqrt(max(p * (1 - p), 0.0) / n), n=int(n))


def direction(m0: dict, m1: dict, side: str) -> dict:
    """How a temperature reading changed between two levels/steps, relative to Tc."""
    c = compare(m1, m0)
    if c["verdict"] == "undetermined":
        word = "undetermined"
    elif c["verdict"] == "consistent":
        word = "no significant change"
    elif side == "at":
        word = "moves up" if c["verdict"] == "higher" else "moves down"
    else:
        up = c["verdict"] == "higher"
        word = "moves away from Tc" if (up == (side == "above")) else "moves toward Tc"
    return {"change": c, "verdict": word}


def side_of_tc(T) -> str:
    if abs(T - TC) < 1e-6:
        return "at"
    return "below" if T < TC else "above"


def distance_to(m: dict, ref: dict) -> dict:
    """|m - ref| with the combined error; a bound on m stays a bound if it points away."""
    if m["value"] is None or ref["value"] is None or m["error"] is None or ref["error"] is None:
        return meas(None, None)
    d = m["value"] - ref["value"]
    bound = m.get("bound")
    if bound is not None and (d >= 0) != (bound == "lower"):
        return meas(None, None)  # the true value may lie on either side of ref
    return meas(abs(d), math.hypot(m["error"], ref["error"]),
                "lower" if bound is not None else None)


def toward(m0: dict, m1: dict, ref: dict) -> dict:
    """Did the distance |T - T_ref| shrink from m0 to m1? (errors combined in quadrature)
    A flow that ends significantly on the other side of T_ref "crossed Tc" instead."""
    d0, d1 = distance_to(m0, ref), distance_to(m1, ref)
    c = compare(d1, d0)
    word = {"lower": "toward Tc", "higher": "away from Tc",
            "consistent": "no significant change"}.get(c["verdict"], "undetermined")
    side0, side1 = compare(m0, ref)["verdict"], compare(m1, ref)["verdict"]
    if {side0, side1} == {"higher", "lower"}:
        word = "crossed Tc, ends " + ("below" if side1 == "lower" else "above")
    return {"distance_start": d0, "distance_final": d1, "change": c["difference"],
            "z": c["z"], "verdict": word}


def agreement(z) -> dict:
    """The observable thermometer's two readings (from E/N and from <|m|>) side by side:
    z = (T_E - T_|m|) / its error, as rgflow.core.thermometer reports it."""
    z = as_number(z)
    if z is None:
        return {"z": None, "verdict": "undetermined"}
    return {"z": z, "verdict": "consistent" if abs(z) <= Z_AGREE else
            ("energy higher" if z > 0 else "energy lower")}


def common_endpoint(ms: list) -> dict:
    """Do several readings agree? Weighted mean and the largest pairwise |z|."""
    ok = [m for m in ms if m["value"] is not None and m["error"] and "bound" not in m]
    if len(ok) < 2:
        return {"verdict": "undetermined"}
    zs = [compare(a, b)["z"] for i, a in enumerate(ok) for b in ok[i + 1:]]
    zmax = max(abs(z) for z in zs if z is not None) if any(z is not None for z in zs) else None
    w = np.array([1 / m["error"] ** 2 for m in ok])
    v = np.array([m["value"] for m in ok])
    mean = meas(float(w @ v / w.sum()), float(1 / math.sqrt(w.sum())))
    agree = zmax is not None and zmax <= Z_AGREE
    return {"weighted_mean": mean, "max_pairwise_z": as_number(zmax),
            "verdict": "common endpoint" if agree else "different endpoints"}
