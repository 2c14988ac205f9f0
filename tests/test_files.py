"""Autosave files: named after the session and the time, never overwritten, the newest five
of a session kept, other sessions' autosaves never touched."""

import time

from rgflow.core.config import SessionConfig
from rgflow.core.session import Session
from rgflow.tui.files import (
    AUTOSAVE_KEEP,
    autosave_path,
    autosave_session_name,
    list_autosaves,
    write_autosave,
)

T0 = time.mktime((2026, 1, 2, 3, 4, 5, 0, 0, -1))


def small_session(steps: int) -> Session:
    s = Session(SessionConfig(L=4, batch=2, chains=2, dataset_capacity=8, sample_spacing=1,
                              flow_chains=2, monitor_every=1, seed=3))
    s.run_steps(steps)
    return s


def test_session_names():
    assert autosave_session_name(None) == "unsaved"
    assert autosave_session_name("run1") == "run1"
    # an opened autosave keeps the name of the session it came from
    assert autosave_session_name("autosave-run1-20260102-030405") == "run1"
    assert autosave_session_name("autosave-run1-20260102-030405-2") == "run1"
    assert autosave_session_name("a b/c") == "a_b_c"


def test_name_and_time_and_no_overwrite_within_a_second(tmp_path):
    first = write_autosave(small_session(1).snapshot(), "run1", tmp_path, when=T0)
    second = write_autosave(small_session(2).snapshot(), "run1", tmp_path, when=T0)
    assert first.name == "autosave-run1-20260102-030405.npz"
    assert second.name == "autosave-run1-20260102-030405-2.npz"
    assert Session.load(first).step_count == 1 and Session.load(second).step_count == 2
    assert list_autosaves(tmp_path, "run1") == [second, first]  # newest first


def test_keeps_the_newest_five_of_a_session_and_never_another_sessions(tmp_path):
    snapshot = small_session(1).snapshot()
    other = write_autosave(snapshot, None, tmp_path, when=T0)
    written = [write_autosave(snapshot, "run1", tmp_path, when=T0 + 60 * i)
               for i in range(AUTOSAVE_KEEP + 2)]
    assert list_autosaves(tmp_path, "run1") == written[::-1][:AUTOSAVE_KEEP]
    assert not written[0].exists() and not written[1].exists()
    assert other.exists() and list_autosaves(tmp_path, "unsaved") == [other]
    assert autosave_path("run1", tmp_path, when=T0 + 3600).name.startswith("autosave-run1-")


def test_a_dropped_sessions_autosave_is_not_pruned_until_it_is_offered(tmp_path):
    from rgflow.tui.lifecycle import dropped_sessions, forget_dropped, write_dropped_note

    snapshot = small_session(1).snapshot()
    dropped = write_autosave(snapshot, None, tmp_path, when=T0)
    write_dropped_note(tmp_path, dropped, "signal SIGHUP", 1)
    later = [write_autosave(snapshot, None, tmp_path, when=T0 + 60 * (i + 1))
             for i in range(AUTOSAVE_KEEP + 1)]
    assert dropped.exists()  # another tab's unsaved session: kept for its offer
    assert not later[0].exists()  # the oldest of the rest went as usual
    forget_dropped(dropped_sessions(tmp_path)[0])  # offered
    write_autosave(snapshot, None, tmp_path, when=T0 + 3600)
    assert not dropped.exists()


def test_an_autosave_waits_for_the_saves_directory_lock(tmp_path):
    import threading

    from rgflow.tui.files import autosave_lock

    snapshot = small_session(1).snapshot()
    written = []
    with autosave_lock(tmp_path):  # another process choosing and writing its autosave
        writer = threading.Thread(
            target=lambda: written.append(write_autosave(snapshot, None, tmp_path, when=T0)))
        writer.start()
        writer.join(0.3)
        assert writer.is_alive() and written == [] and list_autosaves(tmp_path) == []
    writer.join(10)
    assert [p.name for p in written] == ["autosave-unsaved-20260102-030405.npz"]
