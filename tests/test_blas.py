"""OpenBLAS on one thread while `rgflow` starts (rgflow.core.blas): numpy loads without its
threads, the default count comes back afterwards, a count the user set is never touched, and
every command but the app gets it back at once."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from rgflow.core import blas

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "GOTO_NUM_THREADS", "OMP_NUM_THREADS")

PROBE = """
import json, os
from threadpoolctl import threadpool_info

def openblas():
    return [i["num_threads"] for i in threadpool_info() if i["internal_api"] == "openblas"]
"""

DEFERRED = PROBE + """
from rgflow.core import blas
blas.import_numpy_single_threaded()
import numpy  # loaded by the call above, unless it left OpenBLAS alone
first, env = openblas(), os.environ.get("OPENBLAS_NUM_THREADS")
blas.restore_default_threads()
print(json.dumps({"first": first, "env": env, "restored": openblas()}))
"""

DEFAULT = PROBE + """
import numpy
print(json.dumps(openblas()))
"""


def run(code: str, **env_changes) -> object:
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    env.update(env_changes)
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout)


def openblas_loaded() -> bool:
    from threadpoolctl import threadpool_info

    return any(i["internal_api"] == "openblas" for i in threadpool_info())


needs_openblas = pytest.mark.skipif(not openblas_loaded(), reason="numpy without OpenBLAS")


@needs_openblas
def test_numpy_starts_on_one_thread_and_gets_the_default_count_back():
    default = run(DEFAULT)
    got = run(DEFERRED)
    assert got["first"] == [1]
    assert got["env"] is None  # child processes start with OpenBLAS's own default
    assert got["restored"] == default
    if len(os.sched_getaffinity(0)) > 1:
        assert default[0] > 1  # else the check above would not tell the two apart


@needs_openblas
@pytest.mark.parametrize("variable", THREAD_VARIABLES)
def test_a_thread_count_the_user_set_is_left_alone(variable):
    got = run(DEFERRED, **{variable: "1"})
    assert got["first"] == [1] and got["restored"] == [1]


def test_nothing_happens_when_numpy_is_already_loaded():
    assert "numpy" in sys.modules and np is not None
    blas.import_numpy_single_threaded()
    assert blas._deferred_threads is None
    blas.restore_default_threads()  # no-op
    assert blas._deferred_threads is None


@needs_openblas
def test_a_headless_command_runs_with_the_default_count(tmp_path):
    code = PROBE + f"""
from rgflow.tui.__main__ import main
assert main(["ls", "--saves-dir", {str(tmp_path)!r}]) == 0
print(json.dumps(openblas()))
"""
    env = {k: v for k, v in os.environ.items() if k not in THREAD_VARIABLES}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1]) == run(DEFAULT)
