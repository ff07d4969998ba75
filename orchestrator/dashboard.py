"""`orchestrate dashboard`: optuna-dashboard on a sweep's Optuna study, in this process.

The study lives in the sweep's journal file (``runs/NAME/optuna.journal``) or in the RDB named by
``--optuna-storage`` when the sweep started (``orchestrator.storage``). optuna-dashboard's command line
does not open journal files, so the storage object is handed to its Python API (``run_server``); a
running sweep can be watched (the dashboard writes there only what a user adds, such as notes). Its
pages show the trials, the history of the objective, the parameter importances, and for a study of two
objectives the Pareto front.
"""

from __future__ import annotations

import signal
import socket
from typing import Callable

from core.errors import InputError
from orchestrator import storage
from orchestrator.sweep_dir import SweepDir


def pick_sweep(name: str | None, runs_dir: str) -> SweepDir:
    """The sweep named ``name``, or the most recently started one."""
    sweeps = SweepDir.all(runs_dir)
    chosen = [s for s in sweeps if s.name == name] if name else sweeps
    if not chosen:
        where = SweepDir(runs_dir, ".").runs_dir.resolve()
        raise InputError(f"--name: no sweep {'named ' + name + ' ' if name else ''}in {where}; allowed: "
                         + (", ".join(s.name for s in sweeps) or "none (run orchestrate sweep)"))
    return chosen[-1]


def open_study(sweep: SweepDir, given_url: str | None):
    """(the storage, the study's id): the URL saved with the sweep (a password given again here)."""
    saved = sweep.read_state().get("optuna_storage")
    if given_url and storage.mask(given_url) != saved:
        raise InputError(f"--optuna-storage: sweep {sweep.name} uses {saved or 'its journal file'}; give that one "
                         "(with its password) or none")
    if given_url:
        storage.remember(given_url)
    elif storage.has_password(saved):
        raise InputError(f"--optuna-storage: sweep {sweep.name} uses {saved}, whose password is not saved; give "
                         "--optuna-storage with it again")
    if not saved and not sweep.optuna_journal.exists():
        raise InputError(f"--name: sweep {sweep.name} has no Optuna study yet ({sweep.optuna_journal} is missing)")
    study_storage = storage.optuna_storage(saved, sweep)
    try:
        return study_storage, study_storage.get_study_id_from_name(sweep.name)
    except KeyError:
        raise InputError(f"--name: the Optuna storage of sweep {sweep.name} holds no study named {sweep.name} "
                         "(it never started a trial)") from None


def check_port(host: str, port: int) -> None:
    if not 0 < port < 65536:
        raise InputError(f"--port: {port} is not allowed; allowed: 1 to 65535")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.bind((host, port))
        except OSError as e:
            raise InputError(f"--port: cannot listen on {host}:{port} ({e.strerror}); allowed: a free port, "
                             "e.g. --port 8081") from None


def serve(name: str | None, runs_dir: str, port: int, say: Callable[[str], None], host: str = "127.0.0.1",
          optuna_storage: str | None = None) -> int:
    """Serve the sweep's study until Ctrl+C or SIGTERM; 0 then. The printed address is the study's page."""
    from optuna_dashboard import run_server

    sweep = pick_sweep(name, runs_dir)
    study_storage, study_id = open_study(sweep, optuna_storage)
    check_port(host, port)
    shown = f"[{host}]" if ":" in host else host
    say(f"optuna-dashboard for sweep {sweep.name}: http://{shown}:{port}/dashboard/studies/{study_id}  "
        "(Ctrl+C stops it)")
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        run_server(study_storage, host=host, port=port)  # returns on KeyboardInterrupt (bottle's run)
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    return 0


def _interrupt(*_) -> None:
    """SIGTERM stops the server like Ctrl+C."""
    raise KeyboardInterrupt
