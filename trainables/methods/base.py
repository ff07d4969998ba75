"""What every continual-learning method implements: a few hooks the loop calls.

The loop owns task order, step counting, evaluation and records; a method owns only its update rule:
its forward, backward and optimizer steps (so bilevel, proximal and merging updates fit), what it keeps
between tasks, and which model answers for a task at evaluation time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
from torch import nn

from trainables.batch import Batch
from trainables.benchmarks.base import Benchmark, Task, check_capabilities
from trainables.params import knob


def with_params(model: nn.Module, params: dict[str, torch.Tensor]):
    """``model`` answering with ``params`` (name -> tensor) in place of its own parameters (buffers
    unchanged): a callable with the module's signature, so a benchmark's loss accepts it (inner loops)."""
    return lambda *args, **kwargs: torch.func.functional_call(model, params, args, kwargs)


RESET_HELP = ("a fresh optimizer (same parameters, same lr; Adam's moments and step count gone) at the start of "
              "every task after the first")


@dataclass(frozen=True)
class TrainParams:
    """Optimizer settings every method has. ``reset_optimizer`` defaults to False (one optimizer for the
    whole stream); a method's docstring says why its default is what it is."""

    lr: float = knob(2e-4, "learning rate (000 Table 3: Adam 2e-4)", low=0, low_open=True, smoke=1e-3)
    optimizer: str = knob("adam", "optimizer of the model's parameters", choices=("adam", "sgd"))
    reset_optimizer: bool = knob(False, RESET_HELP + " (false: one optimizer for the whole stream)")


@dataclass(frozen=True)
class PerTaskOptimizerParams(TrainParams):
    """TrainParams of the trust-region family (000): a fresh Adam for every task, as the authors' public
    code builds one per task (000 itself is silent)."""

    reset_optimizer: bool = knob(True, RESET_HELP + " (000's authors' code: true)")


@dataclass(frozen=True)
class OnlineParams(TrainParams):
    """Optimizer settings of 002's online protocol: plain SGD."""

    lr: float = knob(0.03, "learning rate (002's online protocol: SGD)", low=0, low_open=True, smoke=1e-3)
    optimizer: str = knob("sgd", "optimizer of the model's parameters", choices=("adam", "sgd"))


class Method:
    """Base class; subclasses set ``name``, ``Params`` and ``requires`` and implement ``update``."""

    name: ClassVar[str]
    Params: ClassVar[type] = TrainParams
    requires: ClassVar[frozenset[str]] = frozenset()  # benchmark capabilities the method needs

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        check_capabilities(f"method {cls.__name__}", cls.requires)

    @classmethod
    def check(cls, params: Any, bench_config: Any) -> None:
        """Raise ValueError naming the parameter if ``params`` cannot work with the benchmark's settings."""

    def __init__(self, params: Any, model: nn.Module, bench: Benchmark, generator: torch.Generator) -> None:
        missing = self.requires - bench.capabilities
        if missing:
            raise ValueError(f"method {self.name} needs {', '.join(sorted(missing))}, which benchmark "
                             f"{bench.name} does not offer")
        self.params = params
        self.model = model
        self.bench = bench
        self.generator = generator
        self.seen: list[Task] = []
        self.optimizer = self.make_optimizer(model.parameters(), params.lr)

    def make_optimizer(self, parameters, lr: float) -> torch.optim.Optimizer:
        if self.params.optimizer == "sgd":
            return torch.optim.SGD(parameters, lr=lr)
        return torch.optim.Adam(parameters, lr=lr)

    def begin_task(self, task: Task) -> None:
        """Called before the first update on ``task``; with ``reset_optimizer``, every task after the first
        starts with a fresh optimizer over the same parameters and lr (no moments, no step count)."""
        if self.params.reset_optimizer and self.seen:
            self.optimizer = self.make_optimizer(self.model.parameters(), self.params.lr)
        self.seen.append(task)

    def update(self, batch: Batch) -> dict[str, float]:
        """One optimizer step (one meta-update for bilevel methods) on a batch of the current task;
        returns named scalars (at least ``loss``) the loop checks for divergence and records."""
        raise NotImplementedError

    def meta_update(self, episode: list) -> dict[str, float]:
        """One outer step of episodic meta-training (003's protocol, ``trainables.step_grid``): ``episode`` is
        the benchmark's ``meta_episode`` (per region, a (context, query) batch of several meta-training
        signals). A method that meta-learns its initialisation overrides it; the protocol then calls it
        ``meta_steps`` times before the stream, on the model the stream starts from. Returns named scalars
        (at least ``loss``). Methods that do not override it start from the benchmark's initialisation."""
        raise NotImplementedError

    def end_task(self, task: Task) -> dict[str, float]:
        """Called after the last update on ``task``, before its end-of-task evaluation; returns
        diagnostics the loop records."""
        return {}

    def eval_model(self, task: Task) -> nn.Module:
        """The model that answers for ``task`` at evaluation time (a merged model, a task module, ...)."""
        return self.model

    def state(self) -> dict[str, Any]:
        """What the method keeps between tasks, for a checkpoint at a task boundary: by default every
        attribute (model, optimizer, teacher, anchors, memories, ...). The benchmark, its tasks and the
        run's generator inside it are saved as references and come back as the live ones. A method holding
        something that cannot be pickled (a lambda, an open file) overrides this and ``load_state``."""
        return dict(vars(self))

    def load_state(self, state: dict[str, Any]) -> None:
        """Become the method ``state`` describes (the inverse of ``state``)."""
        vars(self).update(state)

    def step(self, loss: torch.Tensor) -> None:
        """zero_grad, backward, optimizer step."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
