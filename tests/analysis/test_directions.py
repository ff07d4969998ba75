"""A metric's direction: --mode, then the sweep's metadata, then well-known names; never the registry."""

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from analysis.directions import by_name, from_params, higher_is_better
from analysis.load import Source
from analysis.report import eval_metrics, metric_direction


def test_mode_wins_then_directions_then_names():
    assert higher_is_better("fd") is False and higher_is_better("accuracy") is True       # names
    assert higher_is_better("fd", {"fd": True}) is True                                    # metadata over name
    assert higher_is_better("fd", {"fd": True}, mode="min") is False                       # mode over metadata
    assert higher_is_better("accuracy", {"accuracy": False}, mode="max") is True
    assert higher_is_better("bleu", {"bleu": True}) is True                                # metadata only
    assert higher_is_better("accuracy", {"bleu": True}) is True                            # other metrics: names
    assert higher_is_better("bleu", mode="max") is True and higher_is_better("bleu", mode="min") is False
    with pytest.raises(ValueError, match="--mode: 'up' is not allowed"):
        higher_is_better("fd", mode="up")


def test_unknown_direction_is_one_line_naming_mode():
    with pytest.raises(ValueError) as err:
        higher_is_better("bleu", {"fd": False})
    message = str(err.value)
    assert "direction of 'bleu' is unknown" in message and "pass --mode min or --mode max" in message
    assert "\n" not in message


def test_a_benchmark_name_is_not_a_directions_mapping():
    with pytest.raises(TypeError, match="mapping"):
        higher_is_better("fd", "split_digits_diffusion")


def test_directions_from_sweep_params():
    params = {"direction.fd": "min", "direction.gen_acc": "max", "direction.bleu": "MAX", "seeds": "0,1",
              "objective_mode": "min"}
    assert from_params(params) == {"fd": False, "gen_acc": True, "bleu": True}
    assert from_params({"seeds": "0"}) == {}                                           # absent: nothing known
    with pytest.raises(ValueError, match="direction.fd"):
        from_params({"direction.fd": "lower"})


def test_report_uses_the_source_directions():
    records = pd.DataFrame({"method": "A", "seed": 0, "step": [10, 20, 20], "train_task": [1, 2, 2],
                            "eval_task": [1, 1, 2], "metric": ["bleu", "bleu", "bleu"], "value": [1.0, 2.0, 3.0]})
    plain = Source(records=records)
    assert plain.directions == {}
    assert eval_metrics(plain) == []                                         # direction unknown: left out
    with pytest.raises(ValueError, match="--mode"):
        metric_direction(plain, "bleu", None)
    known = Source(records=records, directions={"bleu": True})
    assert eval_metrics(known) == ["bleu"] and metric_direction(known, "bleu", None) is True
    assert metric_direction(known, "bleu", "min") is False


def test_every_registered_benchmark_metric_has_a_matching_name_direction():
    from trainables.benchmarks import BENCHMARKS

    declared = {(name, metric): spec.higher_is_better
                for name, cls in BENCHMARKS.items() for metric, spec in cls.metrics.items()}
    assert declared, "no benchmark declares a metric"
    for (name, metric), higher in declared.items():
        assert by_name(metric) is not None, f"{name}: metric {metric!r} has no name-based direction"
        assert by_name(metric) == higher, f"{name}: {metric!r} is higher_is_better={higher} in its MetricSpec"
        assert higher_is_better(metric) == higher


def test_analysis_imports_no_heavy_package():
    code = ("import sys, analysis.report, analysis.load, analysis.table, analysis.plots, analysis.reconverge, "
            "analysis.aggregate, analysis.directions, analysis.render, analysis.metrics; "
            "print(' '.join(m for m in ('torch', 'ray', 'mlflow', 'diffusers', 'metaworld', 'trainables') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[2])
    assert out.stdout.strip() == ""
