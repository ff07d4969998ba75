"""Figures checked against seed means computed by hand."""

import numpy as np
import pandas as pd
import pytest

from analysis.plots import result_heatmaps, save, task_curves

COLUMNS = ["method", "seed", "step", "train_task", "eval_task", "metric", "value"]
NAN = float("nan")

# 2 tasks, phase 1 ends at step 10 (s_2 = 10). Method A has 2 seeds, B one.
# (step, train_task, eval_task): A seed 0, A seed 1, B seed 0
GRID = {
    (5, 1, 1): (30.0, 34.0, 40.0),
    (10, 1, 1): (10.0, 12.0, 20.0),
    (11, 2, 1): (14.0, 18.0, 25.0),
    (11, 2, 2): (40.0, 44.0, 50.0),
    (20, 2, 1): (12.0, 16.0, 22.0),
    (20, 2, 2): (20.0, 24.0, 30.0),
}
RECORDS = pd.DataFrame(
    [(m, s, *key, "fid", values[i]) for key, values in GRID.items()
     for i, (m, s) in enumerate([("A", 0), ("A", 1), ("B", 0)])]
    + [("A", 0, 10, 1, 1, "train_loss", 0.5)],
    columns=COLUMNS)


def test_task_curves_lines_band_and_transitions():
    fig = task_curves(RECORDS, "fid", task=1)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert sorted(lines) == ["A", "B"]
    np.testing.assert_allclose(lines["A"].get_xdata(), [5, 10, 11, 20])
    np.testing.assert_allclose(lines["A"].get_ydata(), [32, 11, 16, 14])     # seed means
    np.testing.assert_allclose(lines["B"].get_ydata(), [40, 20, 25, 22])
    bands = {c.get_gid(): c for c in ax.collections if c.get_gid()}
    assert "band:A" in bands and "band:B" not in bands                       # B has one seed
    # step 11: values 14, 18: mean 16, sd = 2*sqrt(2), SE = 2 -> band 14..18
    vertices = bands["band:A"].get_paths()[0].vertices
    at_11 = sorted(y for x, y in vertices if x == 11)
    assert at_11 == pytest.approx([14.0, 18.0])
    transitions = bands["transitions"].get_segments()
    assert [segment[0][0] for segment in transitions] == [10]
    assert ax.get_xlabel() == "global step" and ax.get_legend() is not None


def test_task_curves_errors():
    with pytest.raises(ValueError, match="metrics present: fid, train_loss"):
        task_curves(RECORDS, "acc")
    with pytest.raises(ValueError, match="task 3"):
        task_curves(RECORDS, "fid", task=3)


def test_result_heatmaps_show_seed_mean_R():
    fig = result_heatmaps(RECORDS, "fid")
    panels = [ax for ax in fig.axes if ax.images]
    assert [ax.get_title() for ax in panels] == ["A", "B"]
    image = np.ma.filled(panels[0].images[0].get_array().astype(float), NAN)
    # A: R[1,1] = (10 + 12)/2, R[2,1] = (12 + 16)/2, R[2,2] = (20 + 24)/2
    np.testing.assert_allclose(image, [[11, NAN], [14, 22]])
    np.testing.assert_allclose(np.ma.filled(panels[1].images[0].get_array().astype(float), NAN),
                               [[20, NAN], [22, 30]])
    assert sorted(t.get_text() for t in panels[0].texts) == ["11", "14", "22"]
    assert panels[0].get_xlabel() == "evaluated task j"
    assert panels[0].get_ylabel() == "after training task k"


def test_save_png_and_svg(tmp_path):
    fig = task_curves(RECORDS, "fid")
    save(fig, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").read_bytes().startswith(b"\x89PNG")
    result_heatmaps(RECORDS, "fid", path=tmp_path / "R.svg")
    assert "<svg" in (tmp_path / "R.svg").read_text()
    with pytest.raises(ValueError, match=r"\.png or \.svg"):
        save(fig, tmp_path / "curve.pdf")
