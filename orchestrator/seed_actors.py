"""Seeds as parallel Ray actors: each seed's run lives in its own actor with its own resources, inside the
trial's placement group (requested together, so a trial never holds half its seeds). The trial keeps
"tasks outside, seeds inside": every task is trained on all seeds at once, then reported."""

from __future__ import annotations

from dataclasses import replace

from trainables.trainable import Trial, seed_task


class SeedRunner:
    """The actor's body: one seed's run of a configuration (built in the actor's process)."""

    def __init__(self, config, seed: int) -> None:
        from trainables.build import make_runs

        (self.run,) = make_runs(replace(config, seeds=(seed,)))

    def run_task(self, k: int):
        return self.run.run_task(k)

    def state(self) -> bytes:
        return self.run.state()

    def load_state(self, data: bytes) -> None:
        self.run.load_state(data)


class RemoteRun:
    """The trial's stand-in for a seed's run in an actor: ``seed``, ``state`` and ``load_state``."""

    def __init__(self, seed: int, actor) -> None:
        self.seed, self.actor = seed, actor

    def state(self) -> bytes:
        import ray

        return ray.get(self.actor.state.remote())

    def load_state(self, data: bytes) -> None:
        import ray

        ray.get(self.actor.load_state.remote(data))


def start_seed_actors(config, cpus: float, gpus: float) -> list[RemoteRun]:
    """One actor per seed of ``config``, each asking for ``cpus`` and ``gpus`` (a bundle of the trial's
    placement group; Tune places the trial's child actors in it)."""
    import ray

    actor = ray.remote(SeedRunner).options(num_cpus=cpus, num_gpus=gpus)
    return [RemoteRun(seed, actor.remote(config, seed)) for seed in config.seeds]


def seed_bundles(seeds: int, cpus: float, gpus: float) -> list[dict[str, float]]:
    """The trial's placement group: an empty bundle for the trial itself (it only waits on its seeds), then
    one bundle per seed; the trial needs exactly seeds × (cpus, gpus)."""
    return [{}] + [{"CPU": cpus, **({"GPU": gpus} if gpus else {})} for _ in range(seeds)]


class ParallelTrial(Trial):
    """A Trial whose ``run_task`` trains task k on every seed's actor at once."""

    def run_task(self, k: int):
        import ray

        refs = [run.actor.run_task.remote(k) for run in self.runs]
        return [seed_task(run.seed, k, ray.get, ref) for run, ref in zip(self.runs, refs)]

    def close(self) -> None:
        """Stop the seeds' actors (their resources go back to the trial's placement group)."""
        import ray

        for run in self.runs:
            ray.kill(run.actor)
