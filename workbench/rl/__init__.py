"""Reinforcement learning: hybrid TD3 (quantum block in the actor, seed 002) and its matched classical twin."""

from .run import TD3Run, resume_td3
from .td3 import RLError, TD3Agent, TD3Config, actor_spec, make_env

__all__ = ["RLError", "TD3Agent", "TD3Config", "TD3Run", "actor_spec", "make_env", "resume_td3"]
