"""Where a sweep keeps its state beyond its folder, and the secrets in those addresses.

Optuna's study: the journal file ``runs/NAME/optuna.journal`` (default) or an RDB URL shared by a team
(``--optuna-storage postgresql://user:pw@host/db``). A password in a URL is never written or printed:
``mask`` replaces it by ``***`` wherever a URL is stored (sweep.json, MLflow, pickles) or shown; the
real URL lives only in this process (``remember``/``reveal``), and MLflow gets http(s) credentials through
its own MLFLOW_TRACKING_USERNAME/PASSWORD environment variables, so the URI it prints has none. The
``check_*`` functions make a start fail in seconds, in one line, on an address or a store that cannot work.
"""

from __future__ import annotations

import os
import re
import socket
from urllib.parse import urlsplit

from optuna.storages import RDBStorage

from core.errors import InputError
from core.urls import SECRET, has_password, mask, masked_text
from core.urls import split as _split

__all__ = ["SECRET", "check_address", "check_optuna_storage", "check_tracking_uri", "has_password", "mask",
           "masked_text", "mlflow_uri", "optuna_storage", "remember", "reveal"]

_REAL: dict[str, str] = {}  # masked URL -> the real one given in this process
TRACKING_SCHEMES = ("http", "https", "sqlite", "file", "postgresql", "mysql", "mssql", "databricks",
                    "databricks-uc", "uc")  # what MLflow 3.17's tracking-store registry accepts


def remember(url: str | None) -> str | None:
    """Keep the real ``url`` in this process only; its masked form is what may be stored."""
    shown = mask(url)
    if url and shown != url and _split(url)[2] != SECRET:
        _REAL[shown] = url
    return shown


def reveal(url: str | None) -> str | None:
    """The real URL remembered for a masked one (the masked one when none was given here)."""
    return _REAL.get(url, url) if url else url


def mlflow_uri(url: str) -> str:
    """The URI to hand MLflow in this process: http(s) credentials move to MLflow's environment variables
    (so its "View run at" lines show none); a database URL keeps its (real) password."""
    url = reveal(url)
    head, user, password, rest = _split(url)
    if password is None or not head.lower().startswith(("http://", "https://")):
        return url
    if password != SECRET:
        os.environ["MLFLOW_TRACKING_USERNAME"], os.environ["MLFLOW_TRACKING_PASSWORD"] = user, password
    return head + rest


class SecretRDBStorage(RDBStorage):
    """Optuna's RDB storage whose pickled state (Ray's tuner.pkl and searcher state) holds the masked URL;
    unpickled in a process that was given the real one (``remember``), it connects with that."""

    def __getstate__(self):
        return {**super().__getstate__(), "url": mask(self.url)}

    def __setstate__(self, state):
        super().__setstate__({**state, "url": reveal(state["url"])})


def optuna_storage(url: str | None, sweep):
    """The sweep's Optuna storage: the journal file in its folder, or the RDB at ``url``."""
    if not url:
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        return JournalStorage(JournalFileBackend(str(sweep.optuna_journal)))
    return SecretRDBStorage(reveal(url))


def check_optuna_storage(url: str, study: str) -> None:
    """--optuna-storage must be an RDB URL Optuna can open, without a study named like the new sweep."""
    import sqlalchemy
    from sqlalchemy.engine import make_url

    shown = mask(url)
    try:
        backend = make_url(url).get_backend_name()
    except sqlalchemy.exc.ArgumentError:
        raise InputError(f"--optuna-storage: '{shown}' is not allowed; allowed: an SQLAlchemy URL such as "
                         "postgresql://user:password@host:5432/db, mysql://..., sqlite:///path") from None
    timeout = {"connect_args": {"connect_timeout": 10}} if backend in ("postgresql", "mysql") else {}
    try:
        storage = SecretRDBStorage(url, engine_kwargs=timeout)
    except ImportError:
        raise InputError(f"--optuna-storage: no database driver for {backend}; install one (for postgresql: "
                         "pip install 'psycopg[binary]')") from None
    except sqlalchemy.exc.SQLAlchemyError as e:
        reason = masked_text(str(getattr(e, "orig", None) or e).strip().splitlines()[0])
        raise InputError(f"--optuna-storage: cannot open {shown}: {reason}") from None
    try:
        storage.get_study_id_from_name(study)
    except KeyError:
        return
    finally:
        storage.engine.dispose()
    raise InputError(f"--optuna-storage: {shown} already holds a study named {study}; pick another --name "
                     f"(or continue that sweep with --resume {study})")


def _hostname(url: str) -> str | None:
    try:
        return urlsplit(url).hostname
    except ValueError:  # e.g. an unclosed [IPv6 bracket
        return None


def check_tracking_uri(url: str, timeout: float = 5.0) -> None:
    """--tracking-uri: a scheme MLflow accepts; an http(s) server must answer within ``timeout`` seconds."""
    shown = mask(url)
    scheme = url.split(":", 1)[0].lower().split("+")[0]
    if scheme not in TRACKING_SCHEMES or (scheme in ("http", "https") and not _hostname(url)):
        raise InputError(f"--tracking-uri: '{shown}' is not allowed; allowed: http(s)://host:port, sqlite:///path, "
                         "file:///path, postgresql://..., mysql://..., mssql://..., databricks")
    if scheme not in ("http", "https"):
        return
    import requests

    head, user, password, rest = _split(url)
    base = (head + rest if password is not None else url).rstrip("/")
    env = os.environ.get("MLFLOW_TRACKING_USERNAME"), os.environ.get("MLFLOW_TRACKING_PASSWORD")
    auth = (user, password) if password not in (None, SECRET) else env if all(env) else None
    try:
        answer = requests.get(f"{base}/api/2.0/mlflow/experiments/search", params={"max_results": 1},
                              auth=auth, timeout=timeout)
    except requests.RequestException as e:
        reason = re.search(r"\[Errno -?\d+\][^'\")]*", str(e))
        raise InputError(f"--tracking-uri: cannot reach {shown} within {timeout:g} s ("
                         f"{reason.group(0).strip() if reason else type(e).__name__}); start the MLflow "
                         "server or fix the address") from None
    if answer.status_code in (401, 403):
        raise InputError(f"--tracking-uri: {shown} refused the credentials (HTTP {answer.status_code}); "
                         "give user:password in the URL or MLFLOW_TRACKING_USERNAME/PASSWORD")
    if answer.status_code != 200:
        raise InputError(f"--tracking-uri: {shown} answered HTTP {answer.status_code}; allowed: the address "
                         "of an MLflow tracking server")


def check_address(address: str, timeout: float = 5.0) -> None:
    """--address: ``auto``, ``host:port`` or ``ray://host:port``, and reachable within ``timeout`` seconds."""
    if address == "auto":
        return
    m = re.fullmatch(r"(ray://)?([A-Za-z0-9][A-Za-z0-9.\-]*|\[[0-9A-Fa-f:.]+\]):(\d{1,5})", address)
    if not m or not 0 < int(m.group(3)) < 65536:
        raise InputError(f"--address: '{address}' is not allowed; allowed: auto, host:port (a Ray head's GCS) "
                         "or ray://host:port (Ray Client)")
    host, port = m.group(2).strip("[]"), int(m.group(3))
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise InputError(f"--address: cannot reach {host}:{port} within {timeout:g} s "
                         f"({e.strerror or type(e).__name__}); start the Ray head or fix the address") from None
