"""The keys' actions that change the session (queued for the driver's worker) or what the
views show (mixed into RgflowApp, whose BINDINGS name them)."""

import numpy as np

from .views.common import unit_side


class ActionsMixin:
    def action_toggle_run(self) -> None:
        self.set_running(not self.running)

    def action_step(self) -> None:
        self.submit(lambda s: s.step() and None)

    def action_temperature(self, delta: float) -> None:
        pub = self.driver.published
        if pub is None:
            return
        pending = self._pending_T
        base = pending[0] if pending is not None else pub.frame.T
        target = round(max(0.01, base + delta), 6)
        number = self.driver.submit(lambda s: s.set_temperature(target))
        # shown at once; the status line marks it "→" until a frame taken after the change
        self._pending_T = (target, number)
        self._update_status(first=True)

    def action_cycle_algorithm(self) -> None:
        self.submit(lambda s: f"algorithm: {s.cycle_algorithm()}")

    def action_cycle_rg_rule(self) -> None:
        self.submit(lambda s: f"RG rule: {s.cycle_rg_rule()}")

    def action_rg_level(self, delta: int) -> None:
        pub = self.driver.published
        levels = max(1, len(pub.frame.rg_levels)) if pub is not None else 1
        self.rg_level_index = int(np.clip(self.rg_level_index + delta, 0, levels - 1))

    def action_toggle_training(self) -> None:
        def toggle(s):
            s.set_training(not s.training)
            return f"training {'on' if s.training else 'off'}"
        self.submit(toggle)

    def action_toggle_gr_log(self) -> None:
        self.gr_log = not self.gr_log

    def watch_gr_log(self, _on: bool) -> None:
        self._draw(force=True)

    def action_toggle_connected(self) -> None:
        self.connected = not self.connected

    def watch_connected(self, _on: bool) -> None:
        self._draw(force=True)

    def action_flow_step(self) -> None:
        self.submit(lambda s: s.flow_step() and None)

    def action_select_unit(self, dx: int, dy: int) -> None:
        pub = self.driver.published
        if pub is None or pub.frame.preview:
            return  # no units before the session exists
        n = pub.extras["hidden"]
        side = unit_side(n) or n
        row, col = divmod(min(self.selected_unit, n - 1), side)
        row = int(np.clip(row + dy, 0, max(0, (n - 1) // side)))
        col = int(np.clip(col + dx, 0, side - 1))
        self.selected_unit = min(n - 1, row * side + col)
