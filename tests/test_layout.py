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
