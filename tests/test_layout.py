"""The package layout: the world model's path imports neither example, and moved modules keep aliases."""

import subprocess
import sys
import warnings

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


def test_registry_lives_in_eval_agents_with_a_deprecated_alias():
    import eval.baselines
    from eval import agents

    with pytest.warns(DeprecationWarning, match="eval.agents"):
        assert eval.baselines.make_agent is agents.make_agent
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert eval.baselines.WEIGHTS.is_dir()
    with pytest.raises(AttributeError, match="no attribute"):
        eval.baselines.no_such_name


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
