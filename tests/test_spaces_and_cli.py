"""Search-space validation and the command line: bad input stops before any work with one line naming
the field and the allowed values, exit code 2, and nothing written."""

from __future__ import annotations

import optuna
import pytest
import yaml
from click.testing import CliRunner

from orchestrator.cli import main
from orchestrator.search import DefineByRun, decode, start_points
from orchestrator.spaces import SpaceError, builtin_spaces, load, validate
from test_benchmarks import write_imagenet32
from trainables.benchmarks import BENCHMARKS
from trainables.methods import METHODS

GOOD = {
    "name": "t",
    "benchmark": {"name": "split_digits_diffusion", "preset": "tiny"},
    "seeds": [0, 1],
    "objective": {"metric": "fd"},
    "budget": {"num_samples": 2, "max_concurrent": 1},
    "methods": {"ewc": {"lam": {"loguniform": [1, 100]}, "fisher": {"choice": ["diag", "rank1"]}},
                "finetune": {"lr": 1e-3}},
}


@pytest.mark.parametrize("name", sorted(builtin_spaces()))
def test_every_builtin_space_validates(name, tmp_path):
    overrides = []
    if name == "imagenet32_paper":  # the user brings the data
        write_imagenet32(tmp_path, "npz")
        overrides = [f"benchmark.data_dir={tmp_path}"]
    space = load(name, overrides)
    assert space.name == name and space.methods and len(space.seeds) >= 2
    assert load(name, overrides) == space  # loading is pure
    reloaded = validate(yaml.safe_load(space.to_yaml()))
    assert reloaded.methods == space.methods and reloaded.budget == space.budget


def test_quickstart_covers_the_four_methods():
    space = load("quickstart")
    assert set(space.methods) == {"finetune", "ewc", "replay", "trust_region"}
    assert space.budget.num_samples >= 4 and space.budget.start_with_defaults


def with_change(path: str, value):
    doc = yaml.safe_load(yaml.safe_dump(GOOD))
    node = doc
    keys = path.split(".")
    for k in keys[:-1]:
        node = node[k]
    if value is DELETE:
        del node[keys[-1]]
    else:
        node[keys[-1]] = value
    return doc


DELETE = object()
BAD = [
    ("methods.nope", {}, f"methods.nope: unknown method; allowed: {', '.join(sorted(METHODS))}"),
    ("benchmark.name", "mnist", f"benchmark.name: unknown benchmark 'mnist'; allowed: {', '.join(sorted(BENCHMARKS))}"),
    ("methods.ewc.gamma", 1.0, "methods.ewc.gamma: unknown parameter 'gamma'; allowed: fisher, fisher_batch"),
    ("methods.finetune.lr", -0.1, "methods.finetune.lr: -0.1 is not allowed; allowed: a finite number > 0"),
    ("methods.ewc.fisher", "full", "methods.ewc.fisher: 'full' is not allowed; allowed: one of diag, rank1"),
    ("methods.ewc.lam", {"loguniform": [-1, 10]}, "methods.ewc.lam.loguniform: bounds must be > 0"),
    ("methods.ewc.lam", {"uniform": [10, 1]}, "methods.ewc.lam.uniform: low 10 is above high 1"),
    ("methods.ewc.lam", {"normal": [0, 1]}, "methods.ewc.lam: a distribution is one of"),
    ("methods.ewc.fisher_samples", {"uniform": [1, 10]}, "methods.ewc.fisher_samples: an integer parameter"),
    ("benchmark.held_out_fraction", 1.5, "benchmark.held_out_fraction: 1.5 is not allowed; allowed: a finite number >= 0.05 and <= 0.9"),
    ("benchmark.preset", "huge", "benchmark.preset: unknown preset 'huge' of split_digits_diffusion; allowed: laptop, tiny"),
    ("benchmark.steps", 3, "benchmark.steps: unknown parameter 'steps'; allowed:"),
    ("seeds", [0, 0], "seeds: [0, 0] is not allowed; allowed: a non-empty list of distinct integers"),
    ("objective.metric", "fid", "objective.metric: 'fid' is not a metric of split_digits_diffusion; allowed: fd, gen_acc, denoise_loss"),
    ("objective.mode", "up", "objective.mode: 'up' is not allowed for fd; allowed: min (or leave it out)"),
    ("objective.mode", "max", "objective.mode: 'max' is not allowed for fd; allowed: min (or leave it out)"),
    ("methods.ewc.lam", float("inf"), "methods.ewc.lam: inf is not allowed; allowed: a finite number >= 0"),
    ("methods.ewc.fisher_samples", float("nan"), "methods.ewc.fisher_samples: nan is not allowed; allowed: an integer >= 1"),
    ("methods.ewc.fisher_t_max", 5000, "methods.ewc.fisher_t_max: 5000 is not allowed; allowed: an integer <= 1000"),
    ("methods.ewc.fisher_t_min", {"int": [0, 2000]}, "methods.ewc.fisher_t_min: 2000 is not allowed; allowed: an integer < fisher_t_max (1000)"),
    ("benchmark.num_tasks", 6, "benchmark.num_tasks: 6 tasks of 2 classes is not allowed; allowed: classes_per_task * num_tasks <= 10"),
    ("benchmark.channels", [16, 34], "benchmark.channels: [16, 34] is not allowed; allowed: widths divisible by 4"),
    ("benchmark.channels", [16, 32, 64, 64, 64], "benchmark.channels: 5 levels is not allowed for 8x8 images"),
    ("benchmark.attention_levels", [2], "benchmark.attention_levels: [2] is not allowed; allowed: levels 0 to 1"),
    ("budget.scheduler", "hyperband", "budget.scheduler: 'hyperband' is not allowed; allowed: none, asha"),
    ("budget.num_samples", 0, "budget.num_samples: 0 is not allowed; allowed: an integer >= 1"),
    ("extra", 1, "extra: unknown key; allowed: name, description, benchmark, seeds, objective, budget, methods"),
    ("name", DELETE, "name: required"),
]


@pytest.mark.parametrize("path,value,message", BAD, ids=[b[0] for b in BAD])
def test_validation_errors_name_the_field_and_allowed_values(path, value, message):
    with pytest.raises(SpaceError) as err:
        validate(with_change(path, value))
    assert str(err.value).startswith(message)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("path,value,message", BAD[:6] + BAD[12:14], ids=[b[0] for b in BAD[:6] + BAD[12:14]])
def test_cli_rejects_bad_spaces_with_exit_2_and_writes_nothing(tmp_path, path, value, message):
    space_file = tmp_path / "space.yaml"
    space_file.write_text(yaml.safe_dump(with_change(path, value)))
    runs = tmp_path / "runs"
    result = CliRunner().invoke(main, ["sweep", "--space", str(space_file), "--runs-dir", str(runs)])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"error: {result.output.strip()[7:]}"]
    assert message in result.output and "Traceback" not in result.output
    assert not runs.exists()


def test_cli_rejects_malformed_yaml_and_unknown_names(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nmethods: [unclosed\n")
    runner = CliRunner()
    out = runner.invoke(main, ["sweep", "--space", str(bad), "--runs-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and "malformed YAML at line" in out.output and len(out.output.splitlines()) == 1
    out = runner.invoke(main, ["sweep", "--space", "no_such_space", "--runs-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and f"built-ins: {', '.join(sorted(builtin_spaces()))}" in out.output
    out = runner.invoke(main, ["sweep", "--space", "quickstart", "--set", "methods.ewc.lam=-5",
                               "--runs-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and "methods.ewc.lam: -5 is not allowed; allowed: a finite number >= 0" in out.output
    out = runner.invoke(main, ["run", "--method", "ewc", "--benchmark", "split_digits_diffusion",
                               "--set", "rho_estimator=exact"])
    assert out.exit_code == 2
    assert out.output.strip() == ("error: methods.ewc.rho_estimator: 'exact' is not allowed; allowed: one of "
                                  "projection, mean_outer")
    for flags, message in ((["--device", "foo"], "--device: 'foo' is not allowed; allowed: auto, cpu, cuda, cuda:N"),
                           (["--device", "cuda"], "--device cuda needs --gpus-per-trial > 0"),
                           (["--gpus-per-trial", "1"], "--gpus-per-trial: this machine has no GPU")):
        if "no GPU" in message and __import__("torch").cuda.is_available():
            continue
        out = runner.invoke(main, ["sweep", "--space", "quickstart", "--runs-dir", str(tmp_path / "r"), *flags])
        assert out.exit_code == 2 and out.output.strip().startswith(f"error: {message}"), out.output
    out = runner.invoke(main, ["run", "--method", "finetune", "--benchmark", "split_digits_diffusion",
                               "--seed", "0", "--seed", "0"])
    assert out.exit_code == 2 and "seeds: [0, 0] is not allowed" in out.output
    out = runner.invoke(main, ["sweep", "--resume", "nothing", "--runs-dir", str(tmp_path / "r")])
    assert out.exit_code == 2 and "--resume: no sweep named nothing" in out.output
    assert not (tmp_path / "r").exists()


def test_define_by_run_suggests_only_the_chosen_methods_parameters():
    space = validate(GOOD)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for point in start_points(space):
        study.enqueue_trial(point)
    define = DefineByRun(space.methods)
    seen = []
    for _ in range(6):
        trial = study.ask()
        constants = define(trial) or {}
        seen.append((dict(trial.params), constants))
        study.tell(trial, 1.0)
    # the first two trials are the enqueued starting points, one per method, defaults inside the ranges
    assert seen[0] == ({"method": "ewc", "ewc.lam": 100.0 ** 0.5 * 1.0, "ewc.fisher": "rank1"}, {})
    assert seen[1] == ({"method": "finetune"}, {"finetune.lr": 1e-3})
    for params, constants in seen:
        method = params["method"]
        assert all(k == "method" or k.startswith(method + ".") for k in [*params, *constants])
    # decode is encode's inverse: the method and its parameters by their own names
    assert decode({**seen[0][0], **seen[0][1]}) == ("ewc", {"lam": 10.0, "fisher": "rank1"})


def test_list_commands_print_the_registries():
    runner = CliRunner()
    methods = runner.invoke(main, ["list", "methods"]).output
    assert all(f"{m}:" in methods for m in ("finetune", "ewc", "replay", "trust_region"))
    assert "lam = 1000.0" in methods
    assert "split_digits_diffusion" in runner.invoke(main, ["list", "benchmarks"]).output
    assert "quickstart:" in runner.invoke(main, ["list", "spaces"]).output


def test_run_command_writes_records(tmp_path):
    out = tmp_path / "r.csv"
    result = CliRunner().invoke(main, ["run", "--method", "finetune", "--benchmark", "split_digits_diffusion",
                                       "--preset", "tiny", "--seed", "3", "--set", "lr=1e-3",
                                       "--set", "benchmark.steps_per_task=4", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert "task 2: objective" in result.output
    from trainables.records import read

    df = read(out)
    assert set(df["seed"]) == {3} and df["step"].max() == 8
