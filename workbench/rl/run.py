"""A TD3 run: the environment loop, its metric stream, the run store, checkpoints and resume.

Events (kind, step = environment steps done, epoch = episodes done):
- start: run id, agent, actor parameter count, gradient method and its reason.
- episode: return, length.
- step (every log_every environment steps once updates begin): critic_loss, actor_loss, actor_grad_norm,
  quantum_grad_norm / quantum_grad_variance (hybrid), circuit_executions since the last step event, and the
  gradient method's accounting (surrogate: forward/surrogate/parameter-shift circuits and shots, fit error,
  gradient cosine).
- evaluation: mean return of eval_episodes deterministic episodes (end of the run).
- end: status and final metrics.
"""

from __future__ import annotations

import io
import threading
import time
from dataclasses import asdict
from typing import Any

import torch

from ..store import RunStore
from ..training.metrics import MetricStream
from ..training.trainer import TrainConfig, environment as run_environment
from .td3 import RLError, ReplayBuffer, TD3Agent, TD3Config, make_env


class TD3Run:
    """One TD3 run. `run()` blocks; `cancel()` from another thread stops it at the next step with a checkpoint."""

    def __init__(self, config: TD3Config, *, store: RunStore | None = None, stream: MetricStream | None = None,
                 name: str | None = None, parent_id: str | None = None):
        self.config = config
        self.store = store
        self.stream = stream if stream is not None else MetricStream()
        self.name = name or f"td3-{config.agent}-{config.env}"
        self.parent_id = parent_id
        torch.manual_seed(config.seed)
        self.env = make_env(config.env)
        obs_dim, act_dim = self.env.observation_space.shape[0], self.env.action_space.shape[0]
        low = torch.as_tensor(self.env.action_space.low, dtype=torch.float32)
        high = torch.as_tensor(self.env.action_space.high, dtype=torch.float32)
        self.agent = TD3Agent(config, obs_dim, act_dim, low, high)
        self.buffer = ReplayBuffer(obs_dim, act_dim, config.buffer_size)
        self.position = {"step": 0, "episode": 0}
        self.run_id: str | None = None
        self.status = "idle"
        self._cancel = threading.Event()
        self._pending: list[dict] = []
        self._stats: list[dict[str, float]] = []
        self._executions = self._circuit_executions()

    # -- control --------------------------------------------------------------------------------
    def cancel(self) -> None:
        self._cancel.set()

    def _circuit_executions(self) -> int:
        return sum(layer.circuit_executions for layer in self.agent.actor.quantum_layers.values())

    # -- the loop -------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        if self.store is not None and self.run_id is None:
            # The config's TrainConfig-shaped fields let `runs list` show target and gradient like other runs.
            self.run_id = self.store.create_run(
                spec=self.agent.spec.to_dict(), config={"task": "rl", **asdict(self.config)},
                dataset={"name": self.config.env, "kind": "gymnasium environment"},
                environment=run_environment(TrainConfig(target=self.config.target)), name=self.name,
                parent_id=self.parent_id)
        self._set_status("running")
        self._emit({"kind": "start", "run_id": self.run_id, "agent": self.config.agent, "env": self.config.env,
                    "actor_parameters": self.agent.actor_parameters, "total_steps": self.config.steps,
                    "gradient": self.agent.actor.gradient_info()})
        try:
            while self.position["step"] < self.config.steps and not self._cancel.is_set():
                self._episode()
        except Exception as err:
            message = str(err) if isinstance(err, RLError) else f"{err.__class__.__name__}: {err}"
            self._emit({"kind": "error", "message": message})
            self._set_status("failed", {"error": message})
            self._flush()
            return {"run_id": self.run_id, "status": "failed", "final": {"error": message}}
        status = "cancelled" if self._cancel.is_set() else "completed"
        final = self.evaluate() if status == "completed" else {}
        final.update(steps=self.position["step"], episodes=self.position["episode"],
                     actor_parameters=self.agent.actor_parameters)
        self._emit({"kind": "end", "status": status, **final})
        self._set_status(status, final)
        self._flush()
        return {"run_id": self.run_id, "status": status, "final": final}

    def _episode(self) -> None:
        c = self.config
        obs, _ = self.env.reset(seed=c.seed + self.position["episode"])
        total, length, done = 0.0, 0, False
        while not done:
            if self._cancel.is_set():
                return  # the episode is dropped: resume restarts it from its seed
            obs_t = torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0)
            if self.position["step"] < c.start_steps:
                action = self.agent.offset + self.agent.scale * (2 * torch.rand_like(self.agent.scale) - 1)
            else:
                with torch.no_grad():
                    action = self.agent.act(obs_t)[0]
                action = action + torch.randn_like(action) * c.exploration_noise * self.agent.scale
                action = torch.max(torch.min(action, self.agent.offset + self.agent.scale),
                                   self.agent.offset - self.agent.scale)
            next_obs, reward, terminated, truncated, _ = self.env.step(action.numpy())
            self.buffer.add(obs=obs, action=action, reward=[reward], next_obs=next_obs, done=[float(terminated)])
            obs, total, length = next_obs, total + float(reward), length + 1
            self.position["step"] += 1
            # The step budget may end an episode early; it is recorded with its length.
            done = terminated or truncated or self.position["step"] >= c.steps
            if self.position["step"] >= c.start_steps and len(self.buffer) >= c.batch_size:
                self._stats.append(self.agent.update(self.buffer.sample(c.batch_size)))
                if self.position["step"] % c.log_every == 0:
                    self._emit_step()
        self.position["episode"] += 1
        self._emit({"kind": "episode", "return": total, "length": length})
        if self.position["episode"] % c.checkpoint_every_episodes == 0:
            self._checkpoint()

    def _emit_step(self) -> None:
        stats, self._stats = self._stats, []
        event: dict[str, Any] = {"kind": "step"}
        for key in dict.fromkeys(k for s in stats for k in s):
            values = [s[key] for s in stats if key in s]
            event[key] = sum(values) / len(values)
        executions = self._circuit_executions()
        event["circuit_executions"], self._executions = executions - self._executions, executions
        event["quantum"] = {name: layer.gradient_report() for name, layer in self.agent.actor.quantum_layers.items()}
        self._emit(event)

    def evaluate(self) -> dict[str, float]:
        """Mean return of deterministic episodes (no exploration noise), seeded apart from training's."""
        returns = []
        for i in range(self.config.eval_episodes):
            obs, _ = self.env.reset(seed=10_000 + self.config.seed + i)
            total, done = 0.0, False
            while not done:
                with torch.no_grad():
                    action = self.agent.act(torch.as_tensor(obs, dtype=torch.float32).unsqueeze(0))[0]
                obs, reward, terminated, truncated, _ = self.env.step(action.numpy())
                total, done = total + float(reward), terminated or truncated
            returns.append(total)
        result = {"test_return": sum(returns) / len(returns)}
        self._emit({"kind": "evaluation", "returns": returns, **result})
        return result

    # -- stream, store, checkpoints --------------------------------------------------------------
    def _emit(self, event: dict[str, Any]) -> None:
        event.setdefault("step", self.position["step"])
        event.setdefault("epoch", self.position["episode"])
        event.setdefault("time", time.time())
        self.stream.emit(event)
        if self.store is not None and event["kind"] in ("step", "episode", "evaluation"):
            self._pending.append(event)

    def _flush(self) -> None:
        if self.store is not None and self._pending:
            self.store.append_events(self.run_id, self._pending)
            self._pending = []

    def _set_status(self, status: str, final: dict | None = None) -> None:
        self.status = status
        if self.store is not None and self.run_id is not None:
            self.store.set_status(self.run_id, status, final)

    def checkpoint_state(self) -> dict[str, Any]:
        return {"agent": self.agent.state(), "buffer": self.buffer.state(), "position": dict(self.position),
                "rng": torch.get_rng_state()}

    def _checkpoint(self) -> None:
        if self.store is None:
            return
        self._flush()
        buffer = io.BytesIO()
        torch.save(self.checkpoint_state(), buffer)
        self.store.save_checkpoint(self.run_id, step=self.position["step"], epoch=self.position["episode"],
                                   state=buffer.getvalue())

    def restore(self, state: bytes) -> None:
        saved = torch.load(io.BytesIO(state), weights_only=True)
        self.agent.load(saved["agent"])
        self.buffer.load(saved["buffer"])
        self.position = dict(saved["position"])
        torch.set_rng_state(saved["rng"])
        self._executions = self._circuit_executions()


def resume_td3(run_id: str, store: RunStore, *, stream: MetricStream | None = None,
               steps: int | None = None) -> TD3Run:
    """A TD3 run that continues `run_id` from its last checkpoint (events after it are dropped, then replayed)."""
    record = store.get_run(run_id)
    if record.config.get("task") != "rl":
        raise RLError(f"run {record.id} is not a reinforcement-learning run: resume it with `workbench runs resume`")
    checkpoint = store.latest_checkpoint(record.id)
    if checkpoint is None:
        raise RLError(f"run {record.id} has no checkpoint yet (one is written after each episode): start it again")
    settings = {k: v for k, v in record.config.items() if k != "task"}
    if steps:
        settings["steps"] = steps
    run = TD3Run(TD3Config(**settings), store=store, stream=stream, name=record.name, parent_id=record.parent_id)
    run.run_id = record.id
    step, _, state = checkpoint
    store.truncate_events_after(record.id, step)
    run.restore(state)
    if stream is not None:
        for event in store.events(record.id):
            stream.emit(event)
    return run
