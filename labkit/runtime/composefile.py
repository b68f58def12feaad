"""A compose.yaml read as written, and its short forms made long: what Swarm and Kubernetes files start from.

``read(stack)`` loads the file itself (anchors merged, relative paths made absolute) instead of asking
``compose config``, so the result is the same with Compose v1, Compose v2 or no Compose at all (the
local runtime). The helpers below accept both shapes, the file as written and ``compose config``'s
output, and answer in one long form each.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from labkit.runtime.recipes import RECIPES

if TYPE_CHECKING:
    from labkit.runtime.compose import Stack


def read(stack: Stack) -> dict[str, Any]:
    """``stack.file`` as a dict: ``<<`` anchors merged, build contexts and secret files absolute.

    ``${VARIABLE}`` and ``${VARIABLE:-default}`` take their values from ``stack.env`` and then
    the environment, as Compose does; ``$$`` is a literal ``$``.
    """
    import yaml

    data = yaml.safe_load(interpolate(stack.file.read_text(), stack.env)) or {}
    if not isinstance(data, dict):
        return {}
    for spec in (data.get("services") or {}).values():
        build = spec.get("build")
        if isinstance(build, str):
            spec["build"] = {"context": str((stack.folder / build).resolve())}
        elif isinstance(build, dict) and "context" in build:
            build["context"] = str((stack.folder / build["context"]).resolve())
        mounts = spec.get("volumes") or []
        for i, entry in enumerate(mounts):  # bind mounts: relative to the Compose file's folder
            if isinstance(entry, str) and entry.startswith("."):
                source, _, rest = entry.partition(":")
                mounts[i] = f"{(stack.folder / source).resolve()}:{rest}"
            elif isinstance(entry, dict) and str(entry.get("source", "")).startswith("."):
                entry["source"] = str((stack.folder / entry["source"]).resolve())
    for spec in (data.get("secrets") or {}).values():
        if isinstance(spec, dict) and "file" in spec:
            spec["file"] = str((stack.folder / spec["file"]).resolve())
    return {key: value for key, value in data.items() if not str(key).startswith("x-")}


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    """Compose's variable substitution: ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``$$``."""
    import os

    values = {**os.environ, **(env or {})}

    def value(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        name, colon, default = match.group(1), match.group(2), match.group(3)
        got = values.get(name)
        if default is not None and (got is None or (colon and got == "")):
            return default
        return got or ""

    return re.sub(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)-([^}]*))?\}", value, text)


def duration(value: Any, default: float = 0.0) -> float:
    """A Compose duration (``"2s"``, ``"1m30s"``, ``"500ms"``, or a number of seconds) in seconds;
    ``default`` when it is missing or says no time at all."""
    if value is None:
        return default
    if isinstance(value, (int, float)):
        return float(value)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "ns": 1e-9}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|ns|h|m|s)", str(value))
    return sum(float(amount) * units[unit] for amount, unit in parts) if parts else default


def seconds(value: Any) -> int:
    """A Compose duration in whole seconds (what Swarm and Kubernetes files take)."""
    return max(0, round(duration(value)))


def ports(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each ``ports:`` entry as ``{target, published, host_ip, protocol}`` (published may be None)."""
    out = []
    for entry in spec.get("ports") or []:
        if isinstance(entry, dict):
            out.append(
                {
                    "target": int(entry["target"]),
                    "published": int(entry["published"]) if entry.get("published") else None,
                    "host_ip": entry.get("host_ip"),
                    "protocol": entry.get("protocol", "tcp"),
                }
            )
            continue
        text, _, protocol = str(entry).partition("/")
        parts = text.rsplit(":", 2) if text.count(":") >= 2 else text.split(":")
        host_ip = parts[0] if len(parts) == 3 else None
        published = parts[-2] if len(parts) >= 2 else ""
        out.append(
            {
                "target": int(parts[-1]),
                "published": int(published) if published else None,
                "host_ip": host_ip or None,
                "protocol": protocol or "tcp",
            }
        )
    return out


def names(value: Any) -> list[str]:
    """Names from a list or a mapping (``networks:``, ``secrets:``, ``depends_on:`` in any form)."""
    if isinstance(value, dict):
        return list(value)
    out = []
    for item in value or []:
        out.append(str(item["source"]) if isinstance(item, dict) else str(item))
    return out


def depends_on(spec: dict[str, Any]) -> dict[str, str]:
    """``depends_on`` as ``{service: condition}``; the short list form means ``service_started``."""
    value = spec.get("depends_on") or {}
    if isinstance(value, dict):
        return {
            name: str((cond or {}).get("condition", "service_started"))
            for name, cond in value.items()
        }
    return {str(name): "service_started" for name in value}


def environment(spec: dict[str, Any]) -> dict[str, str]:
    """``environment`` as a dict of strings (the ``KEY=VALUE`` list form too)."""
    value = spec.get("environment") or {}
    if isinstance(value, dict):
        return {str(k): "" if v is None else str(v) for k, v in value.items()}
    pairs = (str(item).partition("=") for item in value)
    return {key: val for key, _, val in pairs}


def volumes(spec: dict[str, Any]) -> list[dict[str, Any]]:
    """Each ``volumes:`` entry as ``{type, source, target, read_only}``."""
    out = []
    for entry in spec.get("volumes") or []:
        if isinstance(entry, dict):
            out.append(
                {
                    "type": entry.get("type", "volume"),
                    "source": entry.get("source"),
                    "target": entry["target"],
                    "read_only": bool(entry.get("read_only")),
                }
            )
            continue
        parts = str(entry).split(":")
        source, target = (parts[0], parts[1]) if len(parts) > 1 else (None, parts[0])
        kind = "bind" if source and source.startswith(("/", ".", "~")) else "volume"
        out.append(
            {
                "type": kind,
                "source": source,
                "target": target,
                "read_only": len(parts) > 2 and "ro" in parts[2].split(","),
            }
        )
    return out


def healthcheck(spec: dict[str, Any]) -> dict[str, Any] | None:
    """The healthcheck as ``{test, interval, timeout, retries, start_period}`` (seconds), or None."""
    check = spec.get("healthcheck")
    if not check or check.get("disable"):
        return None
    test = check.get("test")
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    return {
        "test": list(test or []),
        "interval": seconds(check.get("interval", "30s")),
        "timeout": seconds(check.get("timeout", "30s")),
        "retries": int(check.get("retries", 3)),
        "start_period": seconds(check.get("start_period", 0)),
    }


# -- what the images say: read from the kit's own Dockerfiles, never from an engine -------------------


def dockerfile(spec: dict[str, Any]) -> Path | None:
    """The Dockerfile a service is built from, or the kit's recipe for its image, if there is one."""
    build = spec.get("build")
    if isinstance(build, dict):
        path = Path(build["context"]) / build.get("dockerfile", "Dockerfile")
        return path if path.is_file() else None
    return _recipe_dockerfile(str(spec.get("image", "")))


def exposed_ports(spec: dict[str, Any]) -> list[int]:
    """The ports the service's image EXPOSEs (following ``FROM`` through the kit's recipes)."""
    found: list[int] = []
    for text in _dockerfile_chain(dockerfile(spec)):
        for line in re.findall(r"(?im)^\s*EXPOSE\s+(.+)$", text):
            for word in line.split():
                number = word.split("/")[0]
                if number.isdigit() and int(number) not in found:
                    found.append(int(number))
    return found


def user_ids(spec: dict[str, Any]) -> dict[str, int]:
    """The numeric ids of the users the service's images create (``useradd --uid N name``)."""
    found: dict[str, int] = {}
    for text in _dockerfile_chain(dockerfile(spec)):
        joined = re.sub(r"\\\s*\n", " ", text)  # continuation lines joined
        for command in re.findall(r"useradd\s+([^\n&;|]+)", joined):
            words = command.split()
            uid = next(
                (words[i + 1] for i, w in enumerate(words[:-1]) if w in ("--uid", "-u")), None
            )
            if uid and uid.isdigit():
                found.setdefault(words[-1], int(uid))
    return found


def _recipe_dockerfile(image: str) -> Path | None:
    for recipe in RECIPES:
        if recipe.tag == image and (recipe.folder / "Dockerfile").is_file():
            return recipe.folder / "Dockerfile"
    return None


def _dockerfile_chain(path: Path | None) -> list[str]:
    texts: list[str] = []
    while path is not None and len(texts) < 10:
        text = path.read_text()
        texts.append(text)
        parents = re.findall(r"(?im)^\s*FROM\s+(\S+)", text)
        path = _recipe_dockerfile(parents[-1]) if parents else None
    return texts


def yaml_text(data: Any, *, documents: bool = False, flow: bool | None = False) -> str:
    """YAML with keys in the order written and no ``&id001`` anchors, however objects are shared.

    ``documents=True`` writes a list as a stream of documents (``---`` between them); ``flow=None``
    writes short lists and mappings inline (``[a, b]``), as Compose files often do.
    """
    import yaml

    class NoAnchors(yaml.SafeDumper):  # type: ignore[misc]
        def ignore_aliases(self, data: Any) -> bool:
            return True

    options: dict[str, Any] = {
        "Dumper": NoAnchors,
        "sort_keys": False,
        "width": 100,
        "default_flow_style": flow,
    }
    if documents:
        return str(yaml.dump_all(data, explicit_start=len(data) > 1, **options))
    return str(yaml.dump(data, **options))


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """A Dockerfile's instructions as ``(KEYWORD, arguments)``: comments dropped, lines that end
    in a backslash joined to the next, as the builder reads them."""
    out: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        stripped = line.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue  # a comment inside a continued instruction is dropped too
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        whole = (pending + stripped).strip()
        pending = ""
        if whole:
            keyword, _, arguments = whole.partition(" ")
            out.append((keyword.upper(), arguments.strip()))
    if pending.strip():
        keyword, _, arguments = pending.strip().partition(" ")
        out.append((keyword.upper(), arguments.strip()))
    return out
