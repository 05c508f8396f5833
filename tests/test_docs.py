"""The user-facing docs: every relative link resolves inside the repository, and the README's
five-line example runs as written (shipped checkpoint, one episode of 200 steps, ~5-20 s on CPU)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CHANGELOG.md", *sorted((ROOT / "docs").rglob("*.md"))]
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")
FORBIDDEN = re.compile(r"[Ss]ession[- ]?[0-9]+|\.\./shared|SPEC [0-9]")


def _links(path: Path) -> list[str]:
    return [m.group(1) for m in LINK.finditer(path.read_text(encoding="utf-8"))]


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_relative_links_exist_inside_the_repository(doc: Path):
    assert doc.exists(), f"{doc} is missing"
    for target in _links(doc):
        if re.match(r"^[a-z]+:", target) or target.startswith("#"):
            continue  # web addresses and anchors within the page
        resolved = (doc.parent / target.split("#", 1)[0]).resolve()
        assert resolved.is_relative_to(ROOT), f"{doc.name}: link {target!r} leaves the repository"
        assert resolved.exists(), f"{doc.name}: link {target!r} points to a missing file"


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(ROOT)))
def test_docs_name_nothing_outside_the_project(doc: Path):
    hits = [line for line in doc.read_text(encoding="utf-8").splitlines() if FORBIDDEN.search(line)]
    assert not hits, f"{doc.name} refers to material outside the repository or to unnamed runs: {hits[:3]}"


def test_readme_is_a_short_guide():
    assert len((ROOT / "README.md").read_text(encoding="utf-8").splitlines()) <= 260


def _five_lines() -> str:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text.split("## Five lines", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, flags=re.S)
    assert match, "the README's 'Five lines' section has no python block"
    return match.group(1)


def test_readme_five_lines_run(capsys):
    code = _five_lines()
    assert "from jepa_agent import JEPAAgent" in code and "range(200)" in code
    namespace: dict = {}
    exec(compile(code, "README.md (Five lines)", "exec"), namespace)
    info = namespace["info"]
    assert isinstance(bool(info["is_success"]), bool) and float(info["distance"]) >= 0.0
    printed = capsys.readouterr().out.split()
    assert len(printed) == 2 and printed[0] in ("True", "False")
