"""The status line: a pure function of a published Frame and what the UI knows."""

from dataclasses import dataclass

import numpy as np

from rgflow.core.exact import TC


@dataclass(frozen=True)
class StatusContext:
    """The UI's part of the status line."""

    view_number: int  # 1-based
    view_count: int
    view_title: str
    page: int = 0  # 0-based
    pages: int = 1
    paged: bool = False  # a compact/tiny layout: where you are matters more
    ready: bool = True
    loading_text: str = ""
    running: bool = False
    pending_T: float | None = None  # a temperature asked for, not yet in a frame
    fps: float = 0.0
    job_text: str = ""  # a background job's progress (reproduce)


def status_text(f, extras: dict, ctx: StatusContext, width: int) -> str:
    """The status line. Fields are dropped, least important first, until it fits."""
    if not ctx.ready:
        glyph, state = "⧗", f"⧗ {ctx.loading_text or 'starting'}"
    else:
        # ‖ rather than ⏸: fonts without ⏸ show a box, and emoji fonts draw it two cells wide
        glyph = "▶" if ctx.running else "‖"
        state = f"{glyph} running" if ctx.running else f"{glyph} paused"
    T, arrow = (f.T, "=") if ctx.pending_T is None else (ctx.pending_T, "→")
    tc = " (Tc)" if abs(T - TC) < 5e-5 else f" T/Tc={T / TC:.3f}"
    acc = "–" if np.isnan(f.acceptance) else f"{f.acceptance:.3f}"
    rate = extras.get("rate", float("nan"))
    rate_text = "–" if not np.isfinite(rate) else si(rate)
    job = extras.get("job")
    train = f"train {f.train_step}" + ("" if f.training else " off")
    if job:
        train += f" job {job[0]}/{job[1]}"
    name = (f.save_name or "unsaved") + (" *" if f.unsaved else "")
    page = f" {ctx.page + 1}/{ctx.pages}" if ctx.pages > 1 else ""
    view = f"{ctx.view_number}/{ctx.view_count} {ctx.view_title}{page}"
    if ctx.paged:
        view = f"view {ctx.view_number}/{ctx.view_count}" + (
            f" page {ctx.page + 1}/{ctx.pages}" if ctx.pages > 1 else "")
    # (priority, text): lower numbers survive longer; the view is always there
    # the save's name and its unsaved mark outlast L and the algorithm: at 80 columns they
    # say whether quitting would lose work
    fields = [(0, state), (0, f"T{arrow}{T:.4f}{tc}"), (2, f"L={f.L} {f.algorithm}"),
              (4, f"sweeps {f.sweeps}"), (5, sampling_text(f)), (6, f"acc {acc}"),
              (3, f"{rate_text} flips/s"), (3, train), (7, f"{ctx.fps:.0f} fps"),
              (1, name), (0, view)]
    if ctx.job_text:
        fields.append((3, ctx.job_text))
    for limit in range(8, -1, -1):
        parts = [text for prio, text in fields if prio <= limit]
        line = " " + " │ ".join(parts)
        if len(line) <= width:
            return line
    # very narrow: the short forms of what must stay (state, T, view and page)
    short_view = f"v{ctx.view_number}/{ctx.view_count}" + (
        f" p{ctx.page + 1}/{ctx.pages}" if ctx.pages > 1 else "")
    short_T = f"T{arrow}{T:.4f}" + ("" if tc == " (Tc)" else f" {T / TC:.3f}Tc")
    line = " " + " │ ".join((glyph, short_T, short_view))
    if len(line) > width:  # narrower still: the ratio to Tc goes before the view does
        line = " " + " │ ".join((glyph, f"T{arrow}{T:.4f}", short_view))
    return line[:max(0, width)]


def sampling_text(f) -> str:
    """The session's own live measurement (core Frame): τ_int in sweeps of the slower of
    E and |m|, and how many independent samples the dataset's samples are worth."""
    tau, n_eff = f.tau_int_sweeps, f.independent_samples
    if not np.isfinite(tau):
        return f"τ_int – n_eff –/{f.dataset_count}"
    return f"τ_int {tau:.1f} sweeps n_eff {n_eff:.0f}/{f.dataset_count}"


def si(x: float) -> str:
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if x >= scale:
            return f"{x / scale:.2f}{unit}"
    return f"{x:.0f}"
