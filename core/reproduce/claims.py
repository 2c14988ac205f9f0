"""The paper's claims, as measured: one row per claim (claim, source, our numbers, the
criterion in words, the verdict), computed from results.json's numbers by pure functions.

Verdicts (core/SCIENCE.md §9): "reproduced", "not reproduced", "inconclusive" (the numbers
cannot decide), "measured, no reference" (the paper gives no number), "not run" (the preset
skips the experiment). "Significant" means |z| > Z_AGREE with the errors results.json
carries (ensembles over seeds where a number depends on one).

A thermometer earns a verdict only if it passes its gates (core/SCIENCE.md §6): it reads
Monte Carlo configurations at the temperatures it judges within |z| <= CALIBRATION_Z_MAX of
the truth, and (the classifier) its held-out within-one-step accuracy is above chance by more
than ACCURACY_Z_MIN standard deviations. A silent thermometer's reasons go into the row.
"""

import math
from dataclasses import dataclass, field

from .verdicts import compare, exact_value, meas

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
MEASURED = "measured, no reference"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, MEASURED, NOT_RUN)

CALIBRATION_Z_MAX = 3.0  # a thermometer off by more than this at a known T is silent
ACCURACY_Z_MIN = 5.0     # within-one-step accuracy must beat chance by more than this
CHANCE_Z = 2.0           # exact-label accuracy not above 1/n_T by this: flagged as chance level

THERMOMETERS = {"T_obs": "observable matching", "T_mlp": "classifier"}


@dataclass
class Claim:
    number: int
    claim: str
    source: str
    criterion: str
    verdict: str
    numbers: list = field(default_factory=list)  # [(label, meas dict)]
    notes: list = field(default_factory=list)    # why the verdict, silent thermometers

    def as_dict(self) -> dict:
        return {"number": self.number, "claim": self.claim, "source": self.source,
                "criterion": self.criterion, "verdict": self.verdict,
                "numbers": [{"label": k, **v} for k, v in self.numbers], "notes": self.notes}


# ---------------------------------------------------------------------------------------------
# Thermometer gates


@dataclass(frozen=True)
class Gate:
    passed: bool
    z: float | None
    reason: str  # why it failed ("" when it passed)


def within_one_chance(n_t: int) -> float:
    """Probability that a uniform guess over n_t grid points lands within one step of a
    uniformly drawn true point: (3 n_t - 2) / n_t^2 (the two edge points have one neighbour)."""
    n_t = int(n_t)
    return 1.0 if n_t <= 1 else min(1.0, (3 * n_t - 2) / n_t**2)


def _above_chance_z(acc: dict, p0: float, n: int) -> float | None:
    """(accuracy - p0) / sigma, sigma = the accuracy's error and chance's binomial spread
    over n held-out configurations, in quadrature."""
    if acc.get("value") is None or acc.get("error") is None or not n:
        return None
    sigma = math.hypot(acc["error"], math.sqrt(p0 * (1.0 - p0) / n))
    if sigma == 0:
        return math.copysign(math.inf, acc["value"] - p0) if acc["value"] != p0 else 0.0
    return (acc["value"] - p0) / sigma


def accuracy_gate(within_one: dict, n_t: int, n_heldout: int) -> Gate:
    """Held-out within-one-step accuracy above chance by more than ACCURACY_Z_MIN sigma."""
    p0 = within_one_chance(n_t)
    z = _above_chance_z(within_one, p0, n_heldout)
    if z is None:
        return Gate(False, None, "its held-out accuracy is unknown")
    if z > ACCURACY_Z_MIN:
        return Gate(True, z, "")
    return Gate(False, z, f"its held-out within-one-step accuracy {within_one['value']:.3f} is "
                          f"not above chance ({p0:.3f}) by {ACCURACY_Z_MIN:g}σ (z = {z:+.1f})")


def chance_level(accuracy: dict, n_t: int, n_heldout: int) -> bool:
    """True when the exact-label held-out accuracy is not above 1/n_t by CHANCE_Z sigma."""
    z = _above_chance_z(accuracy, 1.0 / n_t, n_heldout)
    return z is None or z <= CHANCE_Z


def calibration_gate(reading: dict, true_T: float, label: str) -> Gate:
    """The thermometer's reading of Monte Carlo configurations at a known temperature."""
    c = compare(reading, exact_value(true_T))
    z = c["z"]
    if "bound" in reading:
        return Gate(False, None, f"its reading of Monte Carlo at {label} (T = {true_T:.3f}) "
                                 "lies at the end of its range (a bound, not a calibration)")
    if c["verdict"] == "undetermined" or z is None:
        return Gate(False, None, f"it has no reading of Monte Carlo at {label}")
    if abs(z) <= CALIBRATION_Z_MAX:
        return Gate(True, z, "")
    return Gate(False, z, f"it reads Monte Carlo at {label} (T = {true_T:.3f}) as "
                          f"{reading['value']:.3f} (z = {z:+.1f}, beyond ±{CALIBRATION_Z_MAX:g})")


def silent_reasons(gates: list) -> list:
    return [g.reason for g in gates if not g.passed]


def combine_thermometers(per_thermometer: dict) -> tuple[str, list]:
    """{name: (verdict, reasons)} -> (verdict, notes). A thermometer with reasons is silent.
    Decisive verdicts that agree decide; conflicting ones, or none, leave it inconclusive."""
    notes, decisive = [], {}
    for name, (verdict, reasons) in per_thermometer.items():
        if reasons:
            notes.append(f"{name} thermometer silent: " + "; ".join(reasons) + ".")
        else:
            notes.append(f"{name} thermometer: {verdict}.")
            if verdict in (REPRODUCED, NOT_REPRODUCED):
                decisive[name] = verdict
    if not any(not reasons for _, reasons in per_thermometer.values()):
        return INCONCLUSIVE, notes + ["Every thermometer is silent."]
    if len(set(decisive.values())) == 1:
        return next(iter(decisive.values())), notes
    if decisive:
        notes.append("The thermometers disagree.")
    return INCONCLUSIVE, notes


# ---------------------------------------------------------------------------------------------
# Decisions on plain numbers (each tested on hand-made cases)


def rg_local_verdict(own_fraction: dict, peak_to_far: dict, uniform: float) -> str:
    """Claim 1: both locality numbers significantly above a uniform map's."""
    cs = [compare(own_fraction, exact_value(uniform))["verdict"],
          compare(peak_to_far, exact_value(1.0))["verdict"]]
    if "undetermined" in cs:
        return INCONCLUSIVE
    return REPRODUCED if cs == ["higher", "higher"] else NOT_REPRODUCED


def rbm_global_verdict(rbm_own: dict, rg_own: dict, rbm_ptf: dict, rg_ptf: dict) -> str:
    """Claim 2: the RBM's own-block fraction and contrast both significantly below RG's."""
    own, ptf = compare(rbm_own, rg_own)["verdict"], compare(rbm_ptf, rg_ptf)["verdict"]
    if own in ("consistent", "higher"):
        return NOT_REPRODUCED
    if own == "lower" and ptf == "lower":
        return REPRODUCED
    return INCONCLUSIVE


def endpoints_vs_tc(starts: list, finals: list, ref: dict) -> str:
    """Where flows end relative to the Monte Carlo reading at Tc:
    "at Tc" (every final reading consistent with ref, and every start reading resolved from
    it, so the instrument can tell), "away from Tc" (every final significantly off ref),
    "mixed", or "undetermined"."""
    ends = [compare(f, ref)["verdict"] for f in finals]
    begins = [compare(s, ref)["verdict"] for s in starts]
    if "undetermined" in ends:
        return "undetermined"
    if all(v == "consistent" for v in ends):
        return "at Tc" if all(v in ("higher", "lower") for v in begins) else "undetermined"
    if all(v in ("higher", "lower") for v in ends):
        return "away from Tc"
    return "mixed"


def flow_to_tc_verdict(where: str) -> str:
    """Claim 3 from `endpoints_vs_tc`."""
    return {"at Tc": REPRODUCED, "away from Tc": NOT_REPRODUCED,
            "mixed": NOT_REPRODUCED}.get(where, INCONCLUSIVE)


def controls_verdict(wheres: list) -> str:
    """Claim 6: every control training set ends away from Tc."""
    if wheres and all(w == "away from Tc" for w in wheres):
        return REPRODUCED
    if "at Tc" in wheres:
        return NOT_REPRODUCED
    return INCONCLUSIVE


def away_verdict(directions: list) -> str:
    """Claim 5 from the direction words (verdicts.direction) of the starts below and above
    Tc: all move away -> reproduced, any moves toward -> not reproduced."""
    if not directions:
        return INCONCLUSIVE
    if any(d == "moves toward Tc" for d in directions):
        return NOT_REPRODUCED
    if all(d == "moves away from Tc" for d in directions):
        return REPRODUCED
    return INCONCLUSIVE


def consistent_verdict(pairs: list) -> str:
    """Claim 4 from (measured, reference, alternatives) triples: any measured value
    significantly different from its reference -> not reproduced; every one consistent with
    its reference and significantly different from each alternative (the values away from
    the critical point, so the error bar can tell them apart) -> reproduced; otherwise
    inconclusive."""
    vs = [compare(a, b)["verdict"] for a, b, _ in pairs]
    if any(v in ("higher", "lower") for v in vs):
        return NOT_REPRODUCED
    resolved = all(compare(a, alt)["verdict"] in ("higher", "lower")
                   for a, _, alternatives in pairs for alt in alternatives)
    return REPRODUCED if vs and resolved and all(v == "consistent" for v in vs) \
        else INCONCLUSIVE


# ---------------------------------------------------------------------------------------------
# The claims, from results.json


def _exp(results, key):
    return results["experiments"].get(key, {})


def _thermometer_gates(results, L: int, key: str) -> list:
    """The accuracy gate of the classifier at size L (the observables need no training)."""
    if key != "T_mlp":
        return []
    t = results["thermometers"].get(f"L{L}")
    if t is None:
        return [Gate(False, None, f"no classifier at L = {L}")]
    g = t["accuracy_gate"]  # rgflow.core.reproduce.thermometers.judge
    return [Gate(True, g["z"], "") if g["passed"] else
            Gate(False, g["z"], f"at L = {L}, {g['reason']}")]


def flow_silence(results, key: str) -> list:
    """Why a thermometer may not judge the RBM flow (empty: it may): its readings of Monte
    Carlo at Tc and at the two start temperatures, and (classifier) its accuracy."""
    e3 = _exp(results, "3_rbm_flow")
    ref = e3["mc_reference"]
    gates = [calibration_gate(ref[name][key], ref[name]["settings"]["T"], label)
             for name, label in (("tc", "Tc"), ("low", "the low start"),
                                 ("high", "the high start"))]
    return silent_reasons(gates + _thermometer_gates(results, e3["settings"]["L"], key))


def rg_silence(results, start: dict, key: str) -> list:
    """Why a thermometer may not judge one start of the RG temperature flow: its level-0
    reading of the start's Monte Carlo configurations, and (classifier) the accuracy of the
    thermometer of every level."""
    T = start["settings"]["T_start"]
    gates = [calibration_gate(start["levels"][0][key], T, "the start temperature")]
    for lv in start["levels"]:
        gates += _thermometer_gates(results, lv["settings"]["L"], key)
    return silent_reasons(gates)


def claim_rg_local(results) -> Claim:
    e1 = next(iter(_exp(results, "1_correlators").values()))
    rg, s = e1["rg"], e1["settings"]
    verdict = rg_local_verdict(rg["own_block_fraction"], rg["peak_to_far"],
                               s["uniform_own_block_fraction"])
    numbers = [("RG own-block mean ⟨v h⟩", rg.get("own_block_mean", meas(None, None))),
               ("RG far-field mean ⟨v h⟩", rg.get("far_mean", meas(None, None))),
               ("RG own-block fraction", rg["own_block_fraction"]),
               ("RG peak-to-far contrast", rg["peak_to_far"])]
    return Claim(1, "RG ⟨v h⟩ maps are local: a sharp maximum (about +0.8) on the unit's own "
                 "2×2 block, a halo decaying to a flat background (about +0.45)",
                 f"arXiv:1906.05212, first author's blog figure ({s['L'] ** 2} → "
                 f"{s['n_hidden']} at Tc)",
                 f"RG own-block fraction above the uniform value "
                 f"{s['uniform_own_block_fraction']:.4g} and peak-to-far contrast above 1, "
                 "both significantly", verdict, numbers)


def claim_rbm_global(results) -> Claim:
    e1 = next(iter(_exp(results, "1_correlators").values()))
    rg, rbm = e1["rg"], e1["rbm"]
    verdict = rbm_global_verdict(rbm["own_block_fraction"], rg["own_block_fraction"],
                                 rbm["peak_to_far"], rg["peak_to_far"])
    numbers = [("RBM own-block mean ⟨v h⟩", rbm.get("own_block_mean", meas(None, None))),
               ("RBM far-field mean ⟨v h⟩", rbm.get("far_mean", meas(None, None))),
               ("RBM own-block fraction", rbm["own_block_fraction"]),
               ("RG own-block fraction", rg["own_block_fraction"]),
               ("RBM peak-to-far contrast", rbm["peak_to_far"]),
               ("RG peak-to-far contrast", rg["peak_to_far"])]
    return Claim(2, "A trained RBM's ⟨v h⟩ maps are global, not RG-like: nearly uniform at "
                 "±0.5–0.7 with no local peak", "arXiv:1906.05212, same figure",
                 "RBM own-block fraction and peak-to-far contrast both significantly below "
                 "RG's (RBM units measured on their best block)", verdict, numbers)


def _flow_claim_inputs(results, train_set: str, key: str):
    """(starts, finals, Tc reading, flows) of one training set's flows, one thermometer."""
    e3 = _exp(results, "3_rbm_flow")
    flows = [rb for label, rb in e3["rbms"].items() if label.split("-h")[0] == train_set]
    starts = [st[key]["step0"] for rb in flows for st in rb["starts"].values()]
    finals = [st[key]["final"] for rb in flows for st in rb["starts"].values()]
    return starts, finals, e3["mc_reference"]["tc"][key], flows


def claim_flow_to_tc(results) -> Claim:
    per, numbers = {}, []
    for key, name in THERMOMETERS.items():
        starts, finals, ref, flows = _flow_claim_inputs(results, "mixed", key)
        where = endpoints_vs_tc(starts, finals, ref) if flows else "undetermined"
        per[name] = (flow_to_tc_verdict(where), flow_silence(results, key))
        numbers.append((f"Monte Carlo at Tc, {name} T", ref))
        for rb in flows:
            for start, st in rb["starts"].items():
                numbers.append((f"last step from {start}, {name} T", st[key]["final"]))
    verdict, notes = combine_thermometers(per)
    if not _exp(results, "3_rbm_flow").get("rbms"):
        verdict = NOT_RUN
    return Claim(3, "An RBM trained on the whole temperature grid flows towards a fixed point "
                 "near Tc from low T, high T and random spins (the opposite of RG)",
                 "Iso, Shiba, Yokoo, PRE 97, 053304 (2018), arXiv:1801.07172",
                 "per thermometer that passes its gates: the last step's T from every start "
                 "consistent with the thermometer's reading of Monte Carlo at Tc (which the "
                 "starts were significantly away from)", verdict, numbers, notes)


def claim_scaling_dimensions(results) -> Claim:
    e3 = _exp(results, "3_rbm_flow")
    mc = e3["mc_reference"]
    ref = mc["tc"]
    off = [mc[k] for k in ("low", "high") if k in mc]  # Monte Carlo at the start temperatures
    numbers = []
    for name, where in (("Tc", ref), *((f"T = {m['settings']['T']:g}", m) for m in off)):
        numbers += [(f"Monte Carlo at {name}, Δσ", where["delta_sigma"]),
                    (f"Monte Carlo at {name}, Δε", where["delta_epsilon"])]
    pairs = []
    for label, rb in e3["rbms"].items():
        if label.split("-h")[0] != "mixed":
            continue
        for start, st in rb["starts"].items():
            pairs += [(st["delta_sigma_final"], ref["delta_sigma"],
                       [m["delta_sigma"] for m in off]),
                      (st["delta_epsilon_final"], ref["delta_epsilon"],
                       [m["delta_epsilon"] for m in off])]
            numbers += [(f"last step from {start}, Δσ", st["delta_sigma_final"]),
                        (f"last step from {start}, Δε", st["delta_epsilon_final"])]
    return Claim(4, "At that fixed point the scaling dimensions approach Ising's, Δσ = 1/8 and "
                 "Δε = 1", "arXiv:1906.05212 and its companion paper",
                 f"the last step's Δσ and Δε from every start consistent with the same fits on "
                 f"Monte Carlo at Tc (L = {e3['settings']['L']}, window "
                 f"{e3['settings']['fit_window']}) and significantly different from the fits on "
                 f"Monte Carlo at the start temperatures",
                 consistent_verdict(pairs) if pairs else NOT_RUN, numbers)


def claim_rg_away(results) -> Claim:
    e2 = _exp(results, "2_rg_temperature")
    per, numbers = {}, []
    for key, name in THERMOMETERS.items():
        dirs, reasons = [], []
        flow_key = "obs_flow" if key == "T_obs" else "mlp_flow"
        for st in e2["starts"]:
            side, T = st["settings"]["side"], st["settings"]["T_start"]
            if side == "at":
                continue
            numbers += [(f"{name} T at level {lv['settings']['level']} from T = {T:.3f}",
                         lv[key]) for lv in (st["levels"][0], st["levels"][-1])]
            dirs.append(st[flow_key]["verdict"])
            reasons += [f"start T = {T:.3f}: {r}" if r.startswith("it ") else r
                        for r in rg_silence(results, st, key)]
        per[name] = (away_verdict(dirs), list(dict.fromkeys(reasons)))
    verdict, notes = combine_thermometers(per)
    return Claim(5, "RG (majority rule) moves temperatures away from Tc: Tc is RG's unstable "
                 "fixed point", "arXiv:1906.05212 (standard RG)",
                 "per thermometer that passes its gates: the starts below and above Tc both "
                 "move significantly away from Tc between level 0 and the last level",
                 verdict, numbers, notes)


def claim_controls(results) -> Claim:
    per, numbers = {}, []
    for key, name in THERMOMETERS.items():
        wheres = []
        for ts in ("high", "low"):
            starts, finals, ref, flows = _flow_claim_inputs(results, ts, key)
            if not flows:
                continue
            wheres.append(endpoints_vs_tc(starts, finals, ref))
            for rb in flows:
                for start, st in rb["starts"].items():
                    numbers.append((f"{ts}-T RBM, last step from {start}, {name} T",
                                    st[key]["final"]))
        per[name] = (controls_verdict(wheres), flow_silence(results, key))
    verdict, notes = combine_thermometers(per)
    if not any(label.split("-h")[0] in ("high", "low")
               for label in _exp(results, "3_rbm_flow").get("rbms", {})):
        verdict = NOT_RUN
    return Claim(6, "RBMs trained only on high-T data, or only on low-T data, do not flow to Tc",
                 "Veiga & Vicente, arXiv:2006.10176 (2020)",
                 "per thermometer that passes its gates: for both training sets, the last "
                 "step's T from every start significantly different from the Monte Carlo "
                 "reading at Tc", verdict, numbers, notes)


def claim_stacked(results) -> Claim:
    e4 = _exp(results, "4_stacked")
    numbers = []
    for lv in e4.get("levels", []):
        k = lv["settings"]["level"]
        numbers += [(f"level {k}, RG own-block fraction", lv["rg"]["own_block_fraction"]),
                    (f"level {k}, RBM own-block fraction", lv["rbm"]["own_block_fraction"])]
    return Claim(7, "Stacked RBMs next to the RG hierarchy", "arXiv:1906.05212 (no number given)",
                 "none: the own-block fraction per level is measured and shown",
                 MEASURED if numbers else NOT_RUN, numbers,
                 [] if numbers else [e4.get("skipped", "not run") + "."])


def local_fields_verdict(per_field: list) -> str:
    """Claim 8. per_field: for each receptive field, (own-block fraction vs the global
    RBM's, peak-to-far contrast vs 1) comparisons. Reproduced when every local RBM is
    significantly more concentrated on its block than the global RBM and has a local peak
    (contrast significantly above 1); not reproduced when one is significantly not."""
    verdicts = [(own["verdict"], ptf["verdict"]) for own, ptf in per_field]
    if not verdicts:
        return NOT_RUN
    if all(v == ("higher", "higher") for v in verdicts):
        return REPRODUCED
    if any(own in ("consistent", "lower") or ptf in ("consistent", "lower")
           for own, ptf in verdicts):
        return NOT_REPRODUCED
    return INCONCLUSIVE


def claim_local_fields(results) -> Claim:
    e5 = _exp(results, "5_local")
    models = e5.get("models", {})
    local = {k: m for k, m in models.items() if k != "global"}
    verdict = local_fields_verdict([(m["vs_global"]["own_block_fraction"],
                                     m["peak_to_far_vs_1"]) for m in local.values()])
    numbers = []
    if "rg" in e5:
        numbers.append(("RG own-block fraction", e5["rg"]["own_block_fraction"]))
    for label, m in models.items():
        numbers += [(f"RBM {label} own-block fraction", m["own_block_fraction"]),
                    (f"RBM {label} peak-to-far contrast", m["peak_to_far"])]
    return Claim(8, "RBMs restricted to local receptive fields have RG-like ⟨v h⟩ maps",
                 "de Mello Koch, de Mello Koch, Kastanos, Cheng, \"Short-sighted deep "
                 "learning\", PRE 102, 013307 (2020)",
                 "for every receptive field R: own-block fraction significantly above the "
                 "global RBM's and peak-to-far contrast significantly above 1 (ensembles over "
                 "training seeds)", verdict, numbers)


CLAIMS = [claim_rg_local, claim_rbm_global, claim_flow_to_tc, claim_scaling_dimensions,
          claim_rg_away, claim_controls, claim_stacked, claim_local_fields]


def evaluate_claims(results: dict) -> list:
    """Every claim's row as a dict (for results.json and the report)."""
    return [claim(results).as_dict() for claim in CLAIMS]

