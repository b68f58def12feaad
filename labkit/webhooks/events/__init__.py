"""The events catalog: pure builders of faithful webhook deliveries, by ``source.event`` name."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from labkit.webhooks.events import alertmanager, dockerhub, engine, github, registry, standard
from labkit.webhooks.events._base import FIXED_CLOCK, Event, deterministic, ids, live, seeded

__all__ = [
    "ALIASES",
    "CATALOG",
    "FIXED_CLOCK",
    "Event",
    "alertmanager",
    "build",
    "deterministic",
    "dockerhub",
    "engine",
    "github",
    "ids",
    "live",
    "options_of",
    "registry",
    "seeded",
    "standard",
]


class _Preset:
    """A builder with some keyword arguments fixed by the catalog name (``registry.pull``)."""

    def __init__(self, kind: str, builder: Callable[..., Event], **preset: Any) -> None:
        self.kind = kind
        self.builder = builder
        self.preset = preset
        fixed = ", ".join(f"{k}={v!r}" for k, v in preset.items())
        self.__doc__ = f"{builder.__module__}.{builder.__name__}({fixed}, ...)"

    def __call__(self, **options: Any) -> Event:
        for key, value in self.preset.items():
            if key in options and options[key] != value:
                raise ValueError(f"{self.kind} fixes {key}={value!r}; got {key}={options[key]!r}.")
        return self.builder(**{**options, **self.preset})

    def __repr__(self) -> str:
        return f"<preset {self.__doc__}>"


def _catalog() -> dict[str, Callable[..., Event]]:
    out: dict[str, Callable[..., Event]] = {
        "github.push": github.push,
        "github.ping": github.ping,
        "github.pull_request": github.pull_request,
        "github.release": github.release,
        "github.create": github.create,
        "github.delete": github.delete,
        "github.workflow_run": github.workflow_run,
        "dockerhub.push": dockerhub.push,
        "dockerhub.callback": dockerhub.callback,
    }
    for action in registry.ACTIONS:
        out[f"registry.{action}"] = _Preset(
            f"registry.{action}", registry.notification, action=action
        )
    for status in alertmanager.STATUSES:
        out[f"alertmanager.{status}"] = _Preset(
            f"alertmanager.{status}", alertmanager.alert, status=status
        )
    for action in engine.ACTIONS:
        out[f"engine.{action}"] = _Preset(f"engine.{action}", engine.container, action=action)
    out["standard.message"] = standard.message
    return out


#: Short names for kinds that are awkward on a command line (also keys of :data:`CATALOG`).
ALIASES: dict[str, str] = {
    "engine.healthy": "engine.health_status: healthy",
    "engine.unhealthy": "engine.health_status: unhealthy",
    "engine.starting": "engine.health_status: starting",
}

#: Every ``source.event`` name to the builder ``labkit trigger`` calls for it.
CATALOG: dict[str, Callable[..., Event]] = _catalog()
CATALOG.update({alias: CATALOG[target] for alias, target in ALIASES.items()})


def _signature_of(builder: Callable[..., Event]) -> tuple[inspect.Signature, Mapping[str, Any]]:
    if isinstance(builder, _Preset):
        return inspect.signature(builder.builder), builder.preset
    return inspect.signature(builder), {}


def options_of(kind: str) -> dict[str, Any]:
    """The keyword options ``kind`` accepts, with their defaults (for ``--help`` listings)."""
    builder = _lookup(kind)
    signature, preset = _signature_of(builder)
    return {
        name: (None if p.default is inspect.Parameter.empty else p.default)
        for name, p in signature.parameters.items()
        if name not in preset and p.kind is not inspect.Parameter.VAR_KEYWORD
    }


def _lookup(kind: str) -> Callable[..., Event]:
    try:
        return CATALOG[kind]
    except KeyError:
        raise ValueError(
            f"Unknown event kind {kind!r}. Valid kinds: {', '.join(sorted(CATALOG))}."
        ) from None


def _coerce(value: Any, parameter: inspect.Parameter) -> Any:
    """Turn a command-line string into the int/bool/list the parameter takes."""
    if not isinstance(value, str):
        return value
    default = parameter.default
    annotation = str(parameter.annotation)
    parts = {part.strip() for part in annotation.split("|")}
    if isinstance(default, bool) or "bool" in parts:
        lowered = value.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ValueError(f"{parameter.name} takes true or false, not {value!r}.")
    int_like = value.strip().lstrip("-").isdigit()
    if int_like and ((isinstance(default, int) and default is not None) or "int" in parts):
        return int(value)
    if annotation.startswith("Sequence[str]"):
        return [item.strip() for item in value.split(",") if item.strip()]
    return value


def build(kind: str, **options: Any) -> Event:
    """Build the event ``kind`` (a :data:`CATALOG` name) with ``options``.

    Raises ``ValueError`` for an unknown kind (listing the valid ones), an option the builder
    does not take (listing those it does) or a bad value. String values, as a command line
    gives them, are converted for int and bool options.
    """
    builder = _lookup(kind)
    signature, preset = _signature_of(builder)
    parameters = signature.parameters
    unknown = sorted(set(options) - set(parameters))
    if unknown:
        accepted = [n for n in parameters if n not in preset]
        raise ValueError(
            f"{kind} does not take {', '.join(unknown)}. Options: {', '.join(accepted)}."
        )
    converted = {name: _coerce(value, parameters[name]) for name, value in options.items()}
    return builder(**converted)
