"""How many cores this process may use: the one helper every default thread count uses."""

import os


def available_cores() -> int:
    """Cores in this process's affinity mask (what a container or `taskset` allows), else
    the machine's count; at least 1."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1
