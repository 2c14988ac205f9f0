"""Background jobs of the app: a reproduce preset and the classifier calibration, each on
its own thread worker, and 'Train N steps', in slices on the session's worker. Threads post
typed messages; the app's handlers (on the UI thread) change what the UI shows."""

import threading
from collections.abc import Iterator
from pathlib import Path

from textual.message import Message

from rgflow.core.errors import RgflowError, UsageError

from .cli.common import format_seconds


class JobNotice(Message):
    """A background job has something to say (a notification)."""

    def __init__(self, text: str, severity: str = "information", timeout: float = 4) -> None:
        super().__init__()
        self.text, self.severity, self.timeout = text, severity, timeout


class ReproduceStatus(Message):
    """The reproduce run's status-line field changed ('' when it ended)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class CalibrationDone(Message):
    """The classifier calibration ended: its result, or None (failed or cancelled)."""

    def __init__(self, result: dict | None) -> None:
        super().__init__()
        self.result = result


def error_text(exc: Exception) -> str:
    """A background job's error for a notification: our own errors are already sentences."""
    return str(exc) if isinstance(exc, RgflowError) else f"{type(exc).__name__}: {exc}"


def train_job(driver, n: int) -> Iterator[tuple[int, int]]:
    """n RBM updates, one per next(), on the session's worker."""
    for i in range(n):
        driver.session.train()
        yield i + 1, n
    driver.listener.notify(f"trained {n} steps (now {driver.session.trainer.steps_done})",
                           timeout=3)


def flow_job(driver, n: int) -> Iterator[tuple[int, int]]:
    """n flow steps on the frozen RBM, one per next(), on the session's worker."""
    for i in range(n):
        driver.session.flow_step()
        yield i + 1, n
    driver.listener.notify(f"{n} flow steps done (flow step {driver.session.flow_step_count})",
                           timeout=3)


def run_reproduce(post, preset, out: Path, threads: int, stop: threading.Event) -> dict:
    """Thread worker body: run a reproduce preset into out, posting its progress. Returns
    the run's summary, or {'stopped': ...} / {'error': ...}; never raises."""
    from rgflow.core.reproduce import Pipeline, check_out_dir

    state = {"index": 0, "shown": None}

    def show(text: str) -> None:
        if text != state["shown"]:  # post only changes (progress ticks are frequent)
            state["shown"] = text
            post(ReproduceStatus(text))

    def report(event, stage, **info):
        if event == "start":
            state["index"] += 1
        label = f"reproduce {state['index']}/{len(pipeline.stages)} {stage.name}"
        if event == "start":
            show(label + (" (cached)" if info["cached"] else ""))
        elif event == "progress" and info.get("total"):
            show(f"{label} {100 * info['done'] // info['total']}%")

    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        check_out_dir(out, False)
        pipeline = Pipeline(preset, out, jobs=threads, report=report, stop=stop.is_set)
        plan = pipeline.estimates()
        todo = [st for st in plan if not st["cached"]]
        estimate = sum(st["estimate_s"] for st in todo)
        post(JobNotice(f"reproduce {preset.name}: {len(plan)} stages ({len(plan) - len(todo)} "
                       f"cached), estimated {format_seconds(estimate)}; output in {out}",
                       timeout=6))
        summary = pipeline.run()
    except KeyboardInterrupt:
        result = {"stopped": True, "stage": state["index"]}
        post(JobNotice(f"reproduce {preset.name} stopped in stage {state['index']}; "
                       "finished stages stay cached", severity="warning", timeout=6))
    except Exception as exc:
        message = error_text(exc)
        result = {"error": message}
        post(JobNotice(f"reproduce {preset.name} failed: {message}", severity="error",
                       timeout=10))
    else:
        summary["report"] = str(out / "report.md")
        result = summary
        post(JobNotice(f"reproduce {preset.name} done in "
                       f"{format_seconds(summary['seconds'])}: {out / 'report.md'}",
                       timeout=10))
    finally:
        post(ReproduceStatus(""))
    return result


def run_calibration(post, L: int, seed: int, threads: int, stop: threading.Event) -> None:
    """Thread worker body: fit the classifier thermometer at L; posts CalibrationDone."""
    from rgflow.core.live_analysis import calibrate_classifier

    try:
        result = calibrate_classifier(L, seed, threads=threads, stop=stop.is_set)
    except KeyboardInterrupt:
        result = None
        post(JobNotice("classifier calibration cancelled", timeout=4))
    except Exception as exc:
        post(JobNotice(f"classifier calibration failed: {error_text(exc)}", severity="error",
                       timeout=8))
        result = None
    post(CalibrationDone(result))


class JobsMixin:
    """The app's job actions and message handlers (mixed into RgflowApp)."""

    def _init_jobs(self) -> None:
        self._reproduce_stop = threading.Event()
        self.reproduce_status = ""  # status-line field while a run is going
        self.reproduce_log: list[str] = []  # every status field shown, oldest first
        self.reproduce_result: dict | None = None  # the last run's summary, or its error
        self.calibrating = False
        self._calibrate_stop = threading.Event()

    def _stop_jobs(self) -> None:
        self._reproduce_stop.set()
        self._calibrate_stop.set()

    def _count(self, text: str) -> int | None:
        """A positive whole number typed in a dialog, or None (after a notification)."""
        try:
            n = int(text)
        except ValueError:
            n = 0
        if n <= 0:
            self.notify(f"not a positive whole number: {text!r}", severity="error")
            return None
        return n

    # -- train N steps, flow N steps (on the session worker)
    def train_steps_text(self, text: str) -> None:
        n = self._count(text)
        if n is None:
            return
        driver = self.driver

        def start(s):
            if not s.can_train():
                raise UsageError(f"training needs at least {s.config.batch} stored samples "
                                 f"(have {s.dataset_size})")
            driver.start_job(train_job(driver, n), n)
            return f"training {n} steps in the background"
        self.submit(start)

    def flow_steps_text(self, text: str) -> None:
        n = self._count(text)
        if n is None:
            return
        driver = self.driver
        self.submit(lambda s: driver.start_job(flow_job(driver, n), n) or
                    f"{n} flow steps in the background")

    def reset_flow(self, source: str) -> None:
        """Restart the flow chains; the next step freezes the RBM as it is then."""
        self.submit(lambda s: s.flow_reset(source))

    def cancel_job(self) -> None:
        driver = self.driver

        def cancel(_s):
            if driver.job is None:
                return "no job is running"
            done = driver.cancel_job()
            return f"job cancelled after {done[0] if done else 0} steps"
        self.submit(cancel)

    # -- reproduce
    def reproduce_running(self) -> bool:
        return any(w.group == "reproduce" and not w.is_finished for w in self.workers)

    def start_reproduce(self, text: str) -> None:
        """Run a reproduce preset into <saves>/reproduce-<preset>; progress on the status
        line, the report path in a notification when done."""
        from rgflow.core.persist import saves_dir
        from rgflow.core.reproduce import get_preset

        if self.reproduce_running():
            self.notify("a reproduce run is already going (palette: Stop reproduce run)",
                        severity="warning")
            return
        try:
            preset = get_preset(text.strip().lower())
        except RgflowError as exc:
            self.notify(str(exc), severity="error")
            return
        out = saves_dir(self.saves_dir) / f"reproduce-{preset.name}"
        self._reproduce_stop = stop = threading.Event()
        self._set_reproduce_status(f"reproduce {preset.name}: starting")

        def work():  # reproduce_result is written by this thread only
            self.reproduce_result = None
            self.reproduce_result = run_reproduce(self.post_message, preset, out,
                                                  self.driver.threads, stop)
        self.run_worker(work, thread=True, group="reproduce", exclusive=True,
                        name=f"reproduce-{preset.name}")

    def stop_reproduce(self) -> None:
        if not self.reproduce_running():
            self.notify("no reproduce run is going")
            return
        self._reproduce_stop.set()
        self.notify("stopping the reproduce run at its next check…", timeout=3)

    def on_reproduce_status(self, message: ReproduceStatus) -> None:
        self._set_reproduce_status(message.text)

    def _set_reproduce_status(self, text: str) -> None:
        self.reproduce_status = text
        if text:
            self.reproduce_log.append(text)
        self._update_status()

    def on_job_notice(self, message: JobNotice) -> None:
        self.notify(message.text, severity=message.severity, timeout=message.timeout)

    # -- classifier thermometer
    def calibrate_classifier(self) -> None:
        """Sample labelled data at the session's L and fit the classifier thermometer on a
        thread worker; the flow view reads the flow chains with it from then on."""
        if self.calibrating:
            self.notify("the classifier thermometer is being calibrated already")
            return
        self.calibrating = True
        self._calibrate_stop = stop = threading.Event()

        def start(s):  # L and seed come from the session, on its own worker
            L, seed = s.config.L, s.config.seed
            self.driver.listener.call(lambda: self._start_calibration(L, seed, stop))
        self.submit(start)

    def _start_calibration(self, L: int, seed: int, stop: threading.Event) -> None:
        self.notify(f"calibrating the classifier thermometer at L={L} in the background…",
                    timeout=4)
        self.run_worker(lambda: run_calibration(self.post_message, L, seed,
                                                self.driver.threads, stop),
                        thread=True, group="thermometer", exclusive=True,
                        name="calibrate-classifier")
        self._draw(force=True)

    def cancel_calibration(self) -> None:
        if self.calibrating:
            self._calibrate_stop.set()

    def on_calibration_done(self, message: CalibrationDone) -> None:
        self.calibrating = False
        result = message.result
        if result is not None:
            self.driver.classifier = result
            self.notify(f"classifier thermometer ready (L={result['L']}, held-out accuracy "
                        f"{result['heldout_accuracy']:.2f}, chance {result['chance']:.2f})",
                        timeout=5)
        self.driver.request_publish()
        self._draw(force=True)
