"""Files only their owner may read: delivery logs, sent logs, run stores, the progress record."""

from __future__ import annotations

import os
from pathlib import Path


def private_file(path: str | Path) -> Path:
    """Make ``path``'s folder (0700 when this creates it) and the file itself (0600) before
    anything writes to it; an existing file is made 0600 too. SQLite gives its -wal and -shm
    files the mode of the database file, so they stay private as well."""
    path = Path(path)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
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
