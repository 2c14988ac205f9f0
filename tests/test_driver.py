"""SessionDriver without Textual: commands, publishing, running, jobs and session
replacement, driven one worker cycle at a time (and once on its own thread)."""

import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from rgflow.core.config import SessionConfig
from rgflow.core.errors import UsageError
from rgflow.core.session import Session
from rgflow.tui.driver import DriverListener, SessionDriver
from rgflow.tui.jobs import train_job

CFG = dict(L=8, batch=10, chains=10, dataset_capacity=50, sample_spacing=2, flow_chains=4,
           monitor_every=5, history=64, seed=1)


class Recorder(DriverListener):
    def __init__(self):
        self.notes: list[tuple[str, str]] = []
        self.frames = threading.Event()
        self.calls: list = []

    def notify(self, message, severity="information", timeout=4):
        self.notes.append((severity, message))

    def frame_ready(self):
        self.frames.set()

    def call(self, fn):
        self.calls.append(fn)


def make_driver(**changes):
    listener = Recorder()
    session = Session(SessionConfig(**{**CFG, **changes}))
    return SessionDriver(session, fps=10, threads=1, warm_up=False, listener=listener), listener


def test_driver_module_does_not_import_textual():
    code = ("import sys, rgflow.tui.driver; "
            "sys.exit(1 if any(m.split('.')[0] in ('textual', 'rich') for m in sys.modules) "
            "else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def test_commands_run_in_order_and_a_frame_shows_their_effect():
    driver, listener = make_driver()
    driver.publish(force=True)
    order = []
    driver.submit(lambda s: order.append(1) or s.set_temperature(2.0))
    number = driver.submit(lambda s: order.append(2) or "hello")
    assert not driver.caught_up  # submitted, not run yet
    driver.cycle(idle_wait=0)
    assert order == [1, 2] and driver.caught_up
    assert driver.published.commands >= number and driver.published.frame.T == 2.0
    assert ("information", "hello") in listener.notes


def test_a_failing_command_is_a_notification_and_the_worker_goes_on():
    driver, listener = make_driver()

    def bad(_s):
        raise UsageError("no such thing")

    driver.submit(bad)
    driver.submit(lambda s: 1 / 0)
    driver.submit(lambda s: s.step() and None)
    driver.cycle(idle_wait=0)
    assert ("error", "no such thing") in listener.notes
    assert any(sev == "error" and "ZeroDivisionError" in m for sev, m in listener.notes)
    assert driver.session.step_count == 1 and driver.commands_done == 3


def test_running_steps_the_session_and_pausing_stops_it():
    driver, _ = make_driver()
    driver.publish(force=True)
    driver.cycle(idle_wait=0)
    assert driver.session.step_count == 0  # paused: no steps
    driver.set_running(True)
    driver._publish_due = time.perf_counter() - 1.0  # a frame overdue (a loaded machine)
    driver.cycle(idle_wait=0)  # ... still, the chunk steps before it publishes
    ran = driver.session.step_count
    assert ran > 0
    driver.set_running(False)
    driver.cycle(idle_wait=0)
    assert driver.session.step_count == ran


def test_a_queued_key_still_ends_a_chunk_before_its_first_step():
    driver, _ = make_driver()
    driver.set_running(True)
    driver._publish_due = time.perf_counter() + 60.0  # no frame due: only the key stops it
    driver.submit(lambda s: None)
    driver._chunk()
    assert driver.session.step_count == 0


def test_published_weights_are_the_selected_units():
    driver, _ = make_driver()
    driver.selected_unit = 5
    driver.request_publish()
    assert driver.publish_requested
    driver.cycle(idle_wait=0)
    assert not driver.publish_requested
    np.testing.assert_array_equal(driver.published.extras["weights"],
                                  driver.session.trainer.rbm.W[:, 5].reshape(8, 8))
    assert not driver.published.extras["weights"].flags.writeable


def test_a_job_runs_in_slices_to_its_end_and_can_be_cancelled():
    driver, listener = make_driver()
    driver.session.run_steps(30)
    before = driver.session.trainer.steps_done
    driver.submit(lambda s: driver.start_job(train_job(driver, 3), 3))
    while True:
        driver.cycle(idle_wait=0)
        if driver.job is None:
            break
    assert driver.session.trainer.steps_done == before + 3
    assert any("trained 3 steps" in m for _, m in listener.notes)
    driver.cycle(idle_wait=0)  # the job's end asked for a frame: this cycle publishes it
    assert driver.published.extras["job"] is None  # its end was published
    driver.submit(lambda s: driver.start_job(train_job(driver, 10**6), 10**6))
    driver.cycle(idle_wait=0)
    done = driver.cancel_job()
    assert done is not None and 0 < done[0] < 10**6 and driver.job is None


def test_replacing_the_session_drops_what_was_derived_from_the_old_one():
    driver, _ = make_driver()
    driver.analysis = {"corr": {"n": 1}}
    generation = driver.generation
    other = Session(SessionConfig(**{**CFG, "L": 12}))
    driver.submit(lambda s: driver.replace_session(other))
    driver.cycle(idle_wait=0)
    assert driver.session is other and driver.generation == generation + 1
    assert driver.analysis == {} and driver.published.frame.L == 12


def test_on_its_thread_the_driver_starts_publishes_and_stops():
    driver, listener = make_driver()
    driver.start()
    try:
        assert listener.frames.wait(60)
        driver.submit(lambda s: s.step() and None)
        listener.frames.clear()
        assert listener.frames.wait(60)
        done = threading.Event()
        driver.submit(lambda s: done.set())
        assert done.wait(60)
    finally:
        driver.stop(join=30)
    assert not driver.alive and driver.session.step_count == 1
    assert not driver.stopped_by_error


@pytest.mark.parametrize("view, kind", [("correlators", "corr"), ("plots", "gr")])
def test_analysis_is_computed_for_the_view_shown(view, kind):
    driver, _ = make_driver()
    driver.session.run_steps(40)
    driver.view = view
    driver.start()
    try:
        done = threading.Event()

        def check():
            while not driver.stopping() and kind not in driver.analysis:
                driver._wake.wait(0.05)
            done.set()
        threading.Thread(target=check, daemon=True).start()
        assert done.wait(120)
    finally:
        driver.stop(join=30)
    assert set(driver.analysis) == {kind}


def test_blas_threads_come_back_after_the_first_frame_and_before_the_warm_up(monkeypatch):
    import rgflow.core.blas as blas

    events = []
    monkeypatch.setattr(blas, "restore_default_threads", lambda: events.append("blas"))

    class Order(Recorder):
        def live(self):
            events.append("live")

        def kernels_ready(self):
            events.append("ready")

    session = Session(SessionConfig(**CFG))
    driver = SessionDriver(session, fps=10, threads=1, warm_up=True, listener=Order())
    monkeypatch.setattr(driver, "warm_up_stages",
                        lambda: [("stage", lambda: events.append("warm-up"))])
    driver._start_up()
    assert events == ["live", "blas", "warm-up", "ready"]


def test_a_new_session_is_previewed_before_it_is_built(monkeypatch):
    """Without a session the driver first publishes the new session's lattice (core/frame.py,
    no numba), says live once, and then the session's own frame with the same spins."""
    import rgflow.core.session as session_module

    events = []

    class Order(Recorder):
        def live(self):
            pub = driver.published
            events.append(("live", pub.frame.preview, driver.session is None))

    class Built(Session):
        def __init__(self, config=None):
            events.append(("build", driver.published.frame.preview))
            super().__init__(config)

    monkeypatch.setattr(session_module, "Session", Built)
    config = SessionConfig(**CFG)
    driver = SessionDriver(config=config, fps=10, threads=1, warm_up=False, listener=Order())
    driver._start_up()
    assert events == [("live", True, True), ("build", True)]
    frame = driver.published.frame
    assert not frame.preview and driver.published.seq == 2
    np.testing.assert_array_equal(frame.spins, Session(config).spins)
    assert driver.caught_up


def test_a_preview_is_never_caught_up():
    from rgflow.core.frame import initial_frame
    from rgflow.tui.driver import Published

    driver = SessionDriver(config=SessionConfig(**CFG), warm_up=False, listener=Recorder())
    driver.published = Published(1, initial_frame(SessionConfig(**CFG)), {}, 0)
    assert not driver.caught_up


def _opening(tmp_path, damage=None):
    """An Opening of a saved session (as `rgflow open` makes it); damage(arrays) breaks
    the save in a way only the Session's own restore sees."""
    from rgflow.core.frame import HISTORIES, saved_frame
    from rgflow.core.persist import read_save, validate_session_state, write_save
    from rgflow.tui.driver import Opening

    session = Session(SessionConfig(**CFG))
    session.run_steps(7)
    path = tmp_path / "s.npz"
    arrays, meta = session.state()
    if damage is not None:
        damage(arrays)
    write_save(path, arrays, meta)
    arrays, meta = read_save(path)
    state = validate_session_state(arrays, meta, path, HISTORIES)
    return Opening(lambda: Session.from_state(arrays, meta, path),
                   saved_frame(state, arrays["spins"], "s")), session


def test_an_opened_save_is_previewed_then_rebuilt(tmp_path):
    opening, original = _opening(tmp_path)
    live = []

    class Live(Recorder):
        def live(self):
            live.append(driver.published.frame)

    driver = SessionDriver(opening=opening, fps=10, threads=1, warm_up=False, listener=Live())
    driver._start_up()
    (preview,) = live
    assert preview.preview and preview.step == 7
    np.testing.assert_array_equal(preview.spins, original.spins)
    assert driver.session.step_count == 7 and not driver.published.frame.preview
    np.testing.assert_array_equal(driver.published.frame.spins, original.spins)


def test_a_save_the_session_cannot_rebuild_is_a_start_error(tmp_path):
    from rgflow.core.errors import SaveFileError

    def narrow_weights(arrays):  # passes the save's checks, fails the RBM's restore
        arrays["rbm_W"] = arrays["rbm_W"][:, :-1].copy()

    opening, _ = _opening(tmp_path, narrow_weights)
    crashed = []

    class Crash(Recorder):
        def crashed(self, message):
            crashed.append(message)

    driver = SessionDriver(opening=opening, fps=10, threads=1, warm_up=False, listener=Crash())
    driver.run()
    assert driver.session is None and isinstance(driver.start_error, SaveFileError)
    assert "s.npz" in str(driver.start_error) and len(crashed) == 1
