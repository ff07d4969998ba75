"""The `continual_world` benchmark: windows, the diffusion policy, batched rollouts, replay and evaluation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.errors import InputError
from trainables import metaworld_tasks as mw
from trainables.benchmarks.continual_world import ContinualWorld, window_index
from trainables.policy_unet import ConditionalUnet1D
from trainables.build import benchmark_config, make_benchmark


def tiny(**over) -> ContinualWorld:
    return make_benchmark("continual_world", {"preset": "tiny", **over})


def test_windows_repeat_the_episode_ends():
    # two episodes: rows 0-2 and 3-4; H = 2 observations, S = 3 actions (t-1, t, t+1)
    obs, act = window_index(np.array([0, 3, 5]), horizon=2, seq_len=3)
    assert obs.tolist() == [[0, 0], [0, 1], [1, 2], [3, 3], [3, 4]]
    assert act.tolist() == [[0, 0, 1], [0, 1, 2], [1, 2, 2], [3, 3, 4], [3, 4, 4]]


def test_positions_are_mapped_by_the_hand_workspace():
    obs = np.zeros((2, 39))
    obs[0, 0:3], obs[1, 0:3] = mw.HAND_LOW, mw.HAND_HIGH
    obs[:, 3] = 0.7  # the gripper opening is left alone
    obs[0, 36:39] = (mw.HAND_LOW + mw.HAND_HIGH) / 2
    out = mw.normalize_observations(obs)
    assert np.allclose(out[0, 0:3], -1) and np.allclose(out[1, 0:3], 1)
    assert np.allclose(out[:, 3], 0.7) and np.allclose(out[0, 36:39], 0, atol=1e-6)


def test_the_paper_network_has_the_papers_parameter_count():
    net = ConditionalUnet1D(4, 6 * 39, [256, 512, 1024], 5, 8, 512, [1, 2], 8)
    assert round(sum(p.numel() for p in net.parameters()) / 1e6, 2) == 83.26  # 000 Table 6: 83.27M
    config = benchmark_config("continual_world", {"preset": "cw10_paper"})
    assert (config.channels, config.attention_levels, config.time_dim) == ([256, 512, 1024], [1, 2], 512)
    assert (config.batch_size, config.steps_per_task, config.demos_per_task, config.eval_rollouts) == (
        256, 50_000, 2500, 100)


def test_the_policy_predicts_one_noise_per_action_and_attention_supports_double_backward():
    net = ConditionalUnet1D(4, 12, [8, 16], 3, 4, 8, [0, 1], 2)
    x, cond = torch.randn(3, 8, 4, requires_grad=True), torch.randn(3, 12)
    out = net(x, torch.tensor([1, 50, 999]), cond)
    assert out.shape == (3, 8, 4)
    (grad,) = torch.autograd.grad(out.square().sum(), x, create_graph=True)
    grad.sum().backward()  # second order through attention and GroupNorm (rank-1 Fisher projection, MAML)
    assert all(p.grad is not None for p in net.parameters())


@pytest.mark.parametrize("values, field", [
    ({"seq_len": 6}, "benchmark.seq_len"),  # 6 < H - 1 + A = 7
    ({"seq_len": 9}, "benchmark.seq_len"),  # two levels need a multiple of 2
    ({"eval_seed": 0}, "benchmark.eval_seed"),  # evaluation episodes would be training episodes
    ({"channels": [16, 30]}, "benchmark.channels"),
    ({"attention_levels": [2]}, "benchmark.attention_levels"),
    ({"num_tasks": 11}, "benchmark.num_tasks"),
    ({"replay_source": "expert"}, "benchmark.replay_source"),
    ({"kernel_size": 4}, "benchmark.kernel_size"),
    ({"ddim_steps": 2000}, "benchmark.ddim_steps"),
])
def test_bad_settings_name_the_field(values, field):
    with pytest.raises(ValueError, match=field):
        benchmark_config("continual_world", {"preset": "tiny", **values})


def test_batched_rollouts_step_every_episode_until_it_ends():
    envs = mw.make_envs("push-wall-v3", 3)
    batch = mw.EpisodeBatch(envs, "push-wall-v3", 5, [0, 1, 2], max_steps=7)
    first = batch.obs.copy()
    steps = 0
    while batch.active.any():
        batch.step(np.zeros((3, 4)))
        steps += 1
    assert steps == 7 and not batch.success.any() and batch.obs.dtype == np.float32
    again = mw.EpisodeBatch(envs, "push-wall-v3", 5, [0, 1, 2])
    assert np.array_equal(again.obs, first)  # the same episodes after reuse of the environments
    assert not np.array_equal(first[0], first[1])
    # Meta-World's reset ignores its seed: episode 50 must come from a new draw of goal variants
    beyond = mw.EpisodeBatch(envs, "push-wall-v3", 5, [50, 100])
    assert not np.array_equal(beyond.obs[0], first[0]) and not np.array_equal(beyond.obs[1], beyond.obs[0])


def test_the_policy_sees_the_last_h_observations_and_executes_the_chunk_at_step_t(monkeypatch):
    """H = 3, A = 2, S = 8: at step t the history is t-2..t and the entries at positions 2, 3 are executed."""
    bench = tiny(normalize_obs=False, obs_horizon=3, action_chunk=2, seq_len=8, max_episode_steps=6)
    made, seen = [], []

    class Counting:  # an environment whose observation is the step count, recording the actions it takes
        def __init__(self, envs, task, seed, episodes, max_steps):
            self.obs = np.zeros((len(episodes), 39), np.float32)
            self.active, self.success = np.ones(len(episodes), bool), np.zeros(len(episodes), bool)
            self.steps, self.max_steps, self.taken = 0, max_steps, []
            made.append(self)

        def step(self, actions):
            self.taken.append(float(actions[0, 0]))
            self.steps += 1
            self.obs[:] = self.steps
            self.active[:] = self.steps < self.max_steps

    def positions(model, obs, steps, generator):  # entry s of every sampled sequence is s / 10
        seen.append(obs[0, :, 0].tolist())
        return (torch.arange(8.0) / 10).view(1, 8, 1).expand(len(obs), 8, 4)

    monkeypatch.setattr(mw, "EpisodeBatch", Counting)
    monkeypatch.setattr(bench, "sample", positions)
    monkeypatch.setattr(bench, "envs", lambda task, n: [None] * n)
    bench.rollouts(None, bench.tasks[0], 0, [0, 1], 2, torch.Generator())
    assert seen == [[0, 0, 0], [0, 1, 2], [2, 3, 4]]
    assert made[0].taken == pytest.approx([0.2, 0.3] * 3)


def test_evaluation_is_deterministic_for_fixed_parameters():
    bench = tiny()
    torch.manual_seed(0)
    model = bench.make_model()
    task = bench.tasks[0]
    first = bench.evaluate(model, task, ["success", "denoise_loss"])
    second = bench.evaluate(model, task, ["success", "denoise_loss"])
    other = tiny().evaluate(model, task, ["success", "denoise_loss"])  # a fresh benchmark, new environments
    assert first == second == other and set(first) == {"success", "denoise_loss"}
    assert bench.evaluate(model, task, ["denoise_loss"]) == {"denoise_loss": first["denoise_loss"]}
    assert bench.evaluate(bench.make_model(), task, ["denoise_loss"]) != {"denoise_loss": first["denoise_loss"]}
    # the untrained policy never succeeds in 20 steps, so compare what it did: every call's input and output
    runs = []
    for bench_ in (bench, tiny()):
        pairs = []
        bench_.rollouts(model, task, 1234, [0, 1], 2, torch.Generator().manual_seed(5), pairs)
        runs.append(pairs)
    assert len(runs[0]) == 10 and all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
                                      for a, b in zip(*runs))


@pytest.mark.parametrize("source", ["rollouts", "demos"])
def test_the_teacher_supplies_replay_pairs(source):
    bench = tiny(replay_source=source, obs_horizon=3, seq_len=4, action_chunk=2)
    teacher = bench.make_model().eval()
    g = torch.Generator().manual_seed(0)
    batch = bench.replay(teacher, bench.tasks[0], 25, g)
    assert batch["obs"].shape == (25, 3, 39) and batch["act"].shape == (25, 4, 4)
    assert batch["act"].abs().max() <= 1 and torch.isfinite(batch["obs"]).all()
    # the pairs are the teacher's: its loss on them is a denoising loss like any other
    assert torch.isfinite(bench.loss(teacher, batch, g)).all()
    assert torch.isfinite(bench.distill_loss(bench.make_model(), teacher, batch, g)).all()


def test_a_briefly_trained_policy_beats_a_random_one():
    """faucet-close, the easiest of the first three tasks: ~300 Adam steps on 20 expert episodes."""
    bench = make_benchmark("continual_world", {"preset": "cw_mini", "num_tasks": 3, "demos_per_task": 20,
                                               "eval_rollouts": 10, "max_episode_steps": 150})
    task = bench.tasks[2]
    assert task.name == "faucet-close-v3"
    rng = np.random.default_rng(0)
    randomly = mw.EpisodeBatch(bench.envs(task, 10), task.name, bench.config.eval_seed, list(range(10)), 150)
    while randomly.active.any():
        randomly.step(rng.uniform(-1, 1, (10, 4)))
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = bench.make_model()
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    batches = bench.train_batches(task, g)
    for _ in range(300):
        loss = bench.loss(model, next(batches), g).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    trained = bench.evaluate(model, task, ["success"])["success"]
    assert trained >= randomly.success.mean() + 0.3, (trained, randomly.success.mean())


LAPTOP_TASKS = ["window-close-v3", "faucet-close-v3", "handle-press-side-v3"]


def test_cw_laptop_streams_its_three_tasks_and_cw_mini_keeps_the_first_three_of_cw10():
    laptop = make_benchmark("continual_world", {"preset": "cw_laptop"})
    assert [t.name for t in laptop.tasks] == LAPTOP_TASKS
    assert [t.index for t in laptop.tasks] == [1, 2, 3]
    mini = make_benchmark("continual_world", {"preset": "cw_mini"})
    assert [t.name for t in mini.tasks] == ["hammer-v3", "push-wall-v3", "faucet-close-v3"]
    # num_tasks takes the first tasks of the stream, whichever stream it is
    first = make_benchmark("continual_world", {"preset": "cw_laptop", "num_tasks": 1})
    assert [t.name for t in first.tasks] == LAPTOP_TASKS[:1]
    reordered = make_benchmark("continual_world", {"tasks": ["peg-unplug-side-v3", "hammer-v3"], "num_tasks": 2})
    assert [t.name for t in reordered.tasks] == ["peg-unplug-side-v3", "hammer-v3"]


@pytest.mark.parametrize("values, message", [
    ({"tasks": ["faucet-close"]}, "benchmark.tasks: 'faucet-close' is not allowed; allowed: a list of distinct "
                                  "CW10 tasks (hammer-v3, push-wall-v3, faucet-close-v3, push-back-v3, stick-pull-v3, "
                                  "handle-press-side-v3, push-v3, shelf-place-v3, window-close-v3, peg-unplug-side-v3)"),
    ({"tasks": ["hammer-v3", "hammer-v3"], "num_tasks": 2}, "benchmark.tasks: 'hammer-v3' appears twice"),
    ({"tasks": ["hammer-v3", "push-v3"], "num_tasks": 3}, "benchmark.num_tasks: 3 is not allowed; allowed: at most "
                                                          "the 2 tasks of benchmark.tasks"),
])
def test_an_unknown_or_repeated_task_is_bad_input_naming_the_allowed_values(values, message):
    with pytest.raises(InputError) as info:
        benchmark_config("continual_world", {"preset": "cw_mini", **values})
    assert str(info.value).startswith(message)
