import io
import math

import pandas as pd
import pytest

from analysis.render import format_mean_se, to_csv, to_latex, to_markdown

NAN = float("nan")


@pytest.mark.parametrize("mean, se, text", [
    (44.53, 2.31, "44.5±2.3"),          # SE to 2 significant digits (0.1 place), mean to the same place
    (0.4567, 0.0123, "0.457±0.012"),
    (1445.3, 234.0, "1450±230"),         # SE place is the tens
    (50.04, 9.96, "50±10"),             # 9.96 rounds up to 10: the place is the units
    (-0.004, 0.31, "0.00±0.31"),        # never "-0.00"
    (-3.456, 0.123, "-3.46±0.12"),
    (12.34, 0.0, "12.3±0.0"),           # SE 0: mean to 3 significant digits
    (44.53, NAN, "44.5 (n=1)"),         # a single seed
    (NAN, NAN, "n/a"),
])
def test_format_mean_se(mean, se, text):
    assert format_mean_se(mean, se) == text


def table():
    return pd.DataFrame({
        "method": ["A", "B", "C_x"],
        "config_id": ["a", "b", "c"],
        "seeds": [3, 3, 2],
        "complete": [True, True, False],
        "final": [44.53, 47.0, NAN], "final_se": [2.31, 1.04, NAN],
        "forgetting": [1.5, 2.5, NAN], "forgetting_se": [0.0123, 0.5, NAN],
        "missing": ["", "", "seed 1: tasks 4-5 missing"],
    })


DIRECTIONS = {"final": True, "forgetting": False}


def test_to_markdown_exact():
    expected = (
        "| method | final | forgetting |\n"
        "| --- | ---: | ---: |\n"
        "| A | 44.5±2.3 | **1.500±0.012** |\n"
        "| B | **47.0±1.0** | 2.50±0.50 |\n"
        "| C_x | incomplete (seed 1: tasks 4-5 missing) |  |\n"
    )
    assert to_markdown(table(), ["final", "forgetting"], higher_is_better=DIRECTIONS) == expected


def test_to_markdown_without_directions_has_no_bold():
    text = to_markdown(table(), ["final"], labels=("method", "config_id"))
    assert text.splitlines()[0] == "| method | config_id | final |"
    assert text.splitlines()[2] == "| A | a | 44.5±2.3 |"
    assert "**" not in text


def test_to_latex_exact():
    expected = (
        "\\begin{tabular}{lrr}\n"
        "\\toprule\n"
        "method & final & forgetting \\\\\n"
        "\\midrule\n"
        "A & $44.5 \\pm 2.3$ & $\\mathbf{1.500 \\pm 0.012}$ \\\\\n"
        "B & $\\mathbf{47.0 \\pm 1.0}$ & $2.50 \\pm 0.50$ \\\\\n"
        "C\\_x & \\multicolumn{2}{l}{incomplete (seed 1: tasks 4-5 missing)} \\\\\n"
        "\\bottomrule\n"
        "\\end{tabular}\n"
    )
    assert to_latex(table(), ["final", "forgetting"], higher_is_better=DIRECTIONS) == expected


def test_to_latex_single_seed_and_ties():
    df = pd.DataFrame({"method": ["A", "B"], "complete": [True, True],
                       "final": [44.53, 44.53], "final_se": [NAN, NAN]})
    lines = to_latex(df, ["final"], higher_is_better={"final": True}).splitlines()
    assert lines[4] == "A & $\\mathbf{44.5}$ (n=1) \\\\"
    assert lines[5] == "B & $\\mathbf{44.5}$ (n=1) \\\\"


def test_to_csv_keeps_full_precision():
    df = table()
    back = pd.read_csv(io.StringIO(to_csv(df)), keep_default_na=False, na_values=[""])
    assert to_csv(df).splitlines()[0] == "method,config_id,seeds,complete,final,final_se,forgetting,forgetting_se,missing"
    assert back["final_se"].iloc[1] == 1.04 and back["forgetting_se"].iloc[0] == 0.0123
    assert math.isnan(back["final"].iloc[2])
