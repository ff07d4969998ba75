"""Addresses with credentials in them (a tracking server, a database): the password never leaves the
process that was given it; ``mask`` is what may be stored or printed."""

from __future__ import annotations

import re

SECRET = "***"


def split(url: str) -> tuple[str, str | None, str | None, str]:
    """(scheme://, user, password, rest); user and password None when the URL has none."""
    m = re.match(r"^([A-Za-z][A-Za-z0-9+.\-]*://)([^/?#]*)@(.*)$", url or "", re.S)
    if not m:
        return url, None, None, ""
    user, sep, password = m.group(2).partition(":")
    return m.group(1), user, password if sep else None, m.group(3)


def mask(url: str | None) -> str | None:
    """``url`` with its password replaced by ``***`` (unchanged when it has none)."""
    head, user, password, rest = split(url)
    return url if password is None else f"{head}{user}:{SECRET}@{rest}"


def masked_text(text: str) -> str:
    """Every URL password in free text (an error message) replaced by ``***``."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.\-]*://[^/\s:@]*):[^/\s@]*@", rf"\1:{SECRET}@", text)


def has_password(url: str | None) -> bool:
    return split(url)[2] is not None
