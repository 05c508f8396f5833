"""JEPA world models, regularisers, planners and the planning agent.

    from jepa_agent import JEPAAgent
    agent = JEPAAgent.from_pretrained()          # the checkpoint shipped in the package
    action = agent.act(obs, goal_obs)
"""

from jepa_agent.agent import JEPAAgent
from jepa_agent.planner_config import PlannerConfig
from jepa_agent.planners import CEMPlanner, MPPIPlanner, make_planner
from jepa_agent.world_model import ModelConfig, WorldModel, load_world_model

__version__ = "0.2.0.dev0"

__all__ = ["JEPAAgent", "WorldModel", "ModelConfig", "load_world_model", "PlannerConfig", "MPPIPlanner",
           "CEMPlanner", "make_planner", "__version__"]
