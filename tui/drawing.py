"""Drawing the newest published frame on the UI thread: the status line first after a key,
then the view's module (tui/views/) draws its panes; big lattices refresh the maps beside
them at most SLOW_PANE_HZ."""

import time

from .status import StatusContext, status_text
from .views import MODULES, VIEW_TITLES, VIEWS

BIG_LATTICE = 64  # from this L on, maps beside the lattice refresh at most SLOW_PANE_HZ
SLOW_PANE_HZ = 4.0


class DrawMixin:
    """Frames to the screen (mixed into RgflowApp)."""

    def _init_drawing(self) -> None:
        self._drawn_key = None
        self._drawn_seq = -1
        self._slow_time = 0.0
        self._texts: dict[str, str] = {}
        self._status_first = False
        self._pending_T: tuple[float, int] | None = None  # (T asked for, its command number)
        self._slow_stale = False
        self._draw_times: list[float] = []
        self.measured_fps = 0.0
        self.frames_drawn = 0

    def _loading(self, text: str, done: int | None = None, total: int | None = None) -> None:
        self.loading_text = text
        self.loading_log.append(text)
        self.w("loading-text").update(text or "Ready")
        if done is not None:
            self.w("loading-progress").update(total=total, progress=done)
        if self.live:
            self._draw(force=True)

    def _show_live(self) -> None:
        self.live = True
        self.w("views").current = self.view
        self._draw(force=True)
        self.call_after_refresh(self._build_views)  # the views not composed at start

    def _kernels_ready(self) -> None:
        self.ready = True
        self.loading_text = ""
        self.refresh_bindings()
        if self.autorun:
            self.driver.set_running(True)
        self._draw(force=True)
        # the collection takes ~70 ms: after "running" is on screen, so that it does not
        # hold that line back (the first steps still wait for it)
        self.call_after_refresh(self._freeze_start_up_objects)

    @staticmethod
    def _freeze_start_up_objects() -> None:
        # Everything imported and compiled so far lives as long as the app: out of the
        # collector's sight, a full collection takes ~20 ms instead of ~180 ms (numba, numpy
        # and Textual make a few hundred thousand objects), a pause any key press would wait
        # out. `rgflow` starts with the collector off (tui/cli/app_cmds.py); on from here.
        import gc

        gc.collect()
        gc.freeze()
        gc.enable()

    def watch_view(self, view: str) -> None:
        self.driver.view = view
        if self.live:
            self.w("views").current = view
        self._show_page()
        self.driver.wake()  # the worker schedules the new view's analysis
        self._draw(force=True)

    def watch_page(self, _page: int) -> None:
        self._show_page()
        self._draw(force=True)

    def watch_selected_unit(self, unit: int) -> None:
        self.driver.selected_unit = unit
        self.driver.request_publish()  # the worker sends that unit's weights

    def watch_rg_level_index(self, index: int) -> None:
        self.driver.rg_level_index = index
        self.driver.wake()
        self._draw()

    def _draw(self, force: bool = False) -> None:
        pub = self.driver.published
        if pub is None or not self.live or not self.main_screen_active:
            return  # drawing pauses behind modal screens
        if not self.w(self.view).built:
            return  # shown before its widgets exist: drawn once they do (_build_views)
        if self._status_first:
            return  # a key's feedback goes out alone first; _status_shown draws then
        key = (pub.seq, self.view, self.page, self.layout_mode, self.selected_unit,
               self.rg_level_index, self.driver.analysis_version, self.running, self.ready)
        f = pub.frame
        now = time.monotonic()
        # big lattices: the derived maps beside the lattice refresh at most SLOW_PANE_HZ
        slow = force or f.L < BIG_LATTICE or now - self._slow_time >= 1.0 / SLOW_PANE_HZ
        if key == self._drawn_key and not force:
            if not (self._slow_stale and slow):
                return
        else:
            self._drawn_key = key
            self._drawn_seq = pub.seq
            self._draw_times = [t for t in self._draw_times if now - t < 1.0] + [now]
            self.measured_fps = len(self._draw_times)
            self.frames_drawn += 1
            self.set_text("status", self.status_line(pub))
        if slow:
            self._slow_time = now
        self._slow_stale = not slow
        module = MODULES[self.view]
        if not f.preview:
            module.draw(self, f, pub.extras, slow)
        elif hasattr(module, "draw_preview"):  # the lattice before the session exists
            module.draw_preview(self, f)

    def set_text(self, widget_id: str, text: str) -> None:
        """Update a fixed-size Static only when its text changes, without a layout pass
        (a layout pass makes Textual recompose the whole screen)."""
        if self._texts.get(widget_id) != text:
            self._texts[widget_id] = text
            self.w(widget_id).update(text, layout=False)

    def _update_status(self, first: bool = False) -> None:
        """Redraw just the status line. first=True (a key press): the next screen update
        carries only this line (~1 ms to compose), frames are drawn right after it."""
        pub = self.driver.published
        if pub is not None and self.live and self.main_screen_active:
            self.set_text("status", self.status_line(pub))
            if first and not self._status_first:
                self._status_first = True
                self.screen.call_after_refresh(self._status_shown)

    def _status_shown(self) -> None:
        self._status_first = False
        self._draw()

    def status_line(self, pub) -> str:
        pending = self._pending_T
        if pending is not None and pub.commands >= pending[1]:
            self._pending_T = pending = None  # the session has it: frames show it from now on
        ctx = StatusContext(
            view_number=VIEWS.index(self.view) + 1, view_count=len(VIEWS),
            view_title=VIEW_TITLES[self.view], page=self.page, pages=self.pages_of(self.view),
            paged=self.layout_mode != "wide", ready=self.ready, loading_text=self.loading_text,
            running=self.running, pending_T=None if pending is None else pending[0],
            fps=self.measured_fps, job_text=self.reproduce_status)
        return status_text(pub.frame, pub.extras, ctx, self.size.width)
