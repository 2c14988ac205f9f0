"""Automatic code versions of stage kinds (rgflow.core.reproduce.codeversion): a change in a
module a stage imports (directly, through another module, or inside a function) changes its
version; a change anywhere else does not."""

import sys
import textwrap

import pytest

from rgflow.core.reproduce.codeversion import imported_modules, source_version

FILES = {
    "__init__.py": "",
    "stage.py": """
        from .helper import square
        from . import maths

        def run(x):
            import pkgcv.late
            return square(x) + maths.TWO
    """,
    "helper.py": "from pkgcv.deep import ONE\n\ndef square(x):\n    return x * x + ONE\n",
    "deep.py": "ONE = 1\n",
    "maths.py": "TWO = 2\n",
    "late.py": "LATE = 3\n",
    "unrelated.py": "import numpy\nNOTHING = 0\n",
}


@pytest.fixture
def package(tmp_path, monkeypatch):
    root = tmp_path / "pkgcv"
    root.mkdir()
    for name, text in FILES.items():
        (root / name).write_text(textwrap.dedent(text))
    monkeypatch.syspath_prepend(str(tmp_path))
    # finding a submodule imports its package: forget any other test's copy of it
    for name in [m for m in sys.modules if m.split(".")[0] == "pkgcv"]:
        monkeypatch.delitem(sys.modules, name)
    yield root
    for name in [m for m in sys.modules if m.split(".")[0] == "pkgcv"]:
        del sys.modules[name]


def _edit(path, extra="# changed, a longer file\n"):
    path.write_text(path.read_text() + extra)


def test_imports_are_found_transitively(package):
    found = set(imported_modules("pkgcv.stage", project="pkgcv"))
    assert found == {"pkgcv.stage", "pkgcv.helper", "pkgcv.deep", "pkgcv.maths",
                     "pkgcv.late", "pkgcv"}


@pytest.mark.parametrize(("changed", "affects"), [
    ("stage.py", True), ("helper.py", True), ("deep.py", True), ("maths.py", True),
    ("late.py", True), ("unrelated.py", False),
])
def test_version_changes_exactly_with_imported_code(package, changed, affects):
    before = source_version("pkgcv.stage", project="pkgcv")
    _edit(package / changed)
    after = source_version("pkgcv.stage", project="pkgcv")
    assert (after != before) is affects
    # the unrelated module's own version does change
    if changed == "unrelated.py":
        assert source_version("pkgcv.unrelated", project="pkgcv") != before


def test_real_stage_kinds_reach_their_kernels_and_not_the_front_ends():
    from rgflow.core.reproduce.plan import STAGE_FUNCS

    flow = set(imported_modules(STAGE_FUNCS["flow"].__module__))
    assert {"rgflow.core.rbm", "rgflow.core.thermometer", "rgflow.core.correlators",
            "rgflow.core.reproduce.exp3_rbm_flow"} <= flow
    assert not [m for m in flow if m.startswith("rgflow.tui")]
    assert "rgflow.core.session" not in flow
    mc = set(imported_modules(STAGE_FUNCS["mc"].__module__))
    assert "rgflow.core.sampling" in mc and "rgflow.core.reproduce.exp3_rbm_flow" not in mc
