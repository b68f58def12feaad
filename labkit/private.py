"""Files only their owner may read: delivery logs, sent logs, run stores, the progress record."""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from pathlib import Path

from labkit.paths import labkit_home

#: Headers that carry a secret itself (signatures are derived, so they may be shown).
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "x-api-key"})
#: What :func:`fingerprint` writes in place of a secret.
FINGERPRINT = re.compile(r"sha256:[0-9a-f]{8}")


def private_file(path: str | Path) -> Path:
    """Make ``path``'s folder (0700 when this creates it) and the file itself (0600) before
    anything writes to it; an existing file is made 0600 too. SQLite gives its -wal and -shm
    files the mode of the database file, so they stay private as well."""
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    elif path.parent.resolve() == labkit_home().resolve():
        try:  # labkit's own folder is private even when something else made it first
            path.parent.chmod(0o700)
        except OSError:
            pass
    if path.exists():
        try:
            path.chmod(0o600)
        except OSError:
            pass  # not ours, or a read-only disk: opening it says what is wrong, if anything
        return path
    try:
        os.close(os.open(path, os.O_CREAT | os.O_WRONLY | os.O_EXCL, 0o600))
    except FileExistsError:
        return private_file(path)  # made by another process just now
    return path


def fingerprint(secret: str) -> str:
    """How a log names a secret: ``sha256:`` and the first 8 hex digits of its SHA-256 (a
    label to tell two secrets apart, not a way to keep a weak one safe)."""
    if FINGERPRINT.fullmatch(secret):
        return secret
    return "sha256:" + hashlib.sha256(secret.encode()).hexdigest()[:8]


def fingerprinted_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Secret headers with only a fingerprint: ``Authorization: Bearer sha256:ab12cd34``."""
    out = dict(headers)
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme, space, token = value.partition(" ")
            if not space or not name.lower().endswith("authorization"):
                scheme, token = "", value
            out[name] = f"{scheme} {fingerprint(token)}".lstrip()
    return out
