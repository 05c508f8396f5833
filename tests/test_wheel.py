"""The wheel is self-contained: built from the sources, installed into a fresh virtual environment,
and run from a folder outside the checkout, it plays the README's five lines with the shipped
checkpoint and runs the tiny preset of every trainer (world model, image JEPA, video JEPA, whose
MNIST digits ship inside the package).

The fresh environment sees the dependencies of the interpreter running the tests through a ``.pth``
file (no download), and nothing of the checkout: every module must come from the installed wheel.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("tworooms_env", "jepa_agent", "training", "eval")
SOURCES = (*PACKAGES, "pyproject.toml", "README.md", "LICENSE")


def _five_lines() -> str:
    section = (ROOT / "README.md").read_text(encoding="utf-8").split("## Five lines", 1)[1]
    return re.search(r"```python\n(.*?)```", section, flags=re.S).group(1)


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 300) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, cmd))} exited {out.returncode}:\n{out.stdout[-2000:]}\n{out.stderr[-3000:]}"
    return out


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path, dict[str, str]]:
    """(bin folder of the fresh venv, a work folder outside the checkout, the environment to run in)."""
    base = tmp_path_factory.mktemp("wheel")
    src = base / "src"  # a copy, so that building writes nothing into the checkout
    for name in SOURCES:
        if (ROOT / name).is_dir():
            shutil.copytree(ROOT / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(ROOT / name, src / name)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(SDL_VIDEODRIVER="dummy", OMP_NUM_THREADS="1", PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1")
    dist = base / "dist"
    _run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", "--no-build-isolation", "-q", "-w", str(dist)],
         base, env)
    wheel = next(dist.glob("tworooms_jepa-*.whl"))
    target = base / "venv"
    venv.EnvBuilder(with_pip=False).create(target)
    bin_dir = target / ("Scripts" if os.name == "nt" else "bin")
    python = bin_dir / "python"
    site = Path(_run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], base, env)
                .stdout.strip())
    (site / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")  # torch, numpy, gymnasium, ...
    _run([sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)], base, env)
    work = base / "work"
    work.mkdir()
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return bin_dir, work, env


def test_modules_and_data_come_from_the_wheel(installed):
    bin_dir, work, env = installed
    code = ("import importlib, jepa_agent; "
            f"mods = [importlib.import_module(m) for m in {PACKAGES!r}]; "
            "from jepa_agent.world_model import DEFAULT_CHECKPOINT; "
            "from jepa_agent.video.moving_mnist import PACKAGED_MNIST_DIR; "
            "print(jepa_agent.__version__); print(*[m.__file__ for m in mods], sep='\\n'); "
            "print(DEFAULT_CHECKPOINT); print(PACKAGED_MNIST_DIR)")
    lines = _run([str(bin_dir / "python"), "-c", code], work, env).stdout.split()
    site = bin_dir.parent.resolve()
    assert all(Path(p).resolve().is_relative_to(site) for p in lines[1:]), lines
    assert not any(Path(p).resolve().is_relative_to(ROOT) for p in lines[1:])
    assert Path(lines[-2]).is_file() and any(Path(lines[-1]).glob("t10k-images-idx3-ubyte*"))


def test_readme_five_lines_run_from_the_wheel(installed):
    bin_dir, work, env = installed
    out = _run([str(bin_dir / "python"), "-c", _five_lines()], work, env).stdout.split()
    assert len(out) == 2 and out[0] in ("True", "False") and float(out[1]) >= 0.0


@pytest.mark.parametrize("script, args, output", [
    ("tworooms-train", ["--preset", "tiny", "out_dir=wm", "gate_samples=0"], "wm/model.pt"),
    ("tworooms-image-jepa", ["--preset", "tiny", "out_dir=image", "epochs=1"], "image/results.json"),
    ("tworooms-video-jepa", ["--preset", "tiny", "out_dir=video", "iterations=6", "--no-progress"], "video/results.json"),
])
def test_tiny_preset_of_each_trainer_runs_from_the_wheel(installed, script, args, output):
    bin_dir, work, env = installed
    _run([str(bin_dir / script), *args], work, env, timeout=600)
    assert (work / output).is_file()
