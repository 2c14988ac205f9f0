"""`rgflow bench tui`: speed of the Textual app, as a script (never a timed test).

Four measurements, each reported as medians over windows:

big-lattice   L=128 (preset "big": Metropolis, no training) running in a 200x70 headless
              app (App.run_test, so Textual composes every frame but writes no bytes) at
              --fps 16: frames drawn per second, and simulation steps per second in the
              app against a plain headless Session.run_steps loop in this process on the
              same numba thread count, half its windows before the app and half after
              (target: >= 15 frames/s at >= 70 % of the rate).
output-bytes  the real `rgflow` (default session: L=32 at Tc, RBM 1024 -> 256, training)
              in a 120x40 pseudo-terminal with TERM=xterm-256color and no COLORTERM
              (256 colours, as over SSH), running: bytes written to the terminal per
              second (target <= 400 KB/s); the same with COLORTERM=truecolor for reference.
startup       seconds from starting `rgflow` (as above, both colour modes) to the live
              lattice on screen, and to the simulation running (all kernels loaded):
              median over 5 starts (1 with --quick), the last one being the run measured;
              and `rgflow open` of a saved default session (256 colours) to its lattice on
              screen and to ready (paused).
key-latency   in that pty session: '=' and '-' alternately, at random 100-250 ms gaps;
              time from writing the key to reading the status line with the new T from
              the terminal (target: p95 <= 50 ms).

This module imports Textual (it measures the app): it lives in tui/, not core/, so core
keeps its rule of never importing textual.
"""

import os
import random
import select
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

from rgflow.core.bench import print_results

FPS = 16.0
BIG_SIZE = (200, 70)
TERM_SIZE = (120, 40)
START_TIMEOUT = 300.0  # a cold numba cache compiles everything first


def _median(xs):
    return float(statistics.median(xs)) if xs else float("nan")


def _percentile(xs, q):
    if not xs:
        return float("nan")
    xs = sorted(xs)
    k = (len(xs) - 1) * q / 100.0
    lo, hi = int(k), min(int(k) + 1, len(xs) - 1)
    return float(xs[lo] + (xs[hi] - xs[lo]) * (k - lo))


# ---------------------------------------------------------------------------------------------
# big lattice, in-process


def _headless_rate(session, threads: int, seconds: float, windows: int) -> list[float]:
    import numba

    numba.set_num_threads(threads)
    session.run_steps(20)  # compile / load kernels
    rates = []
    for _ in range(windows):
        t0 = time.perf_counter()
        n = 0
        while time.perf_counter() - t0 < seconds:
            n += session.run_steps(50)
        rates.append(n / (time.perf_counter() - t0))
    return rates


def bench_big_lattice(seconds: float, windows: int) -> dict:
    import asyncio

    from rgflow.core.config import build_config
    from rgflow.core.session import Session
    from rgflow.tui.app import create_app
    from rgflow.tui.driver import default_threads

    threads = default_threads()
    config = build_config("big")
    # the headless rate is measured before and after the app (the machine's speed drifts)
    baseline = Session(config)
    headless = _headless_rate(baseline, threads, seconds, (windows + 1) // 2)
    app = create_app(Session(config), fps=FPS, warm_up=False, autorun=True, threads=threads,
                     saves_dir=tempfile.mkdtemp(prefix="rgflow-bench-"))
    fps_samples, rate_samples = [], []

    async def main():
        async with app.run_test(size=BIG_SIZE) as pilot:
            while not (app.ready and app.session.step_count > 20):
                await pilot.pause(0.05)
            await pilot.pause(1.0)  # settle: plots built, caches warm
            for _ in range(windows):
                f0, s0, t0 = app.frames_drawn, app.session.step_count, time.perf_counter()
                await asyncio.sleep(seconds)
                dt = time.perf_counter() - t0
                fps_samples.append((app.frames_drawn - f0) / dt)
                rate_samples.append((app.session.step_count - s0) / dt)
            app.exit()

    asyncio.run(main())
    headless += _headless_rate(baseline, threads, seconds, windows - (windows + 1) // 2)
    head, in_app = _median(headless), _median(rate_samples)
    return {
        "case": "big-lattice", "L": config.L, "size": "x".join(map(str, BIG_SIZE)),
        "fps_setting": FPS, "threads": threads, "windows": windows, "window_s": seconds,
        "frames_per_s": _median(fps_samples), "frames_per_s_min": min(fps_samples),
        "app_steps_per_s": in_app, "headless_steps_per_s": head,
        "rate_ratio": in_app / head if head else float("nan"),
        "target": "frames_per_s >= 15 and rate_ratio >= 0.7",
    }


# ---------------------------------------------------------------------------------------------
# the real app in a pseudo-terminal


class PtyApp:
    """`python -m tui` in a pty of the given size; counts what it writes."""

    def __init__(self, size, env_changes: dict, args=(), command=()):
        import fcntl
        import pty
        import struct
        import termios

        self.saves = tempfile.mkdtemp(prefix="rgflow-bench-")
        env = {k: v for k, v in os.environ.items()
               if k not in ("COLORTERM", "NO_COLOR", "TEXTUAL_COLOR_SYSTEM", "SSH_CONNECTION")}
        env.update(env_changes)
        self.master, slave = pty.openpty()
        cols, rows = size
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "rgflow.tui", *command, "--saves-dir", self.saves, *args],
            stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True,
            start_new_session=True)
        os.close(slave)
        self.buffer = bytearray()

    def read(self, timeout: float) -> bytes:
        ready, _, _ = select.select([self.master], [], [], max(0.0, timeout))
        if not ready:
            return b""
        try:
            data = os.read(self.master, 1 << 16)
        except OSError:
            return b""
        self.buffer += data
        if len(self.buffer) > 1 << 16:
            del self.buffer[: len(self.buffer) - (1 << 15)]
        return data

    def wait_for(self, needle: bytes, timeout: float, fresh: bool = True) -> float | None:
        """Read until `needle` shows up in output read from now on (fresh=False: or in what
        was read before, e.g. with the previous needle); its arrival time."""
        if fresh:
            self.buffer.clear()
        elif needle in self.buffer:
            return time.perf_counter()
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            self.read(deadline - time.perf_counter())
            if needle in self.buffer:
                return time.perf_counter()
        return None

    def count_bytes(self, seconds: float) -> int:
        total = 0
        end = time.perf_counter() + seconds
        while (left := end - time.perf_counter()) > 0:
            total += len(self.read(left))
        return total

    def send(self, data: bytes) -> None:
        os.write(self.master, data)

    def close(self) -> None:
        try:
            self.send(b"\x11")  # ctrl+q
            end = time.perf_counter() + 20
            while self.proc.poll() is None and time.perf_counter() < end:
                self.read(0.1)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            os.close(self.master)


def _start(env: dict, command=(), ready: str = "▶ running") -> tuple[PtyApp, float, float]:
    """Start `rgflow [command]` in a pty; (app, seconds to the live lattice, seconds until
    the status line says `ready`: running for a new session, paused for an opened save)."""
    started = time.perf_counter()
    app = PtyApp(TERM_SIZE, env, command=command)
    live = app.wait_for(b" spins ", START_TIMEOUT)
    done = app.wait_for(ready.encode(), START_TIMEOUT, fresh=False)
    if live is None or done is None:
        app.close()
        raise RuntimeError(f"the app did not get to {ready!r}")
    return app, live - started, done - started


def bench_open(starts: int) -> dict:
    """`rgflow open` of a save of the default session, to its lattice on screen and to the
    session ready (paused, every kernel loaded)."""
    from rgflow.core.session import Session

    folder = tempfile.mkdtemp(prefix="rgflow-bench-open-")
    path = os.path.join(folder, "bench.npz")
    session = Session()
    session.run_steps(20)
    session.save(path)
    times = []
    try:
        for _ in range(starts):
            app, live, ready = _start({"TERM": "xterm-256color"}, ("open", path), "‖ paused")
            app.close()
            times.append((live, ready))
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"case": "startup-open", "colors": "256", "starts": starts,
            "live_lattice_s": _median([t[0] for t in times]),
            "live_lattice_s_max": max(t[0] for t in times),
            "ready_s": _median([t[1] for t in times]),
            "target": "live_lattice_s <= 2 on a warm numba cache"}


def bench_terminal(seconds: float, windows: int, presses: int, starts: int) -> list[dict]:
    results = []
    for label, env in (("256", {"TERM": "xterm-256color"}),
                       ("truecolor", {"TERM": "xterm-256color", "COLORTERM": "truecolor"})):
        times = []
        for _ in range(starts - 1):  # extra starts: one start alone is a noisy number
            app, live, running = _start(env)
            app.close()
            times.append((live, running))
        app, live, running = _start(env)
        times.append((live, running))
        try:
            results.append({
                "case": "startup", "colors": label, "starts": starts,
                "live_lattice_s": _median([t[0] for t in times]),
                "live_lattice_s_max": max(t[0] for t in times),
                "running_s": _median([t[1] for t in times]),
                "target": "live_lattice_s <= 2 on a warm numba cache",
            })
            app.count_bytes(2.0)  # past the first full paints
            rates = [app.count_bytes(seconds) / seconds for _ in range(windows)]
            results.append({
                "case": "output-bytes", "colors": label, "size": "x".join(map(str, TERM_SIZE)),
                "windows": windows, "window_s": seconds, "bytes_per_s": _median(rates),
                "bytes_per_s_max": max(rates), "target": "bytes_per_s <= 400000 (256 colours)",
            })
            if label == "256":
                results.append(_key_latency(app, presses))
        finally:
            app.close()
    return results


def _key_latency(app: PtyApp, presses: int) -> dict:
    """Two clocks per press: until the status line shows the requested T (drawn by the UI
    thread at once, marked "T→"), and until a frame the session produced at the new T is
    on screen ("T=")."""
    from rgflow.core.exact import TC

    rng = random.Random(1)
    shown, confirmed, missed = [], [], 0
    T = TC
    for i in range(presses):
        app.count_bytes(rng.uniform(0.10, 0.25))
        key, delta = (b"=", 0.01) if i % 2 == 0 else (b"-", -0.01)
        T = round(T + delta, 6)
        wanted = {"shown": f"{T:.4f}".encode(), "confirmed": f"T={T:.4f}".encode()}
        app.buffer.clear()
        t0 = time.perf_counter()
        app.send(key)
        deadline = t0 + 2.0
        seen: dict[str, float] = {}
        while time.perf_counter() < deadline and len(seen) < 2:
            app.read(deadline - time.perf_counter())
            for name, needle in wanted.items():
                if name not in seen and needle in app.buffer:
                    seen[name] = (time.perf_counter() - t0) * 1e3
        if len(seen) < 2:
            missed += 1
        if "shown" in seen:
            shown.append(seen["shown"])
        if "confirmed" in seen:
            confirmed.append(max(seen["confirmed"], seen.get("shown", 0.0)))
    return {
        "case": "key-latency", "size": "x".join(map(str, TERM_SIZE)), "presses": presses,
        "missed": missed, "p50_ms": _percentile(shown, 50), "p95_ms": _percentile(shown, 95),
        "max_ms": max(shown, default=float("nan")),
        "confirmed_p50_ms": _percentile(confirmed, 50),
        "confirmed_p95_ms": _percentile(confirmed, 95),
        "target": "p95_ms <= 50",
    }


# ---------------------------------------------------------------------------------------------


def run(json_output: bool, quick: bool = False, repeats: int | None = None) -> list[dict]:
    windows = repeats or (2 if quick else 5)
    seconds = 1.0 if quick else 2.0
    presses = 10 if quick else 40
    results = [bench_big_lattice(seconds, windows)]
    results += bench_terminal(seconds, windows, presses, starts=1 if quick else 5)
    results.append(bench_open(starts=1 if quick else 5))
    return print_results(results, json_output, format_table)


def format_table(results: list[dict]) -> str:
    out = ["rgflow app speed (medians over windows)"]
    for r in results:
        if r["case"] == "big-lattice":
            out.append(
                f"L={r['L']} in {r['size']} at --fps {r['fps_setting']:g}, {r['threads']} numba "
                f"thread(s): {r['frames_per_s']:.1f} frames/s (min {r['frames_per_s_min']:.1f}), "
                f"{r['app_steps_per_s']:,.0f} steps/s in the app vs "
                f"{r['headless_steps_per_s']:,.0f} headless = {100 * r['rate_ratio']:.0f} %"
                f"   [target {r['target']}]")
        elif r["case"] == "startup":
            out.append(f"`rgflow` start ({r['colors']} colours, median of {r['starts']}): live "
                       f"lattice on screen after {r['live_lattice_s']:.2f} s (max "
                       f"{r['live_lattice_s_max']:.2f}), running after {r['running_s']:.2f} s   "
                       f"[target {r['target']}]")
        elif r["case"] == "startup-open":
            out.append(f"`rgflow open` of a save ({r['colors']} colours, median of "
                       f"{r['starts']}): its lattice on screen after {r['live_lattice_s']:.2f} s "
                       f"(max {r['live_lattice_s_max']:.2f}), ready after {r['ready_s']:.2f} s   "
                       f"[target {r['target']}]")
        elif r["case"] == "output-bytes":
            out.append(f"default session, {r['size']}, {r['colors']} colours: "
                       f"{r['bytes_per_s'] / 1000:,.1f} KB/s written "
                       f"(max {r['bytes_per_s_max'] / 1000:,.1f})   [target {r['target']}]")
        elif r["case"] == "key-latency":
            out.append(f"key to visible change while running: p50 {r['p50_ms']:.1f} ms, "
                       f"p95 {r['p95_ms']:.1f} ms, max {r['max_ms']:.1f} ms over "
                       f"{r['presses']} presses ({r['missed']} missed)   [target {r['target']}]")
            out.append(f"  ... until a frame of the session at the new T is on screen: "
                       f"p50 {r['confirmed_p50_ms']:.1f} ms, p95 {r['confirmed_p95_ms']:.1f} ms")
    return "\n".join(out) + "\n"


if __name__ == "__main__":  # python -m rgflow.tui.bench_tui [--json] [--quick]
    run("--json" in sys.argv[1:], quick="--quick" in sys.argv[1:])
