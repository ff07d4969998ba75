"""Build long records from result matrices, with several evaluations per task phase."""

import numpy as np
import pandas as pd
import pytest

STEPS_PER_TASK = 100


def records_from(R, method="A", seed=0, metric="acc", config_id=None, stop_after=None, shuffle=True):
    """Records whose end-of-phase evaluations give R (R[k-1][j-1], NaN/None = not recorded).

    Each phase k spans global steps (k-1)*100 .. k*100 and evaluates every seen task at steps
    (k-1)*100 + 30, + 60 (decoy values 1000 + ...) and k*100 (the true R[k, j]). A 'train_loss' metric
    is logged with eval_task == train_task at the same steps. ``stop_after`` truncates the stream after
    that phase (the run stopped early).
    """
    R = np.asarray(R, dtype=float)
    n = R.shape[0] if stop_after is None else stop_after
    rows = []
    for k in range(1, n + 1):
        start = (k - 1) * STEPS_PER_TASK
        for offset in (30, 60, STEPS_PER_TASK):
            step = start + offset
            last = offset == STEPS_PER_TASK
            for j in range(1, k + 1):
                value = R[k - 1, j - 1] if last else 1000.0 + offset + 10 * k + j
                if not np.isnan(value):
                    rows.append((method, seed, step, k, j, metric, value))
            rows.append((method, seed, step, k, k, "train_loss", 0.5 / k + offset))
    df = pd.DataFrame(rows, columns=["method", "seed", "step", "train_task", "eval_task", "metric", "value"])
    if config_id is not None:
        df["config_id"] = config_id
    if shuffle:
        df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return df


@pytest.fixture
def make_records():
    return records_from
