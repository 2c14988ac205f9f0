"""What an rgflow file is: one format-id style (`rgflow-<kind>`) for every file, the kind of
any npz (from its format id, or from its members for files written by hand), and the
one-line message a reader gives when it gets the wrong kind.

Files written before the ids were unified ("rgflow.rg", "rgflow.trained_rbm") are still
read: LEGACY_IDS maps them to their kind."""

from .errors import DataFileError

DATASET = "rgflow-ising-samples"
RG_LEVELS = "rgflow-rg-levels"
TRAINED_RBM = "rgflow-trained-rbm"
SESSION = "rgflow-session"
REPRODUCE_STAGE = "rgflow-reproduce-stage"

# format id -> what the file is, and the command that writes it
KINDS = {
    DATASET: "a dataset (rgflow sample)",
    RG_LEVELS: "RG levels (rgflow rg)",
    TRAINED_RBM: "a trained RBM (rgflow train)",
    SESSION: "a session save (rgflow run, or the app)",
    REPRODUCE_STAGE: "a reproduce stage (rgflow reproduce)",
}
LEGACY_IDS = {"rgflow.rg": RG_LEVELS, "rgflow.trained_rbm": TRAINED_RBM}


def kind_of(meta: dict, members) -> str | None:
    """The format id of a file from its meta (legacy ids mapped), else guessed from its
    members (a hand-made dataset has only 'spins'); None when it is none of ours."""
    fmt = meta.get("format") if isinstance(meta, dict) else None
    fmt = LEGACY_IDS.get(fmt, fmt)
    if fmt in KINDS:
        return fmt
    if fmt is not None:
        return None
    names = set(members)
    if "spins" in names and "W" not in names:
        return DATASET
    if "level1" in names:
        return RG_LEVELS
    if {"W", "visible_bias", "hidden_bias"} <= names:
        return TRAINED_RBM
    return None


def describe(kind: str | None) -> str:
    return KINDS.get(kind, "not an rgflow file")


def require_kind(path, meta: dict, members, expected: str, option: str) -> None:
    """Refuse a file of another known kind with a message naming both kinds, e.g.
    "r.npz: is a trained RBM (rgflow train); --data needs a dataset (rgflow sample)".
    Unknown files go on to the reader's own member checks."""
    kind = kind_of(meta, members)
    if kind is not None and kind != expected:
        raise DataFileError(path, f"is {describe(kind)}; {option} needs {describe(expected)}")
