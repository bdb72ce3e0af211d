"""Hybrid TD3 (seed 002, hDQNN-TD3): twin classical critics, an actor whose middle is a quantum block
(DNN -> PQC -> DNN, as in the paper), trained on a gymnasium environment with a metric stream, the run
store and exact resume; the classical twin swaps the quantum block for dense layers of at least its
parameter count (training.baseline.matched_classical_spec).

The actor is an ordinary workbench spec, compiled with the run's target, shots and gradient method
(`surrogate` included), so everything the workbench does for a quantum layer holds here too.

Resume: a checkpoint is written at episode ends and holds the networks, optimisers, the replay buffer
and the torch RNG; every episode's environment is reset with seed + episode index, so a resumed run
replays what the uninterrupted run would have done.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .. import compiler, spec as S
from ..training.baseline import matched_classical_spec

ENVIRONMENTS_HELP = "Pendulum-v1 (quick), Hopper-v5/-v4 or Humanoid-v5/-v4 (MuJoCo, optional `rl` extra)"


class RLError(RuntimeError):
    pass


@dataclass
class TD3Config:
    """One TD3 run.

    Args:
        env: gymnasium id. agent: 'hybrid' (quantum block in the actor) or 'classical' (the matched twin).
        steps: environment steps in total; start_steps of them act uniformly at random first.
        qubits, depth: the actor's quantum block; actor_hidden: the actor's classical layer before it.
        hidden: critic width.
        target, shots, gradient, gradient_options: how the quantum block runs (as in TrainConfig).
    """

    env: str = "Pendulum-v1"
    agent: str = "hybrid"
    steps: int = 5000
    start_steps: int = 1000
    batch_size: int = 64
    buffer_size: int = 100_000
    gamma: float = 0.99
    tau: float = 0.005
    actor_lr: float = 3e-3
    critic_lr: float = 3e-3
    exploration_noise: float = 0.1
    policy_noise: float = 0.2
    noise_clip: float = 0.5
    policy_delay: int = 2
    qubits: int = 3
    depth: int = 2
    hidden: int = 64
    actor_hidden: int = 32
    seed: int = 0
    log_every: int = 200
    checkpoint_every_episodes: int = 1
    eval_episodes: int = 3
    target: str = "torch"
    shots: int | None = None
    gradient: str = "auto"
    gradient_options: dict | None = None

    def __post_init__(self) -> None:
        if self.agent not in ("hybrid", "classical"):
            raise RLError(f"agent {self.agent!r}: use 'hybrid' or 'classical'")
        for name in ("steps", "batch_size", "buffer_size", "policy_delay", "qubits", "depth", "hidden", "log_every"):
            if getattr(self, name) < 1:
                raise RLError(f"{name}={getattr(self, name)} must be at least 1")
        if not 0 <= self.start_steps <= self.steps:
            raise RLError(f"start_steps={self.start_steps} must lie in [0, steps={self.steps}]")


def make_env(name: str):
    """A gymnasium environment with a continuous action box, or one clear message saying why not."""
    try:
        import gymnasium as gym
    except ImportError as err:
        raise RLError("reinforcement learning needs gymnasium: pip install 'hybrid-quantum-workbench[rl]'") from err
    try:
        env = gym.make(name)
    except Exception as err:  # unknown ids, missing mujoco/imageio: gymnasium raises several kinds
        raise RLError(f"cannot make environment {name!r} ({err.__class__.__name__}: {err}); available here: "
                      f"{ENVIRONMENTS_HELP}; MuJoCo ones need the `rl` extra") from err
    if not isinstance(env.action_space, gym.spaces.Box) or len(env.observation_space.shape or ()) != 1:
        env.close()
        raise RLError(f"{name!r} needs a continuous (Box) action space and flat observations for TD3")
    return env


def actor_spec(obs_dim: int, act_dim: int, qubits: int, depth: int, hidden: int = 32) -> S.ArchitectureSpec:
    """DNN -> PQC -> DNN: observations through a hidden ReLU layer to angles, a hardware-efficient block read
    out as <Z> per qubit, a linear head, tanh (scaled to the action bounds by the agent)."""
    return S.load_spec({
        "name": f"td3-actor-{qubits}q", "task": "regression", "input_shape": [obs_dim],
        "description": "hDQNN-TD3 actor: observations -> angles -> PQC -> action (seed 002).",
        "blocks": [
            {"type": "linear", "id": "features", "out_features": hidden},
            {"type": "activation", "id": "features_act", "fn": "relu"},
            {"type": "linear", "id": "encode", "out_features": qubits},
            {"type": "activation", "id": "to_angles", "fn": "scaled_tanh", "scale": math.pi},
            {"type": "quantum", "id": "pqc", "role": "intermediate", "qubits": qubits, "encoding": "angle",
             "rotation": "ry", "ansatz": "hardware_efficient", "depth": depth, "entanglement": "ring",
             "readout": {"mode": "estimator"}},
            {"type": "linear", "id": "head", "out_features": act_dim},
            {"type": "activation", "id": "squash", "fn": "tanh"},
        ]})


class Critic(nn.Module):
    """Q(s, a): an MLP on the concatenated observation and action. Shape: (B, obs), (B, act) -> (B, 1)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(obs_dim + act_dim, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                                 nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, action], dim=1))


class ReplayBuffer:
    """A ring buffer of transitions as tensors (so it travels in a checkpoint)."""

    def __init__(self, obs_dim: int, act_dim: int, size: int):
        self.size, self.position, self.full = size, 0, False
        self.data = {"obs": torch.zeros(size, obs_dim), "action": torch.zeros(size, act_dim),
                     "reward": torch.zeros(size, 1), "next_obs": torch.zeros(size, obs_dim), "done": torch.zeros(size, 1)}

    def __len__(self) -> int:
        return self.size if self.full else self.position

    def add(self, **transition: Any) -> None:
        for key, value in transition.items():
            self.data[key][self.position] = torch.as_tensor(value, dtype=torch.float32)
        self.position = (self.position + 1) % self.size
        self.full = self.full or self.position == 0

    def sample(self, batch: int) -> dict[str, torch.Tensor]:
        index = torch.randint(0, len(self), (batch,))
        return {key: value[index] for key, value in self.data.items()}

    def state(self) -> dict[str, Any]:
        n = len(self)
        return {"data": {k: v[:n].clone() for k, v in self.data.items()}, "position": self.position,
                "full": self.full}

    def load(self, state: dict[str, Any]) -> None:
        n = len(state["data"]["obs"])
        for key, value in state["data"].items():
            self.data[key][:n] = value
        self.position, self.full = state["position"], state["full"]


class TD3Agent:
    """The actor (hybrid or classical), twin critics, their targets and optimisers."""

    def __init__(self, config: TD3Config, obs_dim: int, act_dim: int, low: torch.Tensor, high: torch.Tensor):
        self.config = config
        spec = actor_spec(obs_dim, act_dim, config.qubits, config.depth, config.actor_hidden)
        self.spec = spec if config.agent == "hybrid" else matched_classical_spec(spec)
        options = {"target": config.target, "shots": config.shots, "gradient": config.gradient,
                   "gradient_options": config.gradient_options if config.gradient == "surrogate" else None}
        self.actor = compiler.compile(self.spec, **options)
        self.actor_target = compiler.compile(self.spec, **options)
        self.actor_target.load_state_dict(self.actor.state_dict())
        self.critics = nn.ModuleList([Critic(obs_dim, act_dim, config.hidden) for _ in range(2)])
        self.critics_target = copy.deepcopy(self.critics)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=config.actor_lr)
        self.critic_optimizer = torch.optim.Adam(self.critics.parameters(), lr=config.critic_lr)
        self.scale, self.offset = (high - low) / 2, (high + low) / 2
        self.updates = 0

    def act(self, obs: torch.Tensor, *, target: bool = False) -> torch.Tensor:
        actor = self.actor_target if target else self.actor
        return actor(obs) * self.scale + self.offset

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, float]:
        c = self.config
        with torch.no_grad():
            noise = (torch.randn_like(batch["action"]) * c.policy_noise).clamp(-c.noise_clip, c.noise_clip)
            low, high = self.offset - self.scale, self.offset + self.scale
            next_action = torch.max(torch.min(self.act(batch["next_obs"], target=True) + noise * self.scale, high),
                                    low)
            q_next = torch.min(*(q(batch["next_obs"], next_action) for q in self.critics_target))
            q_target = batch["reward"] + c.gamma * (1 - batch["done"]) * q_next
        critic_loss = sum(nn.functional.mse_loss(q(batch["obs"], batch["action"]), q_target) for q in self.critics)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        self.critic_optimizer.step()
        self.updates += 1
        stats = {"critic_loss": float(critic_loss.detach())}
        if self.updates % c.policy_delay == 0:
            actor_loss = -self.critics[0](batch["obs"], self.act(batch["obs"])).mean()
            self.actor_optimizer.zero_grad()
            actor_loss.backward()
            grads = [p.grad.flatten() for p in self.actor.parameters() if p.grad is not None]
            stats["actor_loss"] = float(actor_loss.detach())
            stats["actor_grad_norm"] = float(torch.cat(grads).norm()) if grads else 0.0
            quantum = [layer.weight.grad for layer in self.actor.quantum_layers.values()
                       if layer.weight is not None and layer.weight.grad is not None]
            if quantum:
                stats["quantum_grad_norm"] = float(torch.cat(quantum).norm())
                stats["quantum_grad_variance"] = float(torch.cat(quantum).var())
            self.actor_optimizer.step()
            for net, target in ((self.actor, self.actor_target), (self.critics, self.critics_target)):
                with torch.no_grad():
                    for p, p_target in zip(net.parameters(), target.parameters()):
                        p_target.mul_(1 - c.tau).add_(c.tau * p)
        return stats

    def state(self) -> dict[str, Any]:
        return {"actor": self.actor.state_dict(), "actor_target": self.actor_target.state_dict(),
                "critics": self.critics.state_dict(), "critics_target": self.critics_target.state_dict(),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(), "updates": self.updates}

    def load(self, state: dict[str, Any]) -> None:
        self.actor.load_state_dict(state["actor"])
        self.actor_target.load_state_dict(state["actor_target"])
        self.critics.load_state_dict(state["critics"])
        self.critics_target.load_state_dict(state["critics_target"])
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.updates = state["updates"]

    @property
    def actor_parameters(self) -> int:
        return sum(p.numel() for p in self.actor.parameters())
