"""Import hygiene: core never imports textual or rich; headless commands never import
textual; importing core compiles nothing."""

import importlib
import pkgutil
import subprocess
import sys

import pytest


def _walk(package: str) -> list[str]:
    """Every module of a package, found on disk (no hand-kept list to fall behind)."""
    pkg = importlib.import_module(package)
    return [package] + sorted(m.name for m in pkgutil.walk_packages(pkg.__path__, package + "."))


CORE_MODULES = _walk("rgflow.core")
CLI_MODULES = _walk("rgflow.tui.cli")


def test_the_walk_finds_the_modules():
    assert {"rgflow.core.sampling", "rgflow.core.npzio", "rgflow.core.bench.ising"} \
        <= set(CORE_MODULES)
    assert "rgflow.tui.cli.sample" in CLI_MODULES


def run_python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def loaded_after_import(module: str, packages: tuple) -> str:
    """The modules of `packages` that importing `module` in a fresh interpreter loads."""
    return run_python(f"import sys, {module}; "
                      f"print(sorted(m for m in sys.modules if m.split('.')[0] in {packages!r}))")


@pytest.mark.parametrize("module", CORE_MODULES)
def test_core_never_imports_textual_or_rich(module):
    assert loaded_after_import(module, ("textual", "rich")) == "[]"


def test_importing_core_compiles_nothing():
    code = (
        "import numba.core.registry as r, importlib\n"
        f"mods = {CORE_MODULES!r}\n"
        "for m in mods: importlib.import_module(m)\n"
        "from numba.core.dispatcher import Dispatcher\n"
        "import gc\n"
        "compiled = [d.py_func.__qualname__ for d in gc.get_objects() "
        "if isinstance(d, Dispatcher) and d.signatures]\n"
        "print(compiled)\n"
    )
    assert run_python(code) == "[]"


@pytest.mark.parametrize("module", CLI_MODULES)
def test_cli_modules_never_import_textual(module):
    assert loaded_after_import(module, ("textual",)) == "[]"


@pytest.mark.parametrize("argv", [
    ["--help"], ["sample", "--help"], ["rg", "--help"], ["train", "--help"],
    ["run", "--help"], ["info", "--help"], ["bench", "--help"], ["reproduce", "--help"],
])
def test_headless_commands_never_import_textual(argv):
    code = (
        "import sys\n"
        "from rgflow.tui.__main__ import main\n"
        f"try:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    assert run_python(code).splitlines()[-1] == "[]"


@pytest.mark.slow
def test_headless_run_never_imports_textual(tmp_path):
    code = (
        "import sys\n"
        "from rgflow.tui.__main__ import main\n"
        f"rc = main(['run', '--set', 'L=8', '--set', 'batch=10', '--set', 'chains=10', "
        f"'--steps', '5', '--save', {str(tmp_path / 's.npz')!r}])\n"
        f"rc2 = main(['info', {str(tmp_path / 's.npz')!r}])\n"
        "print(rc, rc2, sorted(m for m in sys.modules if m.split('.')[0] == 'textual'))\n"
    )
    assert run_python(code).splitlines()[-1] == "0 0 []"


def test_ci_runs_exactly_the_readme_test_command():
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    readme = (root / "README.md").read_text()
    blocks = [b.split("```", 1)[0].strip() for b in readme.split("```sh\n")[1:]]
    install_and_run, install_and_test = blocks[0], blocks[1]
    assert install_and_run.endswith("rgflow")
    assert install_and_test in (root / ".ci" / "run").read_text()


def test_installs_one_import_name():
    """core/ and tui/ install as rgflow.core and rgflow.tui, never as top-level modules that
    would shadow (or be shadowed by) a user's own `core` or the PyPI package `tui`."""
    code = (
        "import importlib.util as u, os, sys\n"
        "sys.path = [p for p in sys.path if p not in ('', os.getcwd())]\n"
        "print(u.find_spec('core') is None, u.find_spec('tui') is None,\n"
        "      u.find_spec('rgflow.core') is not None, u.find_spec('rgflow.tui') is not None)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd="/")
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["True", "True", "True", "True"]


def test_one_core_count_helper_and_one_rule_list():
    """Default thread counts come from rgflow.core.cpu; the RG rules from config."""
    import pathlib

    import rgflow.core
    import rgflow.tui

    for package in (rgflow.core, rgflow.tui):
        for path in pathlib.Path(package.__path__[0]).rglob("*.py"):
            text = path.read_text()
            if path.name != "cpu.py":
                assert "sched_getaffinity" not in text, path
            if path.name != "config.py":
                assert '("average", "majority", "decimation")' not in text, path



def test_the_app_loads_neither_dask_nor_matplotlib_up_to_a_drawn_frame(tmp_path):
    # the first frame needs neither (they serve `rgflow reproduce` and its figures)
    code = f"""
import asyncio, sys
from rgflow.core.config import SessionConfig
from rgflow.tui.app import create_app

app = create_app(None, config=SessionConfig(L=8, batch=10, chains=10, dataset_capacity=50),
                 warm_up=False, autorun=False, threads=1, saves_dir={str(tmp_path)!r})

async def main():
    async with app.run_test(size=(120, 40)) as pilot:
        while app.driver.published is None or app._drawn_seq != app.driver.published.seq:
            await pilot.pause(0.01)
        print(sorted(m for m in sys.modules
                     if m.split('.')[0] in ('dask', 'distributed', 'matplotlib')))

asyncio.run(main())
"""
    assert run_python(code).splitlines()[-1] == "[]"
