"""Before a Tuner restore: a trial whose newest checkpoint's predecessor is gone gets it back, as a copy.

Ray keeps one checkpoint per trial (``num_to_keep=1``): it deletes checkpoint k−1 once k is written, and
saves its own experiment state every ~2 s (``TUNE_GLOBAL_CHECKPOINT_S``). A driver killed in between leaves
a state that names k−1, and the restore then fails ("Could not recover from checkpoint as it does not
exist on storage anymore"), failing a configuration that was only interrupted. For every trial of a
configuration that has not ended, a missing checkpoint k−1 is recreated as a copy of checkpoint k: the
trial then continues after the newest task it saved (what that checkpoint holds), as it would have had
Ray's state been saved a moment later. Ray deletes the copy when the trial writes its next checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Callable


def config_of(trial_dir: Path) -> str:
    """The configuration a Ray trial folder runs: the one it confirms (params.json's ``confirm_of``), else
    the trial id in its name (``tune_trainable_<id>_<n>_...``)."""
    params = trial_dir / "params.json"
    confirm_of = json.loads(params.read_text()).get("confirm_of") if params.exists() else None
    return confirm_of or trial_dir.name.split("_")[2]


def fill_missing_predecessors(folder: Path, ended: Callable[[str], bool]) -> list[Path]:
    """Copy checkpoint k to the missing k−1 in every trial folder of ``folder`` whose configuration has
    not ``ended``; the copies made."""
    made = []
    for trial in sorted(p for p in Path(folder).glob("tune_trainable_*") if p.is_dir()):
        saved = sorted(trial.glob("checkpoint_*"))
        if not saved or ended(config_of(trial)):
            continue
        index = int(saved[-1].name.rsplit("_", 1)[1])
        before = trial / f"checkpoint_{index - 1:06d}"
        if index > 0 and not before.exists():
            shutil.copytree(saved[-1], before)
            made.append(before)
    return made
