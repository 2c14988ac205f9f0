"""Markdown pieces of report.md: value ± error, z, tables, verdict sentences."""

import math


def pm(m) -> str:
    """value ± error with the error to two significant digits; bounds as >= / <=."""
    if isinstance(m, dict) and m.get("estimate_without_error") is not None:
        return f"{m['estimate_without_error']:.4g} (no error bar)"
    if not isinstance(m, dict) or m.get("value") is None:
        return "n/a"
    v, e = m["value"], m.get("error")
    if "bound" in m:
        return ("≥ " if m["bound"] == "lower" else "≤ ") + f"{v:.4g} (range end)"
    if e is not None and e <= 1e-9 * max(abs(v), 1.0):
        return f"{0.0 if abs(v) < 1e-12 else v:.4g} ± 0"
    if not e:
        return f"{v:.4g}"
    d = min(8, max(0, 1 - int(math.floor(math.log10(e)))))
    return f"{v:.{d}f} ± {e:.{d}f}"


def zs(c: dict) -> str:
    z = c.get("z")
    return "n/a" if z is None else f"{z:+.1f}σ"


def md_table(header, rows) -> list:
    """A Markdown table; a "|" inside a cell (as in ⟨|m|⟩) is escaped."""
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h in header) + " |",
             "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(x).replace("|", "\\|") for x in row) + " |"
              for row in rows]
    return lines + [""]


def verdict_words(c: dict, higher: str, lower: str, same: str) -> str:
    return {"higher": higher, "lower": lower, "consistent": same}.get(c["verdict"],
                                                                      "undetermined")
