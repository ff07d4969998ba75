"""Build once: a configuration is validated into typed settings, then turned into objects exactly once.

``configure`` checks a raw configuration (method name, parameter dict, benchmark name, settings dict,
seeds) and returns a :class:`Configuration` holding the method's Params and the benchmark's Config;
``make_runs`` builds the benchmark and, per seed, the seeded model, method instance and
:class:`~trainables.loop.ContinualRun`. The loop receives the method instance, never its name. Callers that
validated elsewhere (a search space) construct a Configuration directly and skip ``configure``.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import torch

from core.errors import InputError
from trainables.benchmarks import Benchmark, get_benchmark
from trainables.acceleration import prepare_model
from trainables.loop import ContinualRun, derived_seed, seed_everything

SEED_MAX = 2**32 - 1  # numpy's seeds are 32-bit (np.random.seed)
from trainables.methods import get_method
from trainables.params import build


def benchmark_config(name: str, values: dict[str, Any]):
    """The benchmark's Config: defaults, then the named preset, then ``values``; checked."""
    cls = get_benchmark(name)
    values = dict(values)
    preset = values.pop("preset", None)
    if preset is not None:
        if not isinstance(preset, str) or preset not in cls.presets:
            raise InputError(f"benchmark.preset: unknown preset '{preset}' of {name}; allowed: "
                             f"{', '.join(sorted(cls.presets)) or 'none'}")
        values = {**cls.presets[preset], **values}
    config = build(cls.Config, values, "benchmark")
    _checked(cls.check, config)
    return config


def _checked(check, *args) -> None:
    """Run a ``check`` hook, whose contract is to raise ValueError naming the setting: that is bad input."""
    try:
        check(*args)
    except InputError:
        raise
    except ValueError as e:
        raise InputError(str(e)) from None


def method_params(name: str, values: dict[str, Any], bench_config=None):
    """The method's Params from ``values``, checked (against the benchmark's settings when given)."""
    cls = get_method(name)
    params = build(cls.Params, values, f"methods.{name}")
    if bench_config is not None:
        _checked(cls.check, params, bench_config)
    return params


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def make_benchmark(name: str, values: dict[str, Any], device: str = "auto") -> Benchmark:
    """A benchmark from its name and raw settings (validated), for scripts and tests."""
    return get_benchmark(name)(benchmark_config(name, values), resolve_device(device))


@dataclass(frozen=True)
class Configuration:
    """One validated configuration: typed settings only, nothing built yet."""

    method: str
    params: Any  # the method's Params instance
    benchmark: str
    bench_config: Any  # the benchmark's Config instance
    seeds: tuple[int, ...] = (0,)
    objective_metric: str = ""  # "" is the benchmark's first metric
    objective_reduce: str = "mean"  # over the seen tasks at each task's end: mean | worst | last
    device: str = "auto"

    @property
    def metric(self) -> str:
        return self.objective_metric or next(iter(get_benchmark(self.benchmark).metrics))

    @property
    def higher_is_better(self) -> bool:
        return get_benchmark(self.benchmark).metrics[self.metric].higher_is_better


def configure(method: str, params: dict[str, Any], benchmark: str, benchmark_params: dict[str, Any],
              seeds: tuple[int, ...] = (0,), objective_metric: str = "", objective_reduce: str = "mean",
              device: str = "auto") -> Configuration:
    """Validate a raw configuration once; errors (InputError) name the field and what is allowed."""
    from core.stats import REDUCTIONS

    if (not seeds or len(set(seeds)) != len(seeds)
            or not all(type(s) is int and 0 <= s <= SEED_MAX for s in seeds)):
        raise InputError(f"seeds: {list(seeds)} is not allowed; allowed: a non-empty list of distinct integers "
                         f"in [0, {SEED_MAX}] (numpy's 32-bit seeds)")
    bench_config = benchmark_config(benchmark, benchmark_params)
    typed = method_params(method, params, bench_config)
    metrics = get_benchmark(benchmark).metrics
    if objective_metric and objective_metric not in metrics:
        raise InputError(f"objective.metric: '{objective_metric}' is not a metric of {benchmark}; allowed: "
                         f"{', '.join(metrics)}")
    if objective_reduce not in REDUCTIONS:
        raise InputError(f"objective.reduce: '{objective_reduce}' is not allowed; allowed: {', '.join(REDUCTIONS)}")
    return Configuration(method, typed, benchmark, bench_config, tuple(seeds), objective_metric,
                         objective_reduce, device)


def make_run(bench: Benchmark, method: str, params: Any, seed: int):
    """One seed's run: the seed's task stream, its RNGs seeded, then its model and method instance."""
    bench = bench.for_seed(seed)
    seed_everything(derived_seed(seed, 0))
    generator = torch.Generator().manual_seed(derived_seed(seed, 1))
    cls = get_method(method)
    if bench.protocol == "step_grid":  # 003: (meta-)initialise once, then the stream for every S
        from trainables.step_grid import StepGridRun

        return StepGridRun(bench, lambda model, gen: cls(params, model, bench, gen), seed, generator)
    instance = cls(params, prepare_model(bench.make_model(), bench.config), bench, generator)
    return ContinualRun(bench, instance, seed, generator)


def make_runs(config: Configuration) -> list[ContinualRun]:
    """The benchmark built once, and one run per seed."""
    bench = get_benchmark(config.benchmark)(config.bench_config, resolve_device(config.device))
    return [make_run(bench, config.method, config.params, seed) for seed in config.seeds]



def seed_manifest(bench: Benchmark, seed: int) -> dict[str, Any]:
    """What a seed's run draws from its seed, as plain data (for a sweep's manifest and ``rerun``).

    ``derived_seeds``: the ``derived_seed`` values ``make_run`` and the loop seed with (``build``: the
    global RNGs before the model is built; ``generator``: the run's data/noise generator; ``task<k>``: the
    global RNGs before task k; a ``step_grid`` benchmark adds ``meta_init`` and ``grid<S>``, as in
    ``trainables.step_grid``). ``tasks``: the seed's stream (index, name, classes: the class order).
    ``permutations``: the per-task input permutations where the benchmark draws them (permuted_digits).
    ``config_seeds``: every ``*_seed`` setting of the benchmark (demo_seed, eval_seed, permutation_seed, ...).
    """
    stream = bench.for_seed(seed)
    derived = {"build": derived_seed(seed, 0), "generator": derived_seed(seed, 1),
               **{f"task{t.index}": derived_seed(seed, 2, t.index) for t in stream.tasks}}
    if stream.protocol == "step_grid":
        from trainables.step_grid import step_grid

        derived["meta_init"] = derived_seed(seed, 4)
        derived.update({f"grid{s}": derived_seed(seed, 5, s) for s in step_grid(stream.config.steps_per_task)})
    out: dict[str, Any] = {"derived_seeds": derived,
                           "tasks": [{"index": t.index, "name": t.name, "classes": list(t.classes)}
                                     for t in stream.tasks]}
    permutations = getattr(stream, "permutations", None)
    if permutations is not None:
        out["permutations"] = [[int(i) for i in p] for p in permutations]
    out["config_seeds"] = {f.name: getattr(stream.config, f.name) for f in fields(stream.config)
                           if f.name.endswith("_seed")}
    return out


def seeds_manifest(benchmark: str, bench_config, seeds) -> dict[str, dict[str, Any]]:
    """``seed_manifest`` of every seed (keys: the seeds as text), the benchmark built once on the CPU."""
    bench = get_benchmark(benchmark)(bench_config, torch.device("cpu"))
    return {str(seed): seed_manifest(bench, seed) for seed in seeds}
