"""tui/screens/recover.py: at start-up the app offers a dropped session's autosave once;
o opens it (the session and its counters come back), n leaves the new session alone."""

import asyncio
from pathlib import Path

import pytest

from rgflow.core.config import SessionConfig
from rgflow.core.session import Session
from rgflow.tui.app import create_app
from rgflow.tui.lifecycle import dropped_sessions, write_dropped_note
from rgflow.tui.screens.recover import RecoverDropped, offer_dropped_session

CFG = dict(L=8, batch=10, chains=10, dataset_capacity=50, sample_spacing=2, flow_chains=4,
           monitor_every=5, history=64, seed=1)


def dropped_autosave(saves: Path, steps: int) -> Path:
    session = Session(SessionConfig(**CFG))
    session.run_steps(steps)
    path = saves / "autosave-unsaved-20260101-120000.npz"
    session.save(path)
    write_dropped_note(saves, path, "signal SIGHUP", steps, None)
    return path


async def until(pilot, predicate, what: str, timeout: float = 30.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.01)


def run_offer(tmp_path: Path, key: str):
    saves = tmp_path / "saves"
    path = dropped_autosave(saves, 7)
    app = create_app(Session(SessionConfig(**CFG)), warm_up=False, autorun=False,
                     threads=1, fps=10, saves_dir=saves)
    seen = {}

    async def main():
        async with app.run_test(size=(120, 40)) as pilot:
            await until(pilot, lambda: app.live, "the first frame")
            entry = offer_dropped_session(app, app.open_save)
            await until(pilot, lambda: isinstance(app.screen, RecoverDropped)
                        and app.screen.query("#recover-text"), "the offer")
            seen["text"] = str(app.screen.query_one("#recover-text").render())
            seen["buttons"] = [str(b.label) for b in app.screen.query("Button")]
            seen["again"] = offer_dropped_session(app, app.open_save)
            await pilot.press(key)
            await until(pilot, lambda: not isinstance(app.screen, RecoverDropped),
                        "the offer to close")
            await until(pilot, lambda: app.settled, "the worker")
            seen["entry"] = entry
    asyncio.run(main())
    return app, path, seen


@pytest.mark.parametrize("key", ["o", "enter"])
def test_open_brings_the_dropped_session_back(tmp_path, key):
    app, path, seen = run_offer(tmp_path, key)
    assert "dropped (SIGHUP)" in seen["text"] and "after 7 steps" in seen["text"]
    assert "Open it now?" in seen["text"]
    assert seen["buttons"] == ["[o] Open it", "[n] Not now"]  # keys shown, not markup
    assert str(path) in seen["text"].replace("\n", "")
    assert seen["entry"]["path"] == path.resolve()
    assert seen["again"] is None  # offered once
    assert app.session.step_count == 7 and app.save_path == path
    assert dropped_sessions(path.parent) == []


@pytest.mark.parametrize("key", ["n", "escape"])
def test_not_now_keeps_the_new_session_and_the_autosave(tmp_path, key):
    app, path, seen = run_offer(tmp_path, key)
    assert app.session.step_count == 0 and app.save_path is None
    assert path.exists()
    assert dropped_sessions(path.parent) == []
