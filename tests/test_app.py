"""The Textual app, driven by Pilot: every key and palette command changes the session as it
should and the screen shows it; layouts from 40x12 to 200x60; keys are handled in the middle
of a long worker chunk; quitting, saving, opening (also of damaged files) and headless resume.

Waiting is always on a condition (the app's `settled` signal: every command run, published
and drawn), bounded by a timeout, never a fixed sleep.
"""

import asyncio
import gc
import re
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from textual.widgets import Input

import rgflow.tui.driver as driver_module
from rgflow.core.config import SessionConfig
from rgflow.core.exact import TC
from rgflow.core.session import Session
from rgflow.tui.app import PANES, VIEWS, create_app
from rgflow.tui.files import list_autosaves
from rgflow.tui.screens.dialogs import ConfirmQuit, InputDialog, SaveBrowser, SaveDialog
from rgflow.tui.screens.help import HelpScreen
from rgflow.tui.status import sampling_text

CFG = dict(L=8, batch=10, chains=10, dataset_capacity=50, sample_spacing=2, flow_chains=4,
           monitor_every=5, history=64, seed=1)
GLYPHS = set(" ▄▀█")


def new_session(**changes) -> Session:
    return Session(SessionConfig(**{**CFG, **changes}))


def make_app(tmp_path: Path, session: Session | None = None, **kwargs):
    options = {"warm_up": False, "autorun": False, "threads": 1, "fps": 10,
               "saves_dir": tmp_path / "saves", **kwargs}
    return create_app(session or new_session(), **options)


async def until(pilot, predicate, what: str, timeout: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.01)


async def settle(pilot) -> None:
    await until(pilot, lambda: pilot.app.settled, "the worker to run every command")
    await pilot.pause()  # let layout and refresh catch up with the drawn frame


async def press(pilot, *keys: str) -> None:
    await pilot.press(*keys)
    await settle(pilot)


def run(app, body, size=(120, 40)) -> None:
    async def main() -> None:
        async with app.run_test(size=size) as pilot:
            await until(pilot, lambda: app.live, "the first frame")
            await settle(pilot)
            await body(pilot)

    asyncio.run(main())


def status(app) -> str:
    return app.w("status").render_line(0).text


def lines(widget) -> list[str]:
    return [widget.render_line(y).text for y in range(widget.size.height)]


def notifications(app) -> list[str]:
    return [n.message for n in app._notifications]


def steps(app) -> int:
    return app.session.step_count


# ---------------------------------------------------------------------------------------------
# start-up


def test_collector_comes_back_on_when_start_up_compiles():
    gc.disable()  # as `rgflow` starts the app
    try:
        driver_module.collector_on_if_compiling(time.perf_counter())
        assert not gc.isenabled()  # a quick (cached) step leaves it off until ready
        driver_module.collector_on_if_compiling(
            time.perf_counter() - 2 * driver_module.COMPILING_SECONDS)
        assert gc.isenabled()
    finally:
        gc.enable()


def test_loading_indicator_then_live_lattice_with_actions_greyed_until_ready(tmp_path):
    session = new_session()
    display_gate, kernel_gate = threading.Event(), threading.Event()
    frame = session.frame

    def gated_frame(*args, **kwargs):
        display_gate.wait(30)
        return frame(*args, **kwargs)

    session.frame = gated_frame
    app = make_app(tmp_path, session, warm_up=True, autorun=True)
    stages = app.driver.warm_up_stages

    def gated_stages():
        return [("test gate", lambda: kernel_gate.wait(30)), *stages()]

    app.driver.warm_up_stages = gated_stages

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: "display" in app.loading_text, "the loading text")
            assert app.w("views").current == "loading"
            assert "Loading the display kernels" in str(app.w("loading-text").render())
            assert app.w("loading-progress").total == 6
            assert app.check_action("toggle_run", ()) is None  # greyed out
            # loading that lasts (a cold numba cache) gets the animated spinner too
            await until(pilot, lambda: app.w("loading-spinner").display, "the spinner")
            display_gate.set()
            await until(pilot, lambda: app.live, "the live view")
            await until(pilot, lambda: "test gate" in status(app), "the compile stage")
            # the lattice is already on screen, the actions are still greyed out
            assert app.w("views").current == "dashboard"
            await until(pilot, lambda: any(set(row) <= GLYPHS and row.strip()
                                           for row in lines(app.w("lattice"))),
                        "the lattice drawn")
            assert "⧗ Loading test gate" in status(app)
            assert app.check_action("step", ()) is None
            assert not app.running
            kernel_gate.set()
            await until(pilot, lambda: app.ready, "the kernels")
            # `rgflow` starts with the collector off; the app turns it back on, once
            # "running" is on screen
            await until(pilot, gc.isenabled, "the collector back on")
            assert app.check_action("toggle_run", ()) is True
            assert "Loading Monte Carlo kernels" in app.loading_log
            # a new session starts running by itself once ready
            await until(pilot, lambda: steps(app) > 0, "the simulation to run")
            await until(pilot, lambda: "▶ running" in status(app), "the running status")
            await until(pilot, lambda: "flips/s" in status(app)
                        and "– flips/s" not in status(app), "a simulation rate")

    gc.disable()  # as `rgflow` starts the app
    try:
        asyncio.run(main())
    finally:
        gc.enable()


def test_a_new_session_shows_its_lattice_before_the_session_exists(tmp_path, monkeypatch):
    """The first frame of `rgflow` is the preview of core/frame.py, drawn while numba loads:
    the lattice the session starts from, with actions greyed out; the session's own frame
    replaces it."""
    import rgflow.core.session as session_module
    from rgflow.core.frame import initial_frame

    gate = threading.Event()

    class GatedSession(Session):  # stands for numba's loading, however long it takes
        def __init__(self, config=None):
            gate.wait(30)
            super().__init__(config)

    monkeypatch.setattr(session_module, "Session", GatedSession)
    config = SessionConfig(**CFG)
    app = create_app(None, config=config, warm_up=False, autorun=False, threads=1, fps=10,
                     saves_dir=tmp_path / "saves")
    expected = initial_frame(config).spins

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.live, "the preview on screen")
            await pilot.pause()
            assert app.session is None and app.driver.published.frame.preview
            np.testing.assert_array_equal(app.w("lattice")._spins, expected)
            assert "⧗ Creating the session" in status(app)
            assert app.check_action("toggle_run", ()) is None and not app.driver.caught_up
            await pilot.press("2")  # a view without a preview shows its empty panes
            await pilot.press("1")
            app.export_view()
            await pilot.pause()
            assert any("still starting" in n for n in notifications(app))
            gate.set()
            await until(pilot, lambda: app.ready, "the kernels")
            await settle(pilot)
            assert not app.driver.published.frame.preview
            np.testing.assert_array_equal(app.session.spins, expected)  # not run yet
            np.testing.assert_array_equal(app.w("lattice")._spins, expected)
            rg_pane = app.w(app.w("rg-pane").current)
            assert "level 1/" in rg_pane.border_title  # the session's own frame drawn

    asyncio.run(main())


def test_the_worker_loads_more_kernels_only_once_the_live_frame_is_on_screen(tmp_path):
    app = make_app(tmp_path, warm_up=True)
    drawn_at_warm_up = []
    app.driver.warm_up_stages = lambda: [
        ("test stage", lambda: drawn_at_warm_up.append(app.frames_drawn))]

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.ready, "the kernels")
            # the other views are composed after the first frame, and then drawn
            assert all(app.w(view).built for view in VIEWS) and app.views_built
            await press(pilot, "2")
            assert app.w("rbm-weights").size.width > 0

    asyncio.run(main())
    assert drawn_at_warm_up and drawn_at_warm_up[0] >= 1


# ---------------------------------------------------------------------------------------------
# keys


def test_every_key_changes_the_session_and_the_screen(tmp_path):
    app = make_app(tmp_path)

    async def body(pilot):
        assert "‖ paused" in status(app) and "T=2.2692 (Tc)" in status(app)
        assert any(set(row) <= GLYPHS and row.strip() for row in lines(app.w("lattice")))

        await press(pilot, "n")
        assert steps(app) == 1 and "sweeps 1 " in status(app) and "unsaved *" in status(app)

        await press(pilot, "=")
        assert app.session.T == pytest.approx(round(TC + 0.01, 6))
        await press(pilot, "+")
        assert app.session.T == pytest.approx(round(round(TC + 0.01, 6) + 0.1, 6))
        assert "T=2.3792" in status(app)
        await press(pilot, "-")
        await press(pilot, "_")
        assert app.session.T == pytest.approx(TC, abs=2e-6)

        for expected in ("heatbath", "wolff", "metropolis"):
            await press(pilot, "a")
            assert app.session.algorithm == expected and expected in status(app)

        rg_pane = app.w("rg-pane")
        await press(pilot, "r")
        assert app.session.rg_rule == "majority" and rg_pane.current == "rg-spins"
        assert "RG majority level 1/3" in app.w("rg-spins").border_title
        await press(pilot, "r", "r")
        assert app.session.rg_rule == "average" and rg_pane.current == "rg-map"
        await press(pilot, "right_square_bracket")
        assert app.rg_level_index == 1 and "level 2/3 (2×2)" in app.w("rg-map").border_title
        await press(pilot, "]", "]")
        assert app.rg_level_index == 2  # clamped at the last level
        await press(pilot, "[", "[", "[")
        assert app.rg_level_index == 0

        await press(pilot, "t")
        assert app.session.training is False and "train 0 off" in status(app)
        await press(pilot, "t")
        assert app.session.training is True

        await press(pilot, "f")
        assert app.session.flow_step_count == 1
        await press(pilot, "f")
        assert app.session.flow_step_count == 2

        # hidden units: L=8 -> 16 units on a 4x4 grid
        await press(pilot, "2")
        assert app.view == "rbm"
        for key, unit in (("right", 1), ("down", 5), ("left", 4), ("up", 0),
                          ("l", 1), ("j", 5), ("h", 4), ("k", 0), ("up", 0)):
            await press(pilot, key)
            assert app.selected_unit == unit, key
        await press(pilot, "down", "right")
        assert "hidden unit 5 (row 1, col 1)" in app.w("rbm-weights").border_title
        np.testing.assert_array_equal(app.driver.published.extras["weights"],
                                      app.session.trainer.rbm.W[:, 5].reshape(8, 8))
        assert "unit 5" in "".join(lines(app.w("rbm-info")))

        await press(pilot, "1")
        stopped_before_help = steps(app)
        for key, view in (("v", "rbm"), ("tab", "correlators"), ("shift+tab", "rbm"),
                          ("4", "plots"), ("5", "flow"), ("v", "dashboard"), ("3", "correlators")):
            await press(pilot, key)
            assert app.view == view, key
            assert app.w("views").current == view
            assert f"{VIEWS.index(view) + 1}/5" in status(app)

        for key in ("question_mark", "f1"):
            await press(pilot, key)
            assert isinstance(app.screen, HelpScreen)
            assert "run / pause" in app.screen.query_one("Markdown").source
            await press(pilot, "space", "n")  # main-screen keys do nothing here
            assert not app.running and steps(app) == stopped_before_help
            await press(pilot, "escape")
            assert app.main_screen_active

        await press(pilot, "space")
        assert app.running and "▶ running" in status(app)
        start = steps(app)
        await until(pilot, lambda: steps(app) > start + 20, "steps while running")
        await press(pilot, "space")
        assert not app.running and "‖ paused" in status(app)
        stopped = steps(app)
        await press(pilot, "n")
        assert steps(app) == stopped + 1  # nothing else ran after the pause

    run(app, body)


def test_views_show_live_analysis(tmp_path):
    app = make_app(tmp_path)

    async def body(pilot):
        app.submit(lambda s: s.run_steps(60) and None)
        await press(pilot, "f")
        await press(pilot, "3")
        await until(pilot, lambda: "corr" in app.analysis, "the correlator maps")
        await settle(pilot)
        info = "\n".join(lines(app.w("corr-info")))
        assert "own-block" in info and "peak/far" in info and "RBM" in info
        assert "not connected" in app.w("corr-rbm").border_title
        assert "not connected" in app.w("corr-rg").border_title
        await press(pilot, "c")  # the connected maps, with their own locality numbers
        title = app.w("corr-rbm").border_title
        assert "connected" in title and "not connected" not in title
        info = "\n".join(lines(app.w("corr-info")))
        assert "connected ⟨v h⟩ − ⟨v⟩⟨h⟩" in info and "not conn.  connected" in info
        c = app.analysis["corr"]
        lim = max(np.abs(c["rg_c"][0]).max(), np.abs(c["rbm_c"][0]).max())
        from rgflow.tui.widgets.palette import quantise

        np.testing.assert_array_equal(app.w("corr-rbm").levels,
                                      quantise(c["rbm_c"][0], -lim, lim, 11))
        await press(pilot, "c")
        assert "not connected" in app.w("corr-rbm").border_title
        c = app.analysis["corr"]
        assert c["rg"].shape == (16, 8, 8) and c["rbm"].shape == (16, 8, 8)
        assert 0 < c["rg_own_stats"]["mean"] <= 1
        assert app.w("corr-rbm").levels is not None and app.w("corr-grid").levels is not None

        await press(pilot, "4")
        await until(pilot, lambda: "gr" in app.analysis, "G(r)")
        await settle(pilot)
        names = app.w("plot-gr").series_names
        assert "data" in names and "RBM recon." in names and any(n.startswith("RG") for n in names)
        assert {"recon. error"} <= set(app.w("plot-train").series_names)
        assert {"E/N", "Onsager E/N"} <= set(app.w("plot-energy").series_names)
        assert {"|m|", "Onsager |m|"} <= set(app.w("plot-m").series_names)
        assert "flow ⟨|m|⟩" in app.w("plot-flow-m").series_names
        assert "flow T (Onsager E)" in app.w("plot-flow-t").series_names
        # legends above the data, "ago" counted up from 0, own axes, tau_int, log-log
        m_plot, train, gr = app.w("plot-m"), app.w("plot-train"), app.w("plot-gr")
        await until(pilot, lambda: any("steps ago" in row for row in lines(m_plot)),
                    "the |m| plot")
        rows = lines(m_plot)
        assert "|m|" in rows[0] and "Onsager |m|" in rows[0]  # the legend line, above
        assert not any(re.search(r"-\d", row) for row in rows)
        # the session's own tau_int and effective sample count, on the status line
        f = app.driver.published.frame
        assert app.w("plot-energy").border_subtitle == sampling_text(f)
        screen = app.export_screenshot().replace("&#160;", " ")
        assert sampling_text(f).replace(" ", "") in re.sub(r"<[^>]*>|\s", "", screen)
        await until(pilot, lambda: "RBM recon." in "\n".join(lines(gr)), "the G(r) legend")
        assert all(name in "\n".join(lines(gr)) for name in gr.series_names)
        assert train._series["F gap"].yside == "right"  # its own scale
        assert train._series["recon. error"].yside == "left"
        # both y labels and the x label fit on its last line, in a 38-column pane
        await until(pilot, lambda: "F gap" in lines(train)[-1], "the training plot")
        assert "training step" in lines(train)[-1] and train.size.width <= 40
        await press(pilot, "g")
        assert app.gr_log and gr._scales == {"xscale": "log", "yscale": "log"}
        assert "r^(-1/4)" in gr.series_names and "log-log" in gr.border_title
        await press(pilot, "g")
        assert gr._scales["xscale"] == "linear" and "r^(-1/4)" not in gr.series_names

        await press(pilot, "5")
        text = "\n".join(lines(app.w("flow-info")))
        assert "flow step 1, 4 chains" in text and "T from E/N (Onsager)" in text
        assert "chains" in app.w("flow-hist").series_names
        flow_rows = lines(app.w("flow-0"))
        assert any(set(row) <= GLYPHS | {"│", "─", "╭", "╮", "╰", "╯"} and row.strip()
                   for row in flow_rows)

    run(app, body)


def test_key_is_handled_while_a_long_chunk_runs(tmp_path, monkeypatch):
    # a chunk would run 60 s; keys must be handled after the current step, not the chunk
    monkeypatch.setattr(driver_module, "CHUNK_SECONDS", 60.0)
    saves = tmp_path / "saves"
    app = make_app(tmp_path, save_path=saves / "long.npz")
    app.fps = 1 / 60  # a chunk also ends for the next frame: make that a minute away too

    async def body(pilot):
        loop = asyncio.get_running_loop()
        await pilot.press("space")
        await until(pilot, lambda: app.session.sweeps > 50, "the chunk to run")
        t0 = loop.time()
        await pilot.press("equals_sign")
        await until(pilot, lambda: app.session.T > TC, "T +0.01 during the chunk", timeout=10)
        assert loop.time() - t0 < 10 and app.running
        await until(pilot, lambda: "T=2.2792" in status(app), "the new T on screen", timeout=10)
        await pilot.press("s")
        await until(pilot, lambda: (saves / "long.npz").exists(), "the save", timeout=10)
        await pilot.press("space")
        assert "‖ paused" in status(app)  # drawn at once, on the UI thread
        await until(pilot, lambda: app.settled, "the worker to stop", timeout=10)
        stopped = steps(app)
        await pilot.pause(0.2)
        assert steps(app) == stopped

    run(app, body)


# ---------------------------------------------------------------------------------------------
# files


def test_save_open_and_headless_resume_both_ways(tmp_path):
    from rgflow.tui.__main__ import main as cli

    saves = tmp_path / "saves"
    app = make_app(tmp_path)

    async def body(pilot):
        await press(pilot, "n", "n", "n")
        await press(pilot, "s")
        assert isinstance(app.screen, SaveDialog)
        await until(pilot, lambda: app.screen.entries is not None, "the saves list")
        await pilot.press(*"first", "enter")
        await settle(pilot)
        assert (saves / "first.npz").exists()
        assert "first" in status(app) and "first *" not in status(app)
        assert Session.load(saves / "first.npz").step_count == 3

        await press(pilot, "n")
        await press(pilot, "s")  # known name now: saves at once, no dialog
        assert app.main_screen_active
        assert Session.load(saves / "first.npz").step_count == 4

        # headless resume of the app's save, then open the result in the app
        assert cli(["resume", "first", "--steps", "5", "--saves-dir", str(saves)]) == 0
        assert Session.load(saves / "first.npz").step_count == 9
        old = app.session
        await press(pilot, "o")
        assert isinstance(app.screen, SaveBrowser)
        await until(pilot, lambda: app.screen.entries is not None, "the saves list")
        listing = "\n".join(lines(app.screen.query_one("#browser-list")))
        assert "first" in listing and "steps=9" in listing and "L=8" in listing
        await pilot.press("enter")
        await settle(pilot)
        assert app.session is not old and steps(app) == 9 and app.save_path == saves / "first.npz"
        await press(pilot, "n")
        assert steps(app) == 10

        # a session written headless opens in the app
        assert cli(["run", "--steps", "4", "--save", "headless", "--saves-dir", str(saves),
                    *[f"--set={k}={v}" for k, v in CFG.items()]]) == 0
        before = set(list_autosaves(saves))
        app.open_save(saves / "headless.npz")  # over an unsaved session (step 10)
        await settle(pilot)
        assert steps(app) == 4 and app.session.config.L == 8 and "headless" in status(app)
        (kept,) = set(list_autosaves(saves)) - before  # the replaced session is not lost
        assert Session.load(kept).step_count == 10 and app.last_autosave == kept
        assert any(str(kept) in m for m in notifications(app))

    run(app, body)


def test_damaged_file_notifies_and_keeps_the_session(tmp_path):
    saves = tmp_path / "saves"
    saves.mkdir()
    good = new_session()
    good.run_steps(3)
    good.save(saves / "good.npz")
    raw = (saves / "good.npz").read_bytes()
    (saves / "truncated.npz").write_bytes(raw[: len(raw) // 2])
    (saves / "garbage.npz").write_bytes(b"not a zip file at all")
    app = make_app(tmp_path)

    async def body(pilot):
        await press(pilot, "n")
        before, session = steps(app), app.session
        await press(pilot, "o")
        await until(pilot, lambda: app.screen.entries is not None, "the saves list")
        listing = "\n".join(lines(app.screen.query_one("#browser-list")))
        assert listing.count("damaged") == 2
        names = [p.name for p, _, _ in app.screen.entries]
        await pilot.press(*["down"] * names.index("truncated.npz"), "enter")
        await settle(pilot)
        assert app.session is session and steps(app) == before and app.save_path is None
        assert any("truncated.npz" in m for m in notifications(app))
        app.open_save(saves / "garbage.npz")
        await settle(pilot)
        assert app.session is session and steps(app) == before
        assert any("garbage.npz" in m for m in notifications(app))
        assert not list_autosaves(saves)  # nothing replaced: nothing autosaved
        await press(pilot, "n")  # and the session still runs
        assert steps(app) == before + 1

    run(app, body)


def test_quit_asks_when_unsaved_and_can_save_first(tmp_path):
    saves = tmp_path / "saves"
    app = make_app(tmp_path)

    async def body(pilot):
        await press(pilot, "n")
        await press(pilot, "q")
        assert isinstance(app.screen, ConfirmQuit)
        from textual.widgets import Button

        labels = [str(b.label) for b in app.screen.query(Button)]  # keys shown, not markup
        assert labels == ["[s] Save and quit", "[y] Quit without saving", "[n] Cancel"]
        await press(pilot, "n")  # stay
        assert app.main_screen_active and app.is_running
        await press(pilot, "q")
        await pilot.press("s")  # save (to autosave: no name yet) and quit
        await until(pilot, lambda: not app.is_running, "the app to exit")

    run(app, body)
    (autosave,) = list_autosaves(saves)  # no name yet: a new autosave of 'unsaved'
    assert autosave.name.startswith("autosave-unsaved-")
    assert Session.load(autosave).step_count == 1

    app = make_app(tmp_path)

    async def quit_without_saving(pilot):
        await press(pilot, "q")  # nothing changed: quits at once
        await until(pilot, lambda: not app.is_running, "the app to exit")

    run(app, quit_without_saving)

    app = make_app(tmp_path)

    async def discard(pilot):
        await press(pilot, "n", "q", "y")
        await until(pilot, lambda: not app.is_running, "the app to exit")

    run(app, discard)


def test_ctrl_q_writes_autosave_and_exits(tmp_path):
    saves = tmp_path / "elsewhere"
    app = make_app(tmp_path, saves_dir=saves)

    async def body(pilot):
        await press(pilot, "n", "n", "t")
        await press(pilot, "question_mark")  # works from any screen
        await pilot.press("ctrl+q")
        await until(pilot, lambda: not app.is_running, "the app to exit")

    run(app, body)
    (autosave,) = list_autosaves(saves)
    restored = Session.load(autosave)
    assert restored.step_count == 2 and restored.training is False


# ---------------------------------------------------------------------------------------------
# command palette


def _titles(app) -> list[str]:
    return [c.title for c in app.get_system_commands(app.screen)]


def _command(app, title):
    commands = {c.title: c for c in app.get_system_commands(app.screen)}
    return commands[title]


async def _answer_unsettled(pilot, text: str) -> None:
    await until(pilot, lambda: isinstance(pilot.app.screen, InputDialog | SaveDialog)
                and pilot.app.screen.query("#dialog-input"), "the input dialog")
    field = pilot.app.screen.query_one("#dialog-input")
    field.value = ""
    await pilot.press(*text, "enter")


async def _answer(pilot, text: str) -> None:
    await _answer_unsettled(pilot, text)
    await settle(pilot)


def test_every_binding_is_a_palette_command(tmp_path):
    app = make_app(tmp_path)

    async def body(pilot):
        from rgflow.tui.commands import PALETTE_SKIPS, PALETTE_TITLES

        listed = _titles(app)
        titles = set(listed)
        assert len(listed) == len(titles)  # no entry twice (Textual's Quit, Screenshot)
        assert "key: right_square_bracket" not in {c.help for c in
                                                   app.get_system_commands(app.screen)}
        for binding in app.BINDINGS:
            if binding.id in PALETTE_SKIPS:
                continue
            title = PALETTE_TITLES.get(binding.id, (binding.description,))[0]
            assert title in titles, title
        assert "Quit at once" in titles
        assert "Keys" not in titles and "Help" in titles  # Textual's key panel: our help
        for binding in app.BINDINGS:
            assert binding.id and binding.description  # ids for keymaps, text for the footer

        # binding commands do what their keys do
        _command(app, "Step").callback()
        await settle(pilot)
        assert steps(app) == 1
        _command(app, "T +0.1").callback()
        await settle(pilot)
        assert app.session.T == pytest.approx(round(TC + 0.1, 6))
        _command(app, "Algorithm").callback()
        _command(app, "RG rule").callback()
        _command(app, "Train").callback()
        _command(app, "Flow").callback()
        _command(app, "View").callback()
        await settle(pilot)
        assert (app.session.algorithm, app.session.rg_rule, app.session.training) == \
            ("heatbath", "majority", False)
        assert app.session.flow_step_count == 1 and app.view == "rbm"
        _command(app, "View: Plots").callback()
        _command(app, "RG level +").callback()
        await settle(pilot)
        assert app.view == "plots" and app.rg_level_index == 1
        _command(app, "Run/Pause").callback()
        await until(pilot, lambda: steps(app) > 3, "running from the palette")
        _command(app, "Run/Pause").callback()
        await settle(pilot)
        assert not app.running
        for title, screen in (("Help", HelpScreen), ("Open…", SaveBrowser), ("Save", SaveDialog)):
            _command(app, title).callback()
            await until(pilot, lambda s=screen: isinstance(app.screen, s), title)
            await press(pilot, "escape")
        _command(app, "Quit").callback()
        await until(pilot, lambda: isinstance(app.screen, ConfirmQuit), "the quit question")
        await press(pilot, "escape")

        # through the palette's own UI
        before = steps(app)
        await pilot.press("ctrl+p")
        await pilot.press(*"Step")
        await until(pilot, lambda: "Step" in str(app.screen.query("CommandList").first()
                                                 .get_option_at_index(0).prompt),
                    "the palette match")
        await pilot.press("enter")
        await settle(pilot)
        assert steps(app) == before + 1

    run(app, body)


def test_palette_value_commands(tmp_path):
    from rgflow.core.npzio import read_npz

    saves = tmp_path / "saves"
    app = make_app(tmp_path)

    async def body(pilot):
        _command(app, "Set temperature…").callback()
        await _answer(pilot, "2.5")
        assert app.session.T == 2.5
        _command(app, "Set temperature…").callback()
        await _answer(pilot, "tc")
        assert app.session.T == pytest.approx(TC)
        _command(app, "Set temperature…").callback()
        await _answer(pilot, "hot")
        assert any("not a temperature" in m for m in notifications(app))

        _command(app, "Set learning rate…").callback()
        await _answer(pilot, "0.01")
        assert app.session.config.lr == 0.01
        _command(app, "Set lattice size L…").callback()
        await _answer(pilot, "7")
        assert app.session.config.L == 8
        assert any("L must be even" in m for m in notifications(app))
        _command(app, "Set lattice size L…").callback()
        await _answer(pilot, "12")
        assert app.session.config.L == 12 and app.session.config.n_hidden == 36
        assert app.w("lattice").spins.shape == (12, 12) and "L=12" in status(app)
        _command(app, "Set hidden units…").callback()
        await _answer(pilot, "9")
        assert app.session.config.n_hidden == 9

        _command(app, "Train N steps…").callback()
        await _answer(pilot, "5")
        assert any("training needs at least" in m for m in notifications(app))
        app.submit(lambda s: s.run_steps(30) and None)
        await settle(pilot)
        trained = app.session.trainer.steps_done
        _command(app, "Train N steps…").callback()
        await _answer(pilot, "7")
        assert app.session.trainer.steps_done == trained + 7
        assert "Cancel the job" not in _titles(app)  # no job: no entry
        app.set_running(False)
        _command(app, "Train N steps…").callback()
        await _answer_unsettled(pilot, "100000")
        await until(pilot, lambda: app.driver.job is not None, "the job to start")
        _command(app, "Cancel the job").callback()
        await settle(pilot)
        assert any("job cancelled after" in m for m in notifications(app))
        assert "Cancel the job" not in _titles(app)

        _command(app, "Reset flow from random spins").callback()
        await settle(pilot)
        assert app.session.flow_step_count == 0 and app.session.flow_v is not None
        _command(app, "Reset flow from data").callback()
        await settle(pilot)
        assert app.session.flow_v.shape == (4, 144)

        _command(app, "Save as…").callback()
        await _answer(pilot, "palette")
        assert Session.load(saves / "palette.npz").config.L == 12

        _command(app, "Export view data (npz)").callback()
        await settle(pilot)
        arrays, meta = read_npz(app.last_export)
        assert app.last_export.parent == saves / "exports"
        assert arrays["spins"].shape == (12, 12) and meta["view"] == "dashboard"
        _command(app, "Screenshot (SVG)").callback()
        svgs = list((saves / "exports").glob("*.svg"))
        assert len(svgs) == 1 and "<svg" in svgs[0].read_text()[:2000]

    run(app, body)


def test_reproduce_preset_runs_in_the_background_and_can_be_stopped(tmp_path):
    out = tmp_path / "saves" / "reproduce-tiny"
    app = make_app(tmp_path)

    async def body(pilot):
        assert "Stop reproduce run" not in _titles(app)  # only while a run goes
        _command(app, "Run reproduce preset…").callback()
        await _answer(pilot, "huge")
        assert any("unknown preset" in m for m in notifications(app))
        assert not app.reproduce_running()

        # stopped at its next check: ends without a report, the app keeps going
        # started and stopped in one go: a warm numba cache runs tiny in about 2 s, so a
        # stop sent after an await could arrive after the run's end
        app.start_reproduce("tiny")
        assert app.reproduce_running()
        _command(app, "Stop reproduce run").callback()
        # generous bounds: on a cold numba cache a stage compiles before it can stop
        await until(pilot, lambda: not app.reproduce_running(), "the stopped run to end", 300)
        assert app.reproduce_result.get("stopped"), app.reproduce_result
        assert any("stopped in stage" in m for m in notifications(app))
        assert not (out / "report.md").exists()

        # a full run: progress on the status line while the session keeps stepping
        _command(app, "Run reproduce preset…").callback()
        await _answer(pilot, "tiny")
        assert "reproduce tiny: starting" in app.reproduce_log  # the status field
        await until(pilot, lambda: any("estimated" in m for m in notifications(app)),
                    "the up-front estimate", 120)
        _command(app, "Step").callback()
        # the session keeps stepping during the run (bounded generously for a cold cache)
        await until(pilot, lambda: steps(app) == 1, "a step during the run", 300)
        await until(pilot, lambda: not app.reproduce_running(), "the run to end", 600)
        stages = [s for s in app.reproduce_log if s.startswith("reproduce ") and "/" in s]
        assert stages, app.reproduce_log  # per-stage progress was shown
        assert "report" in app.reproduce_result, app.reproduce_result
        assert (out / "report.md").is_file()
        await until(pilot, lambda: any("done in" in m and "report.md" in m
                                       for m in notifications(app)), "the done notice")
        await settle(pilot)
        assert "reproduce" not in status(app)

    run(app, body, size=(200, 40))


def test_classifier_thermometer_calibrates_in_the_background_and_reads_the_flow(tmp_path):
    from rgflow.core.live_analysis import CLASSIFIER_GRID

    app = make_app(tmp_path)

    def info() -> str:
        return "\n".join(lines(app.w("flow-info")))

    async def body(pilot):
        await press(pilot, "5", "f")
        assert app.view == "flow" and app.session.flow_step_count == 1
        assert "not calibrated" in info() and "Calibrate classifier" in info()
        assert "T from E/N (Onsager)" in info()

        _command(app, "Calibrate classifier thermometer").callback()
        await until(pilot, lambda: app.calibrating and "calibrating" in info(),
                    "the calibrating notice")
        await press(pilot, "f")  # the session keeps going meanwhile
        assert app.session.flow_step_count == 2
        await until(pilot, lambda: app.classifier is not None and not app.calibrating,
                    "the calibration", 120)
        await settle(pilot)
        cal = app.classifier
        assert cal["L"] == 8 and cal["n_T"] == CLASSIFIER_GRID[2]
        # guessing lands within one grid step of the true temperature with probability at
        # most 3/16; the fitted classifier must beat that by 5 binomial sigma on its held-out
        # set (measured: 0.47 for this seed)
        n_heldout = round(0.2 * cal["n"]) * cal["n_T"]
        p = 3 / cal["n_T"]
        assert cal["heldout_within_one"] > p + 5 * np.sqrt(p * (1 - p) / n_heldout), cal
        reading = app.driver.published.extras["classifier"]
        flow = app.driver.published.frame.flow_v
        expected = cal["thermometer"].predict_temperature(flow, method="mean")
        assert reading["T"] == pytest.approx(float(np.mean(expected)))
        assert CLASSIFIER_GRID[0] <= reading["T"] <= CLASSIFIER_GRID[1]
        text = info()
        assert f"T (classifier): {reading['T']:.3f}" in text
        assert f"held-out accuracy {cal['heldout_accuracy']:.2f}" in text
        assert "T from E/N (Onsager)" in text  # both readings side by side
        assert "lattice T = " in text  # and the pane still shows all of it

        # saved with the session, and back when the save is opened
        _command(app, "Save as…").callback()
        await _answer(pilot, "withcal")
        app.driver.classifier = None
        app.open_save(tmp_path / "saves" / "withcal.npz")
        await settle(pilot)
        await until(pilot, lambda: app.classifier is not None, "the saved calibration")
        assert app.classifier["heldout_accuracy"] == cal["heldout_accuracy"]
        np.testing.assert_array_equal(
            app.classifier["thermometer"].predict_temperature(flow, method="mean"), expected)

        # a second calibration can be cancelled from the palette
        _command(app, "Calibrate classifier thermometer").callback()
        await until(pilot, lambda: app.calibrating, "the second calibration")
        assert "Calibrate classifier thermometer" not in _titles(app)
        _command(app, "Cancel the classifier calibration").callback()
        await until(pilot, lambda: not app.calibrating, "the cancelled calibration", 120)
        assert any("calibration cancelled" in m for m in notifications(app))
        assert app.classifier["heldout_accuracy"] == cal["heldout_accuracy"]  # the old one

        # another L: the old calibration no longer applies
        _command(app, "Set lattice size L…").callback()
        await _answer(pilot, "12")
        await press(pilot, "f")
        assert "fitted for L=8" in info()

    run(app, body)


# ---------------------------------------------------------------------------------------------
# layouts


def _displayed(app) -> set[str]:
    return {pane for pane in PANES[app.view] if app.w(pane).display}


def test_small_terminals_page_through_every_pane_and_resizing_never_crashes(tmp_path):
    app = make_app(tmp_path)

    async def body(pilot):
        app.submit(lambda s: s.run_steps(40) and None)
        await press(pilot, "f")
        assert app.layout_mode == "compact"
        seen: dict[str, set] = {view: set() for view in VIEWS}
        for _ in range(sum(-(-len(p) // 2) for p in PANES.values())):
            shown = _displayed(app)
            assert 1 <= len(shown) <= 2
            seen[app.view] |= shown
            assert len(status(app).rstrip()) <= 80 and "T=" in status(app)
            await press(pilot, "v")
        assert seen == {view: set(panes) for view, panes in PANES.items()}
        assert app.view == "dashboard" and app.page == 0  # full circle
        lattice = app.w("lattice")
        assert lattice.size.width >= 8 and lattice.mode[0] == "half-block"

        for width, height in ((40, 12), (200, 60), (80, 24), (41, 13), (30, 8), (120, 40)):
            await pilot.resize_terminal(width, height)
            await settle(pilot)
            assert "T=" in status(app) or width < 40
            if width in (40, 200):
                for _ in range(len(VIEWS) + 1):
                    await press(pilot, "v")
        assert app.layout_mode == "wide" and _displayed(app) == set(PANES[app.view])

        await pilot.resize_terminal(40, 12)
        await settle(pilot)
        assert app.layout_mode == "tiny"
        await press(pilot, "1")
        app.set_config("L", "48")
        await settle(pilot)
        assert lattice.spins.shape == (48, 48)
        assert lattice.mode[0] != "half-block"  # denser glyphs in a small terminal
        assert any(row.strip() for row in lines(lattice))
        await pilot.resize_terminal(200, 60)
        await settle(pilot)
        assert lattice.mode == ("half-block", 1)

    run(app, body, size=(80, 24))


def test_no_color_keeps_every_view_readable(tmp_path, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(tmp_path)

    async def body(pilot):
        assert app.no_color
        app.submit(lambda s: s.run_steps(30) and None)
        await press(pilot, "f")
        for view in VIEWS:
            await press(pilot, str(VIEWS.index(view) + 1))
            await until(pilot, lambda: all(p.build_count for p in app.query("PlotView")
                                           if p.display and p.size.width), "the plots")
            await pilot.pause()
        await press(pilot, "1")
        # the lattice is drawn by glyph, so it stays readable without colour
        assert any(set(row) <= GLYPHS and row.strip() for row in lines(app.w("lattice")))
        assert "T=" in status(app)

    run(app, body)


def test_receptive_field_from_the_palette_and_in_the_rbm_view(tmp_path):
    """'Set receptive field…' makes the RBM locally connected; the RBM view draws the
    selected unit's weights on its field, outlined, and the no-data colour outside it."""
    from rgflow.core.rbm_local import LocalRBM, field_mask

    app = make_app(tmp_path)

    async def body(pilot):
        _command(app, "Set receptive field…").callback()
        await _answer(pilot, "1")
        assert app.session.config.receptive_field == 1
        assert isinstance(app.session.trainer.rbm, LocalRBM)
        await press(pilot, "2", "down", "right")
        await until(pilot, lambda: app.driver.published.extras["field"] is not None,
                    "a frame of the local RBM")
        await settle(pilot)
        mask = field_mask(8, 1)[:, 5].reshape(8, 8)
        np.testing.assert_array_equal(app.driver.published.extras["field"], mask)
        levels = app.w("rbm-weights").levels
        assert (levels[~mask] == -1).all() and (levels[mask] >= 0).all()
        assert "receptive field R=1" in app.w("rbm-weights").border_title
        np.testing.assert_array_equal(app.w("rbm-weights").outline, mask)  # outlined
        _command(app, "Set receptive field…").callback()
        await _answer(pilot, "-1")
        assert not isinstance(app.session.trainer.rbm, LocalRBM)
        await until(pilot, lambda: app.driver.published.extras["field"] is None,
                    "a frame of the global RBM")
        await settle(pilot)
        assert app.w("rbm-weights").outline is None
        _command(app, "Set receptive field…").callback()
        await _answer(pilot, "-3")
        assert any("receptive_field must be" in m for m in notifications(app))


# ---------------------------------------------------------------------------------------------
# keys, help, README, status line


def test_every_binding_has_one_row_in_the_key_table_and_the_readme_shows_it():
    from rgflow.tui.app import RgflowApp
    from rgflow.tui.keys import KEY_ROWS, README_END, README_START, key_table

    ids = [i for row_ids, _ in KEY_ROWS for i in row_ids]
    assert sorted(ids) == sorted(b.id for b in RgflowApp.BINDINGS)  # each exactly once
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    shown = readme.split(README_START)[1].split(README_END)[0].strip()
    assert shown == key_table(RgflowApp.BINDINGS)


def test_browser_safe_key_for_every_action():
    from rgflow.tui.app import RgflowApp

    taken = {"ctrl+q", "ctrl+w", "ctrl+t", "ctrl+p", "ctrl+n", "ctrl+tab"}
    actions: dict[str, set] = {}
    for b in RgflowApp.BINDINGS:
        actions.setdefault(b.action, set()).update(k.strip() for k in b.key.split(","))
    assert "command_palette" in actions  # ctrl+p is the browser's print
    for action, keys in actions.items():
        assert keys - taken, action


def test_temperature_keys_are_symmetric_and_the_help_says_so(tmp_path):
    app = make_app(tmp_path)

    async def body(pilot):
        T0 = app.session.T
        await press(pilot, "plus", "plus", "plus", "minus")
        assert app.session.T == pytest.approx(T0 + 0.29, abs=2e-6)
        await press(pilot, "underscore", "underscore", "underscore", "equals_sign")
        assert app.session.T == pytest.approx(T0, abs=2e-6)
        await press(pilot, "plus")
        assert f"T/Tc={(T0 + 0.1) / TC:.3f}" in status(app)
        await press(pilot, "question_mark")
        text = "\n".join(str(w.source) for w in app.screen.query("Markdown"))
        assert "| = / - | temperature +0.01 / −0.01 |" in text
        assert "| + / _ | temperature +0.1 / −0.1 |" in text

    run(app, body)


@pytest.mark.parametrize("size", [(40, 12), (80, 24), (120, 40)])
def test_footer_keeps_the_essential_keys_and_the_status_line_the_view(tmp_path, size):
    app = make_app(tmp_path)

    async def body(pilot):
        await pilot.pause()
        shown = {w.description for w in app.query("FooterKey")
                 if w.region.width > 0 and w.region.right <= size[0]}
        assert {"View", "Save", "Help", "Quit"} <= shown, shown
        assert "T ±0.01" in shown or size[0] < 100
        assert any(v in status(app) for v in ("1/5 Lattice", "view 1/5", "v1/5"))
        for pane in PANES["dashboard"]:  # titles kept (on the top border) at every size
            widget = app.w(pane)
            if widget.display and pane != "rg-pane":  # rg-pane: the map inside has it
                assert widget.border_title and widget.styles.border_top[0] != "", pane

    run(app, body, size=size)


def test_flow_runs_on_a_frozen_rbm_that_says_its_training_step(tmp_path):
    app = make_app(tmp_path)

    async def body(pilot):
        from rgflow.tui.views.plots import NO_FLOW

        await press(pilot, "4")  # no flow yet: its plots say how to start one
        assert app.w("plot-flow-m")._labels["title"] == NO_FLOW
        assert app.w("plot-flow-t")._labels["title"] == NO_FLOW
        app.submit(lambda s: s.run_steps(30) and None)
        await press(pilot, "5", "f")
        frozen_at = app.session.flow_rbm_step
        frozen_W = app.session.flow_rbm.W.copy()
        assert f"RBM frozen at train step {frozen_at}" in "\n".join(lines(app.w("flow-info")))
        app.submit(lambda s: s.run_steps(10) and None)  # training goes on
        await press(pilot, "f")
        assert app.session.trainer.steps_done > frozen_at
        np.testing.assert_array_equal(app.session.flow_rbm.W, frozen_W)
        assert not np.array_equal(app.session.trainer.rbm.W, frozen_W)
        _command(app, "Flow N steps…").callback()
        await _answer(pilot, "4")
        assert app.session.flow_step_count == 6
        _command(app, "Reset flow from data").callback()
        await press(pilot, "f")  # a new flow freezes the RBM as it is now
        assert app.session.flow_rbm_step == app.session.trainer.steps_done
        await press(pilot, "4")
        assert app.w("plot-flow-m")._labels["title"] == ""

    run(app, body)


def test_a_save_path_without_npz_gets_it_and_long_errors_wrap(tmp_path):
    app = make_app(tmp_path)

    async def body(pilot):
        await press(pilot, "n", "s")
        await pilot.press(*"bad name!", "enter")
        await pilot.pause()
        hint = app.screen.query_one("#save-hint")
        assert "(or give a path)" in " ".join(lines(hint))  # wrapped at 80 columns, not cut
        app.screen.query_one("#dialog-input", Input).value = str(tmp_path / "runs" / "run1")
        await pilot.press("enter")
        await until(pilot, lambda: app.save_path is not None and app.settled, "the save")
        assert app.save_path == tmp_path / "runs" / "run1.npz"
        assert Session.load(app.save_path).step_count == 1

    run(app, body, size=(80, 24))


def test_invalid_save_name_keeps_the_dialog_and_open_takes_a_typed_path(tmp_path):
    app = make_app(tmp_path)
    elsewhere = tmp_path / "elsewhere.npz"
    other = new_session()
    other.run_steps(2)
    other.save(elsewhere)

    async def body(pilot):
        await press(pilot, "n", "s")
        assert isinstance(app.screen, SaveDialog)
        await pilot.press(*"bad name!", "enter")
        await pilot.pause()
        assert isinstance(app.screen, SaveDialog)  # still open, with the reason
        assert "invalid save name" in str(app.screen.query_one("#save-hint").render())
        # a path the session cannot be written to is refused before any work, dialog open
        blocker = tmp_path / "a_file"
        blocker.write_text("x")
        app.screen.query_one("#dialog-input", Input).value = str(blocker / "s.npz")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SaveDialog)
        assert "is a file, not a directory" in str(
            app.screen.query_one("#save-hint").render())
        assert blocker.read_text() == "x"
        # a path's file name names the session: it follows the rules of a save name
        app.screen.query_one("#dialog-input", Input).value = str(tmp_path / "sub" / "name?")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SaveDialog)
        assert "invalid file name 'name?.npz'" in str(
            app.screen.query_one("#save-hint").render())
        await press(pilot, "escape")
        assert not list((tmp_path / "saves").glob("*.npz"))
        assert not (tmp_path / "sub").exists()

        await press(pilot, "o")
        assert isinstance(app.screen, SaveBrowser)
        app.screen.query_one("#browser-path").focus()
        await pilot.press(*str(tmp_path / "missing.npz"), "enter")
        await pilot.pause()
        assert isinstance(app.screen, SaveBrowser)
        assert "no such file" in str(app.screen.query_one("#browser-error").render())
        app.screen.query_one("#browser-path").value = str(elsewhere)
        await pilot.press("enter")
        await settle(pilot)
        assert steps(app) == 2 and app.save_path == elsewhere

    run(app, body)


@pytest.mark.parametrize("L, size", [(16, (120, 40)), (8, (80, 24)), (32, (200, 60))])
def test_lattice_rg_level_and_reconstruction_are_drawn_at_one_scale(tmp_path, L, size):
    app = make_app(tmp_path, new_session(L=L))

    async def body(pilot):
        await press(pilot, "n")
        lattice, recon, rg = app.w("lattice"), app.w("dash-recon"), app.w("rg-map")
        width = lattice.columns_per_site * L  # columns the lattice spans
        assert lattice.zoom >= 1 and width >= L
        for widget in (recon, rg):
            if not widget.display:  # another page of a small terminal
                continue
            drawn = widget._pixel_image(*widget.size)
            assert drawn.shape[1] == width, (widget.id, drawn.shape, width)
        if lattice.zoom > 1:
            assert f"half-block ×{lattice.zoom}" in lattice.mode_label

    run(app, body, size=size)


def test_a_page_of_maps_without_its_lattices_keeps_them_full_size(tmp_path):
    """80 x 24: the RBM view's weights are on a page of their own, without the lattices
    that set the view's scale; they are still drawn at a column per site at least."""
    app = make_app(tmp_path, new_session(L=8, receptive_field=1))

    async def body(pilot):
        await press(pilot, "2")
        while not app.w("rbm-weights").display:
            await press(pilot, "v")
        assert not app.w("rbm-v").display and app.layout_mode == "compact"
        weights = app.w("rbm-weights")
        assert weights._pixel_image(*weights.size).shape[1] >= 8
        assert any("┘" in row or "▀" in row for row in lines(weights))

    run(app, body, size=(80, 24))


def test_a_save_is_written_in_the_background_while_the_session_goes_on(tmp_path, monkeypatch):
    import rgflow.core.persist as persist

    gate, entered = threading.Event(), threading.Event()
    real_write = persist.write_save

    def slow_write(path, arrays, meta):
        entered.set()
        assert gate.wait(60)
        return real_write(path, arrays, meta)

    monkeypatch.setattr(persist, "write_save", slow_write)
    app = make_app(tmp_path)

    async def body(pilot):
        await press(pilot, "n")
        app._save_to(tmp_path / "bg.npz")
        await until(pilot, lambda: entered.is_set(), "the writer thread")
        assert app.saves_writing == 1 and not app.settled
        app.submit(lambda s: s.step() and None)  # the worker is free meanwhile
        await until(pilot, lambda: app.driver.commands_done == app.driver.commands_submitted,
                    "the step during the write")
        assert steps(app) == 2 and not (tmp_path / "bg.npz").exists()
        gate.set()
        await settle(pilot)
        assert Session.load(tmp_path / "bg.npz").step_count == 1  # the snapshot's state

    run(app, body)
