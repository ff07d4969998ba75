"""The local Ray a killed driver leaves behind: its session is remembered in the sweep folder, and its
processes (raylet, GCS, dashboard and runtime-env agents, idle workers) are reaped when the sweep resumes."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

from core.errors import InputError
from orchestrator.sweep_dir import SweepDir


def remember_session(sweep: SweepDir) -> None:
    """Write the local Ray's session folder (its processes name it) and this driver's id into the sweep
    folder."""
    import ray

    session = ray._private.worker._global_node.get_session_dir_path()
    sweep.ray_session.write_text(json.dumps({"session": str(session), "driver_pid": os.getpid()}))


def _names_session(proc: Path, session: str) -> bool:
    """Whether a process's command line or one of its open files names ``session`` (the agents rename
    their command line to e.g. ``ray::DashboardAgent`` but keep the session's log files open)."""
    cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    if session in cmdline:
        return True
    for fd in (proc / "fd").iterdir():
        try:
            if os.readlink(fd).startswith(session):
                return True
        except OSError:
            continue
    return False


def session_processes(session: str) -> list[int]:
    """Process ids of the Ray session ``session`` (other than this process)."""
    pids = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if int(proc.name) != os.getpid() and _names_session(proc, session):
                pids.append(int(proc.name))
        except OSError:  # gone meanwhile, or not ours to read
            continue
    return sorted(pids)


def check_not_running(sweep: SweepDir) -> None:
    """A sweep whose driver still runs cannot be resumed (it would be run twice, and its Ray reaped)."""
    if not sweep.ray_session.exists():
        return
    saved = json.loads(sweep.ray_session.read_text())
    if saved["driver_pid"] in session_processes(saved["session"]):
        raise InputError(f"--resume: sweep {sweep.name} is still running (driver process {saved['driver_pid']}); "
                         "stop it first (Ctrl+C or SIGTERM saves its state)")


def reap_leftovers(sweep: SweepDir, grace_s: float = 3.0) -> list[int]:
    """Stop the processes of the local Ray session the sweep ran before (a driver killed by SIGKILL or the
    kernel's out-of-memory killer leaves them running); say which, by id. Returns their ids."""
    if not sweep.ray_session.exists():
        return []
    check_not_running(sweep)
    session = json.loads(sweep.ray_session.read_text())["session"]
    pids = session_processes(session)
    if pids:
        print(f"note: stopping {len(pids)} processes the previous driver's Ray left running "
              f"(session {session}): {', '.join(map(str, pids))}", file=sys.stderr)
        for sig in (signal.SIGTERM, signal.SIGKILL):
            for pid in pids:
                try:
                    os.kill(pid, sig)
                except ProcessLookupError:
                    pass
            deadline = time.monotonic() + grace_s
            while time.monotonic() < deadline and session_processes(session):
                time.sleep(0.1)
    sweep.ray_session.unlink()
    return pids
