"""The preflight check: everything a lesson needs, each line OK or what to do."""

from __future__ import annotations

import importlib.metadata
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass

from labkit import engine, runtime
from labkit.paths import labkit_home, secrets_dir
from labkit.runtime.compose import PROJECT, duplicate_networks


@dataclass(frozen=True)
class Check:
    """One preflight line."""

    name: str
    ok: bool
    detail: str
    fix: str = ""

    def line(self) -> str:
        mark = "OK  " if self.ok else "FIX "
        text = f"{mark} {self.name:<16} {self.detail}"
        return text + (f"\n      -> {self.fix}" if self.fix and not self.ok else "")


@dataclass(frozen=True)
class Report:
    """All checks; ``ok`` when nothing needs fixing."""

    checks: list[Check]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def __str__(self) -> str:
        verdict = (
            "Everything is ready."
            if self.ok
            else "Fix the lines marked FIX, then run the check again."
        )
        return "\n".join([*(c.line() for c in self.checks), "", verdict])

    def __repr__(self) -> str:
        return str(self)

    def _repr_pretty_(self, p: object, cycle: bool) -> None:
        p.text(str(self))  # type: ignore[attr-defined]


PACKAGES = ("fastapi", "uvicorn", "httpx", "ipywidgets", "docker", "jupyterlab")


def _python() -> Check:
    v = sys.version_info
    ok = v >= (3, 11)
    return Check(
        "python",
        ok,
        f"{v.major}.{v.minor}.{v.micro}",
        "install Python 3.11 or newer and re-create the .venv",
    )


def _packages() -> list[Check]:
    out = []
    for name in PACKAGES:
        try:
            out.append(Check(name, True, importlib.metadata.version(name)))
        except importlib.metadata.PackageNotFoundError:
            out.append(Check(name, False, "missing", "run ./dev lab again: it installs the kit"))
    return out


def _compose() -> Check:
    for cmd in (
        ["docker", "compose", "version", "--short"],
        ["docker-compose", "version", "--short"],
    ):
        if shutil.which(cmd[0]) is None:
            continue
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0 and done.stdout.strip():
            return Check("compose", True, f"{' '.join(cmd[:-2])} {done.stdout.strip()}")
    return Check(
        "compose",
        False,
        "not found",
        "install the Docker Compose plugin (docker compose) or docker-compose; "
        "lessons 04+ use the local runtime without it",
    )


def _port_free(port: int) -> Check:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return Check(
                f"port {port}",
                False,
                "in use",
                f"stop the program on port {port} (lsof -i :{port}) or let labkit pick "
                "a free port (port=0, the default)",
            )
    return Check(f"port {port}", True, "free")


def _leftovers() -> Check:
    """What an interrupted or concurrent ``compose up`` leaves: duplicate networks (every later
    run fails with "network ... is ambiguous") and containers created but never started."""
    try:
        client = engine.client(30, ping=False)
        twins = duplicate_networks(client)
        stuck = [
            c.name
            for c in client.containers.list(
                all=True, filters={"label": PROJECT, "status": "created"}
            )
            if str(c.labels.get(PROJECT, "")).startswith("labkit")
        ]
    except Exception as exc:  # noqa: BLE001 - the engine line above already says it is away
        return Check("leftovers", True, f"not checked ({type(exc).__name__})")
    if not twins and not stuck:
        return Check("leftovers", True, "no duplicate networks, no half-created containers")
    projects = sorted({n.rsplit("_", 1)[0] for n in twins} | {c.split("_")[0] for c in stuck})
    what = [f"{len(twins)} duplicate network name(s): {', '.join(twins)}"] if twins else []
    what += [f"{len(stuck)} container(s) created but never started"] if stuck else []
    return Check(
        "leftovers",
        False,
        "; ".join(what),
        "take the stack down, which removes them by id: labkit stack down NAME for a kit stack "
        f"(projects: {', '.join(projects)}), or %compose -f FILE down for your own copy",
    )


def _orphan_volumes() -> Check:
    """A stack's volumes made under another ``LABKIT_HOME``: the stack's secrets (the database
    password) are generated again under this one, and no longer match what the volume holds, so
    the database service never becomes healthy."""
    try:
        client = engine.client(30, ping=False)
        projects = {  # the databases: their password is a generated secret
            str((v.attrs.get("Labels") or {}).get(PROJECT, ""))
            for v in client.volumes.list(filters={"label": PROJECT})
            if v.name.endswith("_dbdata")
        }
    except Exception as exc:  # noqa: BLE001 - the engine line above already says it is away
        return Check("volumes", True, f"not checked ({type(exc).__name__})")
    orphans = sorted(p for p in projects if p.startswith("labkit") and not secrets_dir(p).is_dir())
    if not orphans:
        return Check("volumes", True, "every stack's volumes were made with this LABKIT_HOME")
    return Check(
        "volumes",
        False,
        f"{', '.join(orphans)}: volumes from another LABKIT_HOME (now {labkit_home()}); the "
        "database password made here will not open them, and the database stays unhealthy",
        "set LABKIT_HOME back to the one you used, or remove the old data: labkit stack down "
        "NAME (for a kit stack), or %compose -f FILE down -v for your own copy",
    )


def doctor(ports: tuple[int, ...] = (8888,)) -> Report:
    """Run every preflight check (``labkit doctor`` on the command line)."""
    checks = [_python(), *_packages()]
    engine = runtime.docker_engine_version()
    checks.append(
        Check(
            "docker engine",
            True,
            f"{engine} answers"
            if engine
            else "not answering: lessons use the local runtime (start Docker for real containers)",
        )
    )
    checks.append(_compose() if engine else Check("compose", True, "not needed without Docker"))
    if engine:
        checks.append(_leftovers())
        checks.append(_orphan_volumes())
    choice = runtime.choose()
    checks.append(Check("runtime", True, str(choice)))
    checks.extend(_port_free(p) for p in ports)
    return Report(checks)
