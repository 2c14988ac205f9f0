"""Benchmarks behind `rgflow bench` (scripts, never timed tests)."""

import json
import sys


def print_results(results: list[dict], json_output: bool, format_table) -> list[dict]:
    """One JSON object per line (json_output) or format_table(results), on stdout."""
    if json_output:
        for r in results:
            sys.stdout.write(json.dumps(r, sort_keys=True) + "\n")
    else:
        sys.stdout.write(format_table(results))
    sys.stdout.flush()
    return results
