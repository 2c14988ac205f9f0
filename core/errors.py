"""Exceptions that the front ends turn into one-line messages (exit code 2 headless)."""


class RgflowError(Exception):
    """Base class: a problem the user can fix (bad argument, bad file, existing output)."""


class UsageError(RgflowError):
    """An argument or configuration value is invalid."""


class DataFileError(RgflowError):
    """An input data file (dataset, RBM) is missing, unreadable or malformed."""

    def __init__(self, path, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class SaveFileError(DataFileError):
    """A session save file cannot be read or written."""
