"""The repository cites only documents it contains: every `*.md` file named in a tracked
file exists in the repository, every `core/SCIENCE.md §N` points at a section that exists,
and nothing points outside the repository to a team folder."""

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TEXT_SUFFIXES = {".py", ".md", ".toml", ".tcss", ".txt", ".cfg", ".ini", ".yml", ".yaml"}
MD_NAME = re.compile(r"(?<![\w.-])([\w./-]*\w\.md)\b")
SCIENCE_REF = re.compile(r"SCIENCE\.md\s*((?:§\d+(?:\s*(?:[–,-]|and)\s*)?)+)")
GENERATED = {"report.md"}  # written by `rgflow reproduce`, not a document of the repository
OUTSIDE = re.compile(r"\.\./" + "shared|/work/" + "shared|" + r"\bshared/")


def tracked_files() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split("\n")
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [ROOT / p for p in out if p and (ROOT / p).suffix in TEXT_SUFFIXES
            and (ROOT / p).is_file()]


def missing_documents(files: list[Path], root: Path = ROOT) -> list[str]:
    """'file: name' for each *.md name that no file in `files` has as its name."""
    names = {p.name for p in files} | GENERATED
    bad = []
    for p in files:
        if p.name == Path(__file__).name:
            continue
        for name in MD_NAME.findall(p.read_text(encoding="utf-8", errors="replace")):
            if Path(name).name not in names:
                bad.append(f"{p.relative_to(root)}: {name}")
    return bad


def science_sections() -> set[int]:
    text = (ROOT / "core" / "SCIENCE.md").read_text(encoding="utf-8")
    return {int(n) for n in re.findall(r"^## §(\d+) ", text, flags=re.MULTILINE)}


def test_named_documents_exist():
    assert missing_documents(tracked_files()) == []


def test_the_check_catches_a_missing_document(tmp_path):
    (tmp_path / "a.py").write_text('"""See NOTES.md section 2 and README.md."""\n')
    (tmp_path / "README.md").write_text("hello\n")
    bad = missing_documents([tmp_path / "a.py", tmp_path / "README.md"], tmp_path)
    assert bad == ["a.py: NOTES.md"]


def test_science_section_references_exist():
    sections = science_sections()
    assert sections == set(range(1, max(sections) + 1))
    bad = []
    for p in tracked_files():
        for group in SCIENCE_REF.findall(p.read_text(encoding="utf-8", errors="replace")):
            for n in re.findall(r"§(\d+)", group):
                if int(n) not in sections:
                    bad.append(f"{p.relative_to(ROOT)}: §{n}")
    assert bad == []


def test_nothing_points_outside_the_repository():
    bad = [str(p.relative_to(ROOT)) for p in tracked_files()
           if p.name != Path(__file__).name
           and OUTSIDE.search(p.read_text(encoding="utf-8", errors="replace"))]
    assert bad == []
    assert OUTSIDE.search("see ../" + "shared/notes")
