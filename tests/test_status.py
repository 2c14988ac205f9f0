"""The status line as a pure function: what stays at each width."""

from types import SimpleNamespace

from rgflow.core.exact import TC
from rgflow.tui.status import StatusContext, status_text

FRAME = SimpleNamespace(T=2.5, acceptance=0.4, L=64, algorithm="metropolis", sweeps=100,
                        train_step=5, training=True, save_name=None, unsaved=True,
                        dataset_count=1000, tau_int_sweeps=12.34, independent_samples=40.4)


def ctx(**kw):
    base = dict(view_number=4, view_count=5, view_title="Plots", page=1, pages=3,
                paged=False, running=True, fps=12)
    return StatusContext(**{**base, **kw})


def test_wide_line_has_the_view_and_T_over_Tc():
    line = status_text(FRAME, {"rate": 1e6}, ctx(), 200)
    assert "4/5 Plots 2/3" in line and f"T/Tc={2.5 / TC:.3f}" in line
    assert "1.00M flips/s" in line and "▶ running" in line and "unsaved *" in line


def test_at_Tc_no_ratio():
    line = status_text(SimpleNamespace(**{**vars(FRAME), "T": TC}), {}, ctx(), 200)
    assert "(Tc)" in line and "T/Tc" not in line


def test_narrow_lines_keep_state_T_view_and_page():
    for width in (80, 60, 40, 30):
        line = status_text(FRAME, {}, ctx(paged=True), width)
        assert len(line) <= width
        assert ("view 4/5 page 2/3" in line) or ("v4/5 p2/3" in line), (width, line)
        assert "▶" in line and "T=2.5000" in line


def test_at_80_columns_the_unsaved_mark_outlasts_L_and_the_algorithm():
    line = status_text(FRAME, {}, ctx(paged=True), 80)
    assert "unsaved *" in line and "view 4/5 page 2/3" in line
    assert "metropolis" not in line  # it did not fit beside them
    at_tc = status_text(SimpleNamespace(**{**vars(FRAME), "T": TC}), {}, ctx(paged=True), 80)
    assert "unsaved *" in at_tc and "L=64 metropolis" in at_tc  # at Tc both fit


def test_a_pending_temperature_is_shown_with_an_arrow():
    line = status_text(FRAME, {}, ctx(pending_T=2.6), 200)
    assert "T→2.6000" in line


def test_the_sessions_own_tau_int_and_effective_samples_are_shown():
    line = status_text(FRAME, {}, ctx(), 250)
    assert "τ_int 12.3 sweeps n_eff 40/1000" in line
    unmeasured = SimpleNamespace(**{**vars(FRAME), "tau_int_sweeps": float("nan"),
                                    "independent_samples": 1000.0})
    assert "τ_int – n_eff –/1000" in status_text(unmeasured, {}, ctx(), 250)
