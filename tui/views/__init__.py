"""The app's views: one module each, holding its panes, its drawing and its export.

Every view module has TITLE, SHORT (a title for narrow status lines), PANES (its pane ids in
reading order), compose() (its widgets), draw(app, frame, extras, slow) and
export(app, frame, extras) -> dict of arrays; optionally draw_preview(app, frame) for a
preview frame (core/frame.py: a new session's lattice before the session exists).
"""

from . import correlators, dashboard, flow, plots, rbm

MODULES = {"dashboard": dashboard, "rbm": rbm, "correlators": correlators, "plots": plots,
           "flow": flow}
VIEWS = tuple(MODULES)
VIEW_TITLES = {name: module.TITLE for name, module in MODULES.items()}
PANES = {name: module.PANES for name, module in MODULES.items()}
