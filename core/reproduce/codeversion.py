"""The code version of a stage kind, derived from the source: the sha256 of the module that
defines the kind's function and of every project module it imports, directly or through
others (imports found by parsing each module with `ast`, including imports inside
functions), plus the numpy and numba versions. Changing a module changes the version of
exactly the kinds whose code can reach it, so their cached files are recomputed and no
others are.
"""

import ast
import hashlib
import importlib.util
from functools import cache
from pathlib import Path

PROJECT = "rgflow"


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> list:
    """Absolute names an `from X import a, b` may refer to: X, and X.a, X.b (submodules)."""
    if node.level:
        parts = module.split(".")
        base = parts if is_package else parts[:-1]
        base = base[: len(base) - (node.level - 1)]
        target = ".".join(base + ([node.module] if node.module else []))
    else:
        target = node.module or ""
    return [target] + [f"{target}.{alias.name}" for alias in node.names]


def _source_file(name: str, project: str) -> Path | None:
    if name != project and not name.startswith(project + "."):
        return None
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.origin or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


def imported_modules(name: str, project: str = PROJECT) -> dict:
    """{module name: source file} of `name` and every `project` module it imports,
    transitively. A package's __init__ counts only where it is imported by name."""
    found: dict = {}
    todo = [name]
    while todo:
        mod = todo.pop()
        if mod in found:
            continue
        path = _source_file(mod, project)
        if path is None:
            continue
        found[mod] = path
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                todo += [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                todo += _resolve(mod, is_package, node)
    return found


@cache
def _file_digest(path: Path, mtime_ns: int, size: int) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def source_version(name: str, project: str = PROJECT) -> str:
    """sha256 over the names and sources of `name` and the project modules it imports."""
    h = hashlib.sha256()
    for mod, path in sorted(imported_modules(name, project).items()):
        st = path.stat()
        h.update(f"{mod}\0{_file_digest(path, st.st_mtime_ns, st.st_size)}\0".encode())
    return h.hexdigest()


def code_version(func) -> str:
    """The code version of a stage function: its module's `source_version` and the numpy /
    numba versions."""
    from ..npzio import versions

    v = versions()
    h = hashlib.sha256(source_version(func.__module__).encode())
    h.update(f"numpy {v['numpy']} numba {v['numba']}".encode())
    return h.hexdigest()
