"""The key table of the help screen and the README, generated from the app's bindings
(tests/test_app.py checks that every binding has a row and that the README's table is this
one)."""

KEYS_MARKER = "<!-- keys: generated from the app's bindings (tui/keys.py) -->"
README_START = "<!-- keys start: tui/keys.py; tests/test_app.py checks this table -->"
README_END = "<!-- keys end -->"
# (binding ids, what they do): one row each; every binding id of the app is in one row
KEY_ROWS = (
    (("run",), "run / pause"),
    (("step",), "one step (sweeps, sampling, one RBM update)"),
    (("t-up", "t-down"), "temperature +0.01 / −0.01"),
    (("t-up-big", "t-down-big"), "temperature +0.1 / −0.1"),
    (("algorithm",), "cycle Monte Carlo algorithm (Metropolis, heat-bath, Wolff)"),
    (("rg-rule",), "cycle RG rule (block average, majority, decimation)"),
    (("rg-down", "rg-up"), "previous / next RG level"),
    (("gr-log",), "G(r) on log-log / linear axes (plots view)"),
    (("connected",), "⟨v h⟩ maps connected (⟨v h⟩ − ⟨v⟩⟨h⟩) / not connected (view 3)"),
    (("train",), "RBM training on / off"),
    (("flow",), "one RBM flow step v → h → v (on a frozen copy of the RBM)"),
    (("unit-up", "unit-down", "unit-left", "unit-right"),
     "select the hidden unit (on its grid)"),
    (("view", "view-back"), "next / previous view (or page, in a small terminal)"),
    (("view-dashboard", "view-rbm", "view-correlators", "view-plots", "view-flow"),
     "jump to view 1 … 5"),
    (("save",), "save (asks for a name the first time)"),
    (("open",), "open a saved session (or any path)"),
    (("help",), "this help (Escape closes it)"),
    (("palette",), "command palette"),
    (("quit",), "quit (asks when there are unsaved changes)"),
    (("quit-now-key", "quit-now"),
     "quit at once, writing a new autosave `saves/autosave-<session>-<time>.npz`"),
)
KEY_NAMES = {"space": "space", "left_square_bracket": "[", "right_square_bracket": "]",
             "equals_sign": "=", "minus": "-", "plus": "+", "underscore": "_",
             "question_mark": "?", "colon": ":"}


def readable(key: str) -> str:
    return KEY_NAMES.get(key, key)


def binding_keys(binding) -> list[str]:
    """A binding's keys as a person types them (shift+symbol aliases left out)."""
    keys = [k.strip() for k in binding.key.split(",")]
    return [readable(k) for k in keys if not (k.startswith("shift+") and len(keys) > 1)]


def key_table(bindings) -> str:
    """The markdown key table for these bindings."""
    by_id = {b.id: b for b in bindings}
    lines = ["| key | action |", "|---|---|"]
    for ids, text in KEY_ROWS:
        keys = " / ".join(", ".join(binding_keys(by_id[i])) for i in ids)
        keys = keys.replace("|", "\\|")
        lines.append(f"| {keys} | {text} |")
    return "\n".join(lines)
