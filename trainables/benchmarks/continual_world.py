"""Continual-World CW10 with a diffusion policy (000 §4.2, C.2): `continual_world`.

Tasks: the first ``num_tasks`` of ``tasks``, by default CW10 in its order: hammer, push-wall, faucet-close,
push-back, stick-pull, handle-press-side, push, shelf-place, window-close, peg-unplug-side, from the
``metaworld`` package 3.1.1 (presets and their tasks: trainables/benchmarks/continual_world_presets.py;
``cw_laptop``: window-close, faucet-close, handle-press-side, which its small policy learns). Its tasks are
``-v3``; the paper used ``-v1``, so success rates are comparable between runs of this benchmark, not with
the paper's numbers. Observations 39-D; their positions are mapped to [-1, 1] by
Meta-World's fixed hand workspace (``normalize_obs``; one map for all tasks, as a normaliser fitted per task
would shift under the learner), actions 4-D clipped to [-1, 1] (Meta-World's action space, so the paper's
rescaling is the identity), episodes of at most 200 steps, success = the environment's success flag.

Data: ``demos_per_task`` episodes of Meta-World's scripted expert per task (paper: 2,500), generated in
``demo_workers`` processes and cached on disk (trainables/metaworld_tasks.py); failed expert episodes are
dropped unless ``successful_demos_only`` is off. A training sample is one time step t of a demonstration:
the observations t−H+1..t (H = ``obs_horizon``, 6) and the actions t−H+1..t−H+S (S = ``seq_len``, 8),
repeating the episode's first or last step past its ends (Chi et al. 2023).

Policy: ε-prediction diffusion over the action sequence with the 1D FiLM U-Net of trainables/policy_unet.py
conditioned on the flattened observation history; diffusers' DDPM schedule (1000 steps) for training, DDIM
(η = 0, ``ddim_steps``; paper: 50) for sampling (both in trainables/ddpm.py). Per-sample loss: mean over the
S×4 action entries of the noise MSE (the scaling the paper's λ = 12 assumes). Acting at step t: sample a
sequence for steps t−H+1..t−H+S from the last H observations and execute its entries for steps t..t+A−1
(0-based positions H−1..H+A−2; A = ``action_chunk``, 2), then sample again. DDIM uses "trailing" timestep
spacing, so even a few steps start from t = 999, where the noise the sampler starts from belongs.

Evaluation: ``success``, the fraction of ``eval_rollouts`` episodes (paper: 100) that succeed; the K episodes
of a task are stepped together, one batched policy call for all still-running episodes per chunk; the
episodes (goal variants, reset seeds) and the sampling noise are fixed by ``eval_seed``, so the same
parameters always give the same number. ``denoise_loss``: the noise MSE on held-out expert episodes (drawn
with ``eval_seed``) at fixed timesteps and noise; cheap, so it runs on the dense grid.

Replay (methods `replay`, `trust_region`, `ftml`, `vrmcl`): the frozen teacher policy supplies the action
targets. With ``replay_source: rollouts`` (default, as the paper, which keeps 2,500 rollouts per task and no
expert data of old tasks) the replay buffer holds (observation history, action sequence) pairs the teacher
produced while acting in the old task's environment, one pair per policy call, from fresh episodes; with
``replay_source: demos`` it holds observation histories of the old task's demonstrations, relabelled with the
teacher's sampled actions. The buffer size (the method's ``buffer_per_task``) counts pairs; one 200-step
rollout gives up to 100 of them.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Collection, Iterator

import numpy as np
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from torch import nn

from trainables import ddpm
from trainables import metaworld_tasks as mw
from trainables.batch import Batch
from trainables.benchmarks.base import Benchmark, MetricSpec, Protocol, Task, cache_dir, check_levels
from trainables.benchmarks.continual_world_presets import PRESETS
from trainables.params import knob
from trainables.benchmarks.demo_windows import TaskData, window_index
from trainables.policy_unet import ConditionalUnet1D

__all__ = ["ContinualWorld", "ContinualWorldConfig", "TaskData", "window_index"]


@dataclass(frozen=True)
class ContinualWorldConfig(Protocol):
    steps_per_task: int = knob(2000, "optimizer steps per task (paper: 50,000)", low=1)
    batch_size: int = knob(128, "samples of the current task per batch (paper: 256)", low=1)
    eval_every: int = knob(1000, "evaluate every seen task every this many steps", low=1)
    dense_until: int = knob(64, "also evaluate denoise_loss 1, 2, 4, ... steps into each task up to here", low=0)
    num_tasks: int = knob(10, "learn the first this many tasks of `tasks`", low=1, high=10)
    tasks: list | None = knob(None, "the task stream: distinct CW10 names (e.g. [faucet-close-v3, "
                              "window-close-v3]) in the order they are learned (default: CW10's order)")
    demos_per_task: int = knob(200, "scripted-expert episodes generated per task (paper: 2,500)", low=1)
    successful_demos_only: bool = knob(True, "train only on the expert episodes that succeeded")
    demo_seed: int = knob(0, "seed of the demonstration episodes (goal variants and resets)")
    demo_workers: int = knob(2, "processes that generate demonstrations (1: in this process)", low=1)
    heldout_demos: int = knob(10, "held-out expert episodes per task for denoise_loss (seed eval_seed)", low=1)
    normalize_obs: bool = knob(True, "map positions in the observations by Meta-World's fixed hand workspace "
                               "to [-1, 1] (the same map for every task)")
    obs_horizon: int = knob(6, "H: observations the policy is conditioned on (paper: 6)", low=1)
    action_chunk: int = knob(2, "A: actions executed per policy call (paper: 2)", low=1)
    seq_len: int = knob(8, "S: length of the predicted action sequence (paper: 8); S >= H - 1 + A", low=1)
    channels: list = knob([64, 128, 256], "U-Net widths, one per level (paper: [256, 512, 1024])")
    kernel_size: int = knob(5, "Conv1D kernel size, odd (paper: 5)", low=1)
    norm_groups: int = knob(8, "GroupNorm groups (paper: 8)", low=1)
    time_dim: int = knob(128, "timestep embedding width, even (paper: 512)", low=4)
    attention_levels: list = knob([], "encoder levels (0-based) with self-attention (paper: [1, 2])")
    attention_heads: int = knob(8, "heads of the self-attention blocks (paper: 8)", low=1)
    num_train_timesteps: int = knob(1000, "DDPM timesteps", low=2)
    beta_schedule: str = knob("squaredcos_cap_v2", "DDPM β schedule",
                              choices=("linear", "scaled_linear", "squaredcos_cap_v2"))
    ddim_steps: int = knob(10, "DDIM steps per policy call in evaluation (paper: 50)", low=1)
    replay_ddim_steps: int = knob(10, "DDIM steps per teacher call when making replay data", low=1)
    replay_source: str = knob("rollouts", "where replayed observations come from: the teacher's own rollouts "
                              "in the old task's environment, or the old task's demonstrations",
                              choices=("rollouts", "demos"))
    eval_rollouts: int = knob(20, "K: evaluation episodes per task, stepped together (paper: 100)", low=1)
    eval_seed: int = knob(1234, "seed of the evaluation episodes and sampling noise", low=0)
    max_episode_steps: int = knob(mw.MAX_STEPS, "episode length limit in evaluation and replay rollouts "
                                  "(CW10: 200)", low=1, high=mw.MAX_STEPS)
    env_cache: int = knob(64, "environments kept alive between evaluations, least recently used task out "
                          "(about 26 MB each; a miss costs about 0.1 s per environment)", low=0)


class ContinualWorld(Benchmark):
    name = "continual_world"
    Config = ContinualWorldConfig
    metrics = {"success": MetricSpec(higher_is_better=True),
               "denoise_loss": MetricSpec(higher_is_better=False, cheap=True)}
    capabilities = frozenset({"generative_replay", "distillation", "timesteps"})
    results_note = ("CW10 tasks of Meta-World 3.1.1 -v3; the paper (000) used -v1, so compare success rates "
                    "with runs of this benchmark, not with the paper's numbers.")
    presets = PRESETS

    def __init__(self, config: ContinualWorldConfig, device: torch.device | str = "cpu") -> None:
        super().__init__(config, device)
        self.tasks = [Task(k + 1, name) for k, name in enumerate(mw.task_stream(config.tasks, config.num_tasks))]
        self.scheduler = DDPMScheduler(num_train_timesteps=config.num_train_timesteps,
                                       beta_schedule=config.beta_schedule, clip_sample=True)
        self._alphas = self.scheduler.alphas_cumprod.to(self.device)
        self._train: dict[str, TaskData] = {}
        self._heldout: dict[str, TaskData] = {}
        self._envs: OrderedDict[str, list] = OrderedDict()
        self._samplers: dict[int, DDIMScheduler] = {}

    @classmethod
    def check(cls, config: ContinualWorldConfig) -> None:
        super().check(config)
        mw.task_stream(config.tasks, config.num_tasks)
        ch, levels = config.channels, config.attention_levels
        check_levels(ch, levels)
        if any(c % config.norm_groups for c in ch):
            raise ValueError(f"benchmark.channels: {ch!r} is not allowed; allowed: widths divisible by "
                             f"norm_groups ({config.norm_groups})")
        if config.seq_len % 2 ** (len(ch) - 1):
            raise ValueError(f"benchmark.seq_len: {config.seq_len} is not allowed with {len(ch)} levels; allowed: "
                             f"a multiple of {2 ** (len(ch) - 1)}")
        if config.seq_len < config.obs_horizon - 1 + config.action_chunk:
            raise ValueError(f"benchmark.seq_len: {config.seq_len} is not allowed; allowed: at least obs_horizon "
                             f"- 1 + action_chunk = {config.obs_horizon - 1 + config.action_chunk}")
        if any(ch[i] % config.attention_heads for i in levels):
            raise ValueError(f"benchmark.attention_heads: {config.attention_heads} is not allowed; allowed: a "
                             "divisor of the widths of the attention levels")
        if config.kernel_size % 2 == 0:
            raise ValueError(f"benchmark.kernel_size: {config.kernel_size} is not allowed; allowed: an odd number "
                             "(the sequence length must not change)")
        for name in ("ddim_steps", "replay_ddim_steps"):
            if getattr(config, name) > config.num_train_timesteps:
                raise ValueError(f"benchmark.{name}: {getattr(config, name)} is not allowed; allowed: at most "
                                 f"num_train_timesteps ({config.num_train_timesteps})")
        if config.time_dim % 2:
            raise ValueError(f"benchmark.time_dim: {config.time_dim} is not allowed; allowed: an even number")
        if config.eval_seed == config.demo_seed:
            raise ValueError(f"benchmark.eval_seed: {config.eval_seed} is not allowed; allowed: a seed other than "
                             "demo_seed (evaluation episodes must be held out)")

    @classmethod
    def prepare(cls, config: ContinualWorldConfig) -> None:
        """Generate and cache every task's demonstrations (once, before trials start)."""
        tasks = mw.task_stream(config.tasks, config.num_tasks)
        requests = [(t, config.demos_per_task, config.demo_seed) for t in tasks]
        requests += [(t, config.heldout_demos, config.eval_seed) for t in tasks]
        mw.ensure_demonstrations(requests, cache_dir(config), config.demo_workers)

    # -- data ---------------------------------------------------------------------------------------------------
    def data(self, task: Task, train: bool = True) -> TaskData:
        """The task's training windows (demonstrations) or held-out windows, loaded from the cache."""
        c = self.config
        store = self._train if train else self._heldout
        if task.name not in store:
            n, seed = (c.demos_per_task, c.demo_seed) if train else (c.heldout_demos, c.eval_seed)
            arrays = mw.demonstrations(task.name, n, seed, cache_dir(c), c.demo_workers)
            store[task.name] = TaskData(arrays, c, keep_failed=not (train and c.successful_demos_only))
        return store[task.name]

    def _to_device(self, batch: Batch) -> Batch:
        return {k: v.to(self.device) for k, v in batch.items()}

    def train_batches(self, task: Task, generator) -> Iterator[Batch]:
        data, bs = self.data(task), self.config.batch_size
        while True:
            order = torch.randperm(len(data), generator=generator)
            for start in range(0, max(1, len(order) - bs + 1), bs):
                yield self._to_device(data.windows(order[start:start + bs]))

    def train_sample(self, task: Task, n: int, generator) -> Batch:
        data = self.data(task)
        reps = -(-n // len(data))
        order = torch.cat([torch.randperm(len(data), generator=generator) for _ in range(reps)])[:n]
        return self._to_device(data.windows(order))

    # -- model and losses ---------------------------------------------------------------------------------------
    def make_model(self) -> nn.Module:
        c = self.config
        return ConditionalUnet1D(mw.ACT_DIM, c.obs_horizon * mw.OBS_DIM, list(c.channels), c.kernel_size,
                                 c.norm_groups, c.time_dim, list(c.attention_levels), c.attention_heads
                                 ).to(self.device)

    @staticmethod
    def _predict(model, cond: torch.Tensor) -> ddpm.Predict:
        return lambda x_t, t: model(x_t, t, cond)

    def loss(self, model, batch: Batch, generator, t_range=None) -> torch.Tensor:
        return ddpm.denoising_loss(self._predict(model, batch["obs"].flatten(1)), batch["act"], self._alphas,
                                   t_range or (0, self.config.num_train_timesteps), generator, self.device)

    def distill_loss(self, student, teacher, batch: Batch, generator) -> torch.Tensor:
        cond = batch["obs"].flatten(1)
        return ddpm.distillation_loss(self._predict(student, cond), self._predict(teacher, cond), batch["act"],
                                      self._alphas, (0, self.config.num_train_timesteps), generator, self.device)

    def _ddim(self, steps: int) -> DDIMScheduler:
        """The DDIM sampler of ``steps`` steps, built once (sampling runs once per action chunk)."""
        if steps not in self._samplers:
            self._samplers[steps] = ddpm.ddim_sampler(self.scheduler, steps, timestep_spacing="trailing")
        return self._samplers[steps]

    def sample(self, model: nn.Module, obs: torch.Tensor, steps: int, generator: torch.Generator) -> torch.Tensor:
        """DDIM (η = 0) action sequences (B, S, 4) in [-1, 1] for observation histories (B, H, 39)."""
        return ddpm.ddim_sample(model, self._predict(model, obs.to(self.device).flatten(1)), self._ddim(steps),
                                (len(obs), self.config.seq_len, mw.ACT_DIM), generator, self.device)

    # -- acting -------------------------------------------------------------------------------------------------
    def envs(self, task: Task, n: int) -> list:
        """n environments of the task, kept (least recently used first out) up to ``env_cache`` in all."""
        pool = self._envs.pop(task.name, [])
        if len(pool) < n:
            pool += mw.make_envs(task.name, n - len(pool))
        while self._envs and sum(map(len, self._envs.values())) + len(pool) > self.config.env_cache:
            for env in self._envs.popitem(last=False)[1]:
                env.close()
        if len(pool) <= self.config.env_cache:  # else it is dropped after this use
            self._envs[task.name] = pool
        return pool[:n]

    def rollouts(self, model: nn.Module, task: Task, seed: int, episodes: list[int], steps: int,
                 generator: torch.Generator, pairs: list | None = None) -> np.ndarray:
        """Act with ``model`` in the given episodes of the task, all stepped together (one policy call per
        chunk for the running ones); returns each episode's success. ``pairs`` collects the (observation
        history, sampled action sequence) of every call."""
        c = self.config
        batch = mw.EpisodeBatch(self.envs(task, len(episodes)), task.name, seed, episodes, c.max_episode_steps)
        observe = mw.normalize_observations if c.normalize_obs else (lambda o: o.astype(np.float32))
        history = np.repeat(observe(batch.obs)[:, None], c.obs_horizon, axis=1)
        while batch.active.any():
            running = np.flatnonzero(batch.active)
            obs = torch.from_numpy(history[running])
            actions = self.sample(model, obs, steps, generator)
            if pairs is not None:
                pairs.append((obs, actions.cpu()))
            chunk = np.zeros((len(episodes), c.action_chunk, mw.ACT_DIM), dtype=np.float32)
            chunk[running] = actions[:, c.obs_horizon - 1:c.obs_horizon - 1 + c.action_chunk].cpu().numpy()
            for j in range(c.action_chunk):
                before = batch.active.copy()
                batch.step(chunk[:, j])
                history[before] = np.concatenate([history[before, 1:], observe(batch.obs[before])[:, None]], axis=1)
                if not batch.active.any():
                    break
        return batch.success

    def replay(self, teacher, task: Task, n: int, generator) -> Batch:
        c = self.config
        if c.replay_source == "demos":
            obs = self.train_sample(task, n, generator)["obs"]
            return {"obs": obs, "act": self.sample(teacher, obs, c.replay_ddim_steps, generator)}
        seed = int(torch.randint(2 ** 31 - 1, (1,), generator=generator))  # fresh episodes every refresh
        pairs: list = []
        first = 0
        while sum(len(o) for o, _ in pairs) < n:
            episodes = list(range(first, first + c.eval_rollouts))
            self.rollouts(teacher, task, seed, episodes, c.replay_ddim_steps, generator, pairs)
            first += c.eval_rollouts
        obs, act = torch.cat([o for o, _ in pairs]), torch.cat([a for _, a in pairs])
        keep = torch.randperm(len(obs), generator=generator)[:n]
        return self._to_device({"obs": obs[keep], "act": act[keep]})

    # -- evaluation ---------------------------------------------------------------------------------------------
    @torch.no_grad()
    def evaluate(self, model, task: Task, metrics: Collection[str]) -> dict[str, float]:
        c = self.config
        out: dict[str, float] = {}
        if "denoise_loss" in metrics:  # each metric its own noise: a value never depends on what else is asked
            generator = torch.Generator().manual_seed(c.eval_seed * 1000 + task.index)
            held = self.data(task, train=False)
            was_training = model.training
            model.eval()
            out["denoise_loss"] = float(self.loss(model, self._to_device(held.windows(torch.arange(len(held)))),
                                                  generator).mean())
            model.train(was_training)
        if "success" in metrics:
            generator = torch.Generator().manual_seed(c.eval_seed * 1000 + 500 + task.index)
            success = self.rollouts(model, task, c.eval_seed, list(range(c.eval_rollouts)), c.ddim_steps, generator)
            out["success"] = float(success.mean())
        return out
