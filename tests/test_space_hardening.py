"""Hostile space files and --set items through `orchestrate sweep`: one `error:` line naming the key or field,
exit code 2, no traceback, nothing under the runs folder, and never a hang."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from orchestrator.cli import main

ROOT = Path(__file__).resolve().parents[1]
QUICK = (ROOT / "search_spaces" / "quickstart.yaml").read_text()
BIG = "9" * 400


def sweep(tmp_path: Path, space: str, *overrides: str):
    args = ["sweep", "--space", space, "--runs-dir", str(tmp_path / "runs")]
    return CliRunner().invoke(main, args + [a for o in overrides for a in ("--set", o)])


def assert_refused(result, tmp_path: Path, *words: str) -> None:
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2, result.output
    assert len(lines) == 1 and lines[0].startswith("error: "), result.output
    assert "Traceback" not in result.output and isinstance(result.exception, SystemExit)
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not (tmp_path / "runs").exists()


def with_text(tmp_path: Path, text: str | bytes) -> str:
    path = tmp_path / "space.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(path)


TEXTS = {
    "duplicate param": (QUICK.replace("  finetune:\n    lr: 1.0e-3\n", "  finetune:\n    lr: 0.01\n    lr: 0.02\n"),
                        ["duplicate key 'lr'", "line 11", "first at line 10"]),
    "duplicate top-level": (QUICK + "seeds: [0]\n", ["duplicate key 'seeds'", "line 22"]),
    "duplicate in flow": (QUICK.replace("{metric: fd,", "{metric: fd, metric: fd,"), ["duplicate key 'metric'"]),
    "alias bomb": ("name: lol\na: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                   "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                   "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d]\n", ["anchors and aliases", "line 2"]),
    "merge key": (QUICK + "extra:\n  <<: {a: 1}\n", ["merge keys"]),
    "deep list": ("[" * 5000 + "]" * 5000, ["nesting deeper than"]),
    "deep mapping": ("{a: " * 5000 + "1" + "}" * 5000, ["nesting deeper than"]),
    "deep block": ("".join(" " * i + "a:\n" for i in range(600)) + " " * 600 + "1\n", ["nesting deeper than"]),
    "huge seed": (QUICK.replace("seeds: [0, 1]", f"seeds: [{BIG}]"), ["seeds:", "[0, 4294967295]"]),
    "seed 2**64": (QUICK.replace("seeds: [0, 1]", "seeds: [18446744073709551616]"), ["seeds:", "[0, 4294967295]"]),
    "negative seed": (QUICK.replace("seeds: [0, 1]", "seeds: [-1, 0]"), ["seeds:"]),
    "huge float param": (QUICK.replace("lam: 100.0\n    fisher", f"lam: {BIG}\n    fisher"),
                         ["methods.ewc.lam: 9999", "allowed: a finite number >= 0"]),
    "huge int param": (QUICK.replace("fisher: rank1", f"fisher_samples: {BIG}"),
                       ["methods.ewc.fisher_samples: 9999", "allowed: an integer >= 1"]),
    "huge bound": (QUICK.replace("lam: 100.0\n    fisher", f"lam: {{loguniform: [1, {BIG}]}}\n    fisher"),
                   ["methods.ewc.lam.loguniform: bound 9999"]),
    "huge benchmark seed": (QUICK.replace("name: split_digits_diffusion", f"name: split_digits_diffusion\n  split_seed: {BIG}"),
                            ["benchmark.split_seed", "a seed"]),
    "5000-digit integer": (QUICK.replace("seeds: [0, 1]", f"seeds: [{'9' * 5000}]"), ["more than 1000 characters"]),
    "huge sampler seed": (QUICK.replace("sampler_seed: 0", f"sampler_seed: {BIG}"), ["budget.sampler_seed"]),
    "unknown top-level key": (QUICK + "extra: 1\n", ["extra: unknown key"]),
    "unknown benchmark key": (QUICK.replace("name: split_digits_diffusion", "name: split_digits_diffusion\n  steps: 3"),
                              ["benchmark.steps: unknown parameter"]),
    "unknown objective key": (QUICK.replace("mode: min}", "mode: min, goal: 1}"), ["objective.goal: unknown key"]),
    "unknown budget key": (QUICK.replace("sampler_seed: 0,", "sampler_seed: 0, trials: 3,"), ["budget.trials: unknown key"]),
    "unknown method": (QUICK.replace("  replay:", "  replay2:"), ["methods.replay2: unknown method"]),
    "unknown method param": (QUICK.replace("replay_ratio: 1.0\n  trust", "ratio: 1.0\n  trust"),
                             ["methods.replay.ratio: unknown parameter"]),
    "unknown distribution": (QUICK.replace("lam: 100.0\n    fisher", "lam: {normal: [0, 1]}\n    fisher"),
                             ["methods.ewc.lam: a distribution is one of"]),
    "mapping in a list setting": (QUICK.replace("name: split_digits_diffusion", "name: split_digits_diffusion\n  channels: [{a: 1}]"),
                                  ["benchmark.channels", "a list of integers"]),
    "method params not a mapping": (QUICK.replace("  finetune:\n    lr: 1.0e-3\n", "  finetune: [1]\n"), ["methods.finetune"]),
    "preset not a name": (QUICK.replace("name: split_digits_diffusion", "name: split_digits_diffusion\n  preset: [1]"),
                          ["benchmark.preset"]),
    "budget not a mapping": (QUICK.replace("budget: {num_samples: 4, max_concurrent: 2, sampler_seed: 0, "
                                           "start_with_defaults: true}", "budget: 0"), ["budget: 0"]),
    "asha reduction factor 1": (QUICK.replace("sampler_seed: 0,", "sampler_seed: 0, scheduler: asha, reduction_factor: 1,"),
                                ["budget.reduction_factor"]),
    "name with a newline": (QUICK.replace("name: quickstart", 'name: "a\\nb"'), ["name:"]),
    "key with a newline": (QUICK + '"a\\nb": 1\n', ["key 'a\\nb'"]),
    "binary (NUL bytes)": (QUICK.encode() + b"\0\0\0", ["binary"]),
    "not UTF-8": (QUICK.encode() + b"# \xff\xfe\n", ["not UTF-8"]),
    "control character": (QUICK + "# \x01\n", ["#x0001"]),
    "too large": (QUICK + "#" * (300 * 1024) + "\n", ["at most 262144 bytes"]),
    "empty file": ("", ["a space is a YAML mapping"]),
    "a list": ("[1, 2]\n", ["a space is a YAML mapping"]),
    "two documents": (QUICK + "---\nname: b\n", ["malformed YAML"]),
}


@pytest.mark.parametrize("case", sorted(TEXTS))
def test_hostile_space_text_is_refused_in_one_line(tmp_path, case):
    text, words = TEXTS[case]
    assert_refused(sweep(tmp_path, with_text(tmp_path, text)), tmp_path, *words)


def test_a_directory_and_dev_zero_are_not_space_files(tmp_path):
    (tmp_path / "dir.yaml").mkdir()
    assert_refused(sweep(tmp_path, str(tmp_path / "dir.yaml")), tmp_path, "not a regular file")
    assert_refused(sweep(tmp_path, str(tmp_path)), tmp_path, "not a regular file")
    if Path("/dev/zero").exists():
        assert_refused(sweep(tmp_path, "/dev/zero"), tmp_path, "not a regular file")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_hanging(tmp_path):
    fifo = tmp_path / "space.yaml"
    os.mkfifo(fifo)
    code = ("import sys; from click.testing import CliRunner; from orchestrator.cli import main; "
            "r = CliRunner().invoke(main, ['sweep', '--space', sys.argv[1], '--runs-dir', sys.argv[2]]); "
            "print(r.exit_code); print(r.output, end='')")
    done = subprocess.run([sys.executable, "-c", code, str(fifo), str(tmp_path / "runs")], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    exit_code, *lines = done.stdout.strip().splitlines()
    assert exit_code == "2" and len(lines) == 1 and "not a regular file" in lines[0], done.stdout + done.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads anything")
def test_an_unreadable_file_is_refused(tmp_path):
    path = Path(with_text(tmp_path, QUICK))
    path.chmod(0)
    try:
        assert_refused(sweep(tmp_path, str(path)), tmp_path, "ermission denied")
    finally:
        path.chmod(0o600)


SETS = {
    "no equals sign": ("methods.ewc.lam", ["--set: 'methods.ewc.lam' is not key=value"]),
    "empty key": ("=1", ["--set: key ''"]),
    "empty key part": ("methods..lam=1", ["--set: key 'methods..lam'"]),
    "key with spaces": ("methods.ewc lam=1", ["--set: key"]),
    "unknown top-level key": ("extra.x=1", ["--set extra.x: unknown key 'extra'"]),
    "unknown method param": ("methods.ewc.gamma=1", ["methods.ewc.gamma: unknown parameter"]),
    "unknown benchmark key": ("benchmark.foo=1", ["benchmark.foo: unknown parameter"]),
    "into a scalar": ("budget.num_samples.x=1", ["--set budget.num_samples.x: 'num_samples' is not a mapping"]),
    "distribution garbage": ("methods.ewc.lam.loguniform.x=1", ["methods.ewc.lam.loguniform"]),
    "bad YAML value": ("methods.ewc.lam=[1", ["--set methods.ewc.lam: value '[1' is not valid YAML"]),
    "alias value": ("methods.ewc.lam=*a", ["anchors and aliases"]),
    "duplicate keys in value": ("budget={num_samples: 1, num_samples: 2}", ["duplicate key 'num_samples'"]),
    "huge int value": (f"seeds=[{BIG}]", ["seeds:"]),
    "deep value": ("methods.ewc.lam=" + "[" * 3000 + "]" * 3000, ["nesting deeper than"]),
    "name with a slash": ("name=a/b", ["name: 'a/b' is not allowed"]),
}


@pytest.mark.parametrize("case", sorted(SETS))
def test_garbage_set_items_are_refused_in_one_line(tmp_path, case):
    item, words = SETS[case]
    assert_refused(sweep(tmp_path, "quickstart", item), tmp_path, *words)


def test_set_on_a_benchmark_given_by_name_and_edge_values_still_load(tmp_path):
    from orchestrator.spaces import load

    text = (ROOT / "search_spaces" / "permuted_digits.yaml").read_text()
    path = with_text(tmp_path, text.replace("benchmark:\n  name: permuted_digits\n", "benchmark: permuted_digits\n"))
    space = load(path, ["benchmark.num_tasks=3", "benchmark.split_seed=4294967295", "seeds=[0, 4294967295]"])
    assert space.bench_config.num_tasks == 3 and space.bench_config.split_seed == 2**32 - 1
    assert space.seeds == (0, 2**32 - 1)
