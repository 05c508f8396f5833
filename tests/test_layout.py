"""The package layout: the world model's path imports neither example, and moved modules keep aliases."""

import subprocess
import sys

import pytest


def test_world_model_path_does_not_import_the_image_or_video_examples():
    code = ("import sys, jepa_agent, training.world_model, eval.planning, eval.compare; "
            "print(sorted(m for m in sys.modules if m.startswith(('jepa_agent.image', 'jepa_agent.video'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("old, new", [
    ("training.image_jepa", "jepa_agent.image.train"),
    ("training.video_jepa", "jepa_agent.video.train"),
    ("training.unroll_eval", "eval.unroll"),
])
def test_old_module_paths_are_deprecated_aliases(old, new):
    import importlib

    sys.modules.pop(old, None)
    with pytest.warns(DeprecationWarning, match=new):
        alias = importlib.import_module(old)
    assert alias is importlib.import_module(new)


def test_registry_lives_in_eval_agents():
    import eval.baselines
    from eval import agents

    assert agents.WEIGHTS is eval.baselines.WEIGHTS and eval.baselines.WEIGHTS.is_dir()
    assert not hasattr(eval.baselines, "make_agent")  # eval.baselines holds the baselines only


def _anchor(heading: str) -> str:
    import re

    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_code_cites_sections_of_docs_reference_that_exist():
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "reference.md").read_text(encoding="utf-8")
    anchors = {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", text, re.M)}
    cited, stale = set(), []
    for path in root.glob("*/**/*.py"):
        if ".venv" in path.parts:
            continue
        source = path.read_text(encoding="utf-8")
        cited |= {(path.name, a) for a in re.findall(r"docs/reference\.md#([a-z0-9-]+)", source)}
        if path.name != "test_docs.py" and re.search(r"SPEC [0-9]", source):
            stale.append(path.name)
    assert cited and not stale, f"section numbers of a document outside the repository in {stale}"
    missing = sorted((name, a) for name, a in cited if a not in anchors)
    assert not missing, f"docstrings cite sections docs/reference.md lacks: {missing}"
