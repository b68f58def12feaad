"""Which runtime runs the lab's services: the real Docker engine, or local processes as a stand-in."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from labkit import engine
from labkit.errors import RuntimeUnavailable
from labkit.paths import setting

if TYPE_CHECKING:
    from labkit.runtime.base import Runtime

DOCKER, LOCAL = "docker", "local"


@dataclass(frozen=True)
class Choice:
    """The runtime to use and the reason, in words a learner can act on."""

    name: str
    reason: str

    def __str__(self) -> str:
        return f"{self.name} ({self.reason})"


def docker_engine_version(timeout: float = 3.0) -> str | None:
    """The engine's version if a Docker engine answers, else ``None``."""
    try:
        client = engine.client(timeout, ping=False)
        try:
            return str(client.version().get("Version", "unknown"))
        finally:
            client.close()
    except Exception:  # noqa: BLE001 - any failure means "no usable engine"
        return None


def choose() -> Choice:
    """Docker when an engine answers, local processes otherwise; ``LABKIT_RUNTIME`` overrides."""
    forced = setting("LABKIT_RUNTIME").lower()
    if forced == LOCAL:
        return Choice(LOCAL, "LABKIT_RUNTIME=local is set")
    version = docker_engine_version()
    if forced == DOCKER:
        if version is None:
            return Choice(
                DOCKER,
                "LABKIT_RUNTIME=docker is set, but no engine answers: start "
                "Docker, or unset LABKIT_RUNTIME to use the local runtime",
            )
        return Choice(DOCKER, f"LABKIT_RUNTIME=docker is set; engine {version} answers")
    if forced:
        return Choice(
            LOCAL if version is None else DOCKER,
            f"LABKIT_RUNTIME={forced!r} is not 'docker' or 'local', so it was ignored",
        )
    if version is None:
        return Choice(LOCAL, "no Docker engine answers, so services run as local processes")
    return Choice(DOCKER, f"Docker engine {version} answers")


#: Where each runtime's class lives; a runtime whose module is missing is not part of this version.
IMPLEMENTATIONS = {
    DOCKER: ("labkit.runtime.docker", "DockerRuntime"),
    LOCAL: ("labkit.runtime.local", "LocalRuntime"),
}


def _runtime_class(name: str) -> tuple[type[Runtime] | None, str]:
    """The class of runtime ``name``, or ``None`` and why it cannot be loaded."""
    import importlib

    module_name, class_name = IMPLEMENTATIONS[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name == module_name:
            return None, "this version of labkit has no such runtime"
        return None, f"it cannot be loaded ({type(exc).__name__}: {exc})"
    except ImportError as exc:
        return None, f"it cannot be loaded ({type(exc).__name__}: {exc})"
    runtime_class = getattr(module, class_name, None)
    if runtime_class is None:
        return None, f"{module_name} has no {class_name}"
    return runtime_class, ""


def get(instance: str = "default", choice: Choice | None = None, **options: object) -> Runtime:
    """The runtime object for ``choice`` (default :func:`choose`), started.

    When Docker is chosen but labkit's Docker runtime cannot be loaded or cannot start here
    (:class:`~labkit.errors.RuntimeUnavailable`), the local runtime stands in and its
    ``reason`` says why, unless ``LABKIT_RUNTIME=docker`` demands Docker: then the error is
    raised. ``instance`` names the runtime: getting one of the same name again stops the old
    one first, so re-running a cell leaks nothing.
    """
    choice = choice or choose()
    if choice.name not in IMPLEMENTATIONS:
        raise ValueError(f"Unknown runtime {choice.name!r}: use {DOCKER!r} or {LOCAL!r}.")
    demanded = setting("LABKIT_RUNTIME").lower() == DOCKER
    reason = choice.reason
    if choice.name == DOCKER:
        docker_class, problem = _runtime_class(DOCKER)
        if docker_class is None:
            if demanded:
                raise RuntimeUnavailable(
                    f"LABKIT_RUNTIME=docker is set, but labkit's Docker "
                    f"runtime is not usable: {problem}. Unset "
                    "LABKIT_RUNTIME to use the local runtime."
                )
            reason = (
                f"{choice.reason}, but labkit's Docker runtime is not usable ({problem}), "
                "so the local runtime stands in"
            )
        else:
            try:
                return docker_class(instance, reason=choice.reason, **options).start()
            except RuntimeUnavailable as exc:
                if demanded:
                    raise
                reason = (
                    f"{choice.reason}, but the Docker runtime cannot start here ({exc}), "
                    "so the local runtime stands in"
                )
    local_class, problem = _runtime_class(LOCAL)
    if local_class is None:
        raise RuntimeUnavailable(f"The local runtime cannot be loaded: {problem}.")
    return local_class(instance, reason=reason, **options).start()
