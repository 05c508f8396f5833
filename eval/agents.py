"""The agent registry: every method ``--agent NAME`` can run, the JEPA agent and the baselines, as
factories returning a policy with the common interface of ``eval.runner`` (``reset(n)``,
``act_batch(obs, goal_obs, infos)``).

A factory takes the parsed options (``checkpoint``, ``planner``, ``seed``, ``device``, ...) and
raises ``Unavailable`` with the reason when the method cannot run (e.g. no trained checkpoint),
so that comparison tables show the row instead of dropping it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from eval.baselines import WEIGHTS
from eval.baselines.scripted import GreedyPolicy, OraclePolicy, RandomPolicy


class Unavailable(RuntimeError):
    """A method that cannot run here; the message says why (and what budget was used)."""


def _planner_options(opts: dict[str, Any]) -> dict[str, Any]:
    extra = dict(opts.get("planner_options") or {})
    if opts.get("seed") is not None:
        extra.setdefault("seed", int(opts["seed"]))
    return extra


def _agent_options(opts: dict[str, Any]) -> dict[str, Any]:
    """JEPAAgent keyword arguments from ``make_agent`` options (planner overrides included)."""
    extra = {"restart_when_stuck": opts["restart_when_stuck"]} if opts.get("restart_when_stuck") is not None else {}
    return dict(replan_every=opts.get("replan_every"), **extra, **_planner_options(opts))


def _jepa(opts: dict[str, Any], default_path=None, name: str = "jepa"):
    from jepa_agent.agent import JEPAAgent

    path = opts.get("checkpoint") or default_path
    try:
        agent = JEPAAgent.from_pretrained(
            path, planner=opts.get("planner"), device=opts.get("device", "cpu"), **_agent_options(opts),
        )
    except (FileNotFoundError, ImportError) as err:
        raise Unavailable(f"no world model checkpoint ({err})") from err
    agent.name = name
    return agent


def _jepa_profile(opts: dict[str, Any]):
    """The shipped profile-feature world model (hand-crafted position features: privileged)."""
    from jepa_agent.world_model import PROFILE_CHECKPOINT

    return _jepa(opts, PROFILE_CHECKPOINT, "jepa-profile")


def _analytic(walls: bool) -> Callable[[dict[str, Any]], Any]:
    def factory(opts: dict[str, Any]):
        from jepa_agent.agent import JEPAAgent
        from jepa_agent.analytic import TruePositionModel

        agent = JEPAAgent(
            TruePositionModel(walls=walls), planner=opts.get("planner") or "mppi", device=opts.get("device", "cpu"),
            **_agent_options(opts),
        )
        agent.name = "jepa-true-dynamics" if walls else "jepa-open-field"
        return agent

    return factory


# Baselines trained on this project's 2-core CPUs ship with the package (eval/baselines/weights/) (their training logs beside
# them): GCBC (convolutional, eval.baselines.gcbc_cnn) 20 minutes on 20,000 freshly generated walks;
# SAC+HER from state 99,185 env steps.
# SAC+HER from pixels is not shipped: 12,000 env steps (25 minutes) gave 0 % and it is 15 MB.
PIXEL_SAC_BUDGET_NOTE = (
    "not trained to a useful level within the CPU budget: 0.0 % [0.0, 1.9] after 12,000 env steps "
    "(25 min, 2 CPU cores); train: python -m eval.baselines.sb3_agents --train --obs pixels"
)


def _checkpoint(opts: dict[str, Any], key: str, default: Path) -> Path:
    """An explicit ``<key>`` or ``checkpoint`` option, else the shipped default."""
    return Path(opts.get(key) or opts.get("checkpoint") or default)


def _offline(name: str) -> Callable[[dict[str, Any]], Any]:
    """An offline GCRL method (``eval.baselines.offline``) from ``<name>_checkpoint`` / ``checkpoint``.

    ``gcbc`` also reads the convolutional GCBC format of ``eval.baselines.gcbc_cnn`` (the shipped
    ``weights/gcbc.pt``, trained on generated walks: it records no dataset tier).
    """

    def factory(opts: dict[str, Any]):
        path = _checkpoint(opts, f"{name}_checkpoint", WEIGHTS / f"{name}.pt")
        if not path.exists():
            raise Unavailable(f"no trained {name.upper()} checkpoint at {path} "
                              f"(train: python -m eval.baselines.train --method {name} --dataset F.npz --out-dir DIR)")
        from eval.baselines.offline import FORMAT, OfflineAgent

        import torch

        ckpt_format = torch.load(path, map_location="cpu", weights_only=True).get("format")
        if name == "gcbc" and ckpt_format != FORMAT:
            from eval.baselines.gcbc_cnn import GCBCAgent

            agent = GCBCAgent.from_pretrained(path, device=opts.get("device", "cpu"))
            agent.name, agent.data_tier = "gcbc", None
            return agent
        agent = OfflineAgent.from_pretrained(path, device=opts.get("device", "cpu"))
        if agent.name != name:
            raise ValueError(f"{path} holds a {agent.name!r} model, not {name!r}: use --agent {agent.name}")
        return agent

    return factory


def _sb3(kind: str) -> Callable[[dict[str, Any]], Any]:
    def factory(opts: dict[str, Any]):
        path = _checkpoint(opts, f"sb3_{kind}_checkpoint", WEIGHTS / f"sac_her_{kind}.zip")
        if not path.exists():
            if kind == "pixels" and not (opts.get(f"sb3_{kind}_checkpoint") or opts.get("checkpoint")):
                raise Unavailable(PIXEL_SAC_BUDGET_NOTE)
            raise Unavailable(f"no trained SB3 agent at {path} (train: python -m eval.baselines.sb3_agents --train)")
        try:
            from eval.baselines.sb3_agents import SB3Agent
        except ImportError as err:
            raise Unavailable(f"stable-baselines3 agents unavailable ({err})") from err
        return SB3Agent.from_pretrained(path, device=opts.get("device", "cpu"))

    return factory


AGENTS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "random": lambda opts: RandomPolicy(seed=int(opts.get("seed") or 0)),
    "greedy": lambda opts: GreedyPolicy(),
    "oracle": lambda opts: OraclePolicy(),
    "jepa": _jepa,
    "jepa-profile": _jepa_profile,
    "jepa-true-dynamics": _analytic(walls=True),
    "jepa-open-field": _analytic(walls=False),
    "gcbc": _offline("gcbc"),
    "gciql": _offline("gciql"),
    "gcivl": _offline("gcivl"),
    "hiql": _offline("hiql"),
    "crl": _offline("crl"),
    "sb3-pixels": _sb3("pixels"),
    "sb3-state": _sb3("state"),
}


def make_agent(name: str, **opts: Any):
    """The policy registered as ``name``; raises ``Unavailable`` or ``ValueError`` (unknown name)."""
    if name not in AGENTS:
        raise ValueError(f"unknown agent {name!r}; expected one of {sorted(AGENTS)}")
    return AGENTS[name](opts)


__all__ = ["AGENTS", "Unavailable", "make_agent"]
