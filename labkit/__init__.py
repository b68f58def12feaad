"""labkit: a hands-on lab kit for webhooks and services in Docker.

Notebooks use this one surface: ``import labkit`` and the names in ``__all__``.
"""

from __future__ import annotations

import importlib
import os
import sys
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # what type checkers and editors see; at run time the names load on first use
    from labkit import runtime, widgets
    from labkit.errors import (
        BadReport,
        BlockedAddressError,
        BuildError,
        ClassroomError,
        DeliveryError,
        DeployError,
        ExerciseError,
        FrontError,
        GitSourceError,
        ImageError,
        LabkitError,
        PipelineError,
        ReceiverError,
        RuntimeFailure,
        RuntimeUnavailable,
        ServeError,
        ShipError,
        SignatureError,
        StackError,
        StoreError,
    )
    from labkit.pipeline.gitsource import GitSource
    from labkit.pipeline.pipeline import Pipeline, Traffic
    from labkit.pipeline.runs import PipelineRun
    from labkit.runtime import choose as choose_runtime
    from labkit.runtime import composefile, images, kube, swarm
    from labkit.runtime.compose import Stack
    from labkit.runtime.localstack import LocalStack, stack
    from labkit.teaching import exercises
    from labkit.teaching.background import Background, background, stop_background
    from labkit.teaching.copies import copy_stack, fill_task
    from labkit.teaching.doctor import doctor
    from labkit.webhooks import events, signing
    from labkit.webhooks.events import Event
    from labkit.webhooks.receiver import Receiver
    from labkit.webhooks.sender import Outcome, redeliver, send
    from labkit.webhooks.serving import Served, free_port, serve, stop_serving
    from labkit.webhooks.store import Delivery, DeliveryLog
    from labkit.widgets import Flow, Inspector, StackStatus, inspect

__version__ = "0.1.0"


def _expose_commands() -> None:
    """Make ``!labkit ...`` in a notebook run this kit's command: a kernel started from a venv's
    python without activating the venv does not have the venv's scripts on its PATH."""
    scripts = os.path.dirname(sys.executable)
    path = os.environ.get("PATH", "").split(os.pathsep)
    if os.path.exists(os.path.join(scripts, "labkit")) and scripts not in path:
        os.environ["PATH"] = os.pathsep.join([scripts, *path])


_expose_commands()


def _register_magics() -> None:
    """In a notebook, ``%compose`` runs Compose's command line (or the local stand-in), and long work
    shows its progress as a widget bar."""
    shell_module = sys.modules.get("IPython")
    shell = shell_module.get_ipython() if shell_module is not None else None
    if shell is not None:
        from labkit.progress import use_notebook_view
        from labkit.teaching import terminal
        from labkit.widgets.progress import shown

        terminal.register(shell)
        use_notebook_view(shown)


_register_magics()

# Every name loads on first use: the git hook and the command line (``labkit listen``) import
# only the modules they need and start fast, and ipywidgets loads only when a notebook asks.
# name: (module, attribute), or (module, None) for the module itself.
_LAZY: dict[str, tuple[str, str | None]] = {
    "BadReport": ("labkit.errors", "BadReport"),
    "BlockedAddressError": ("labkit.errors", "BlockedAddressError"),
    "BuildError": ("labkit.errors", "BuildError"),
    "ClassroomError": ("labkit.errors", "ClassroomError"),
    "DeliveryError": ("labkit.errors", "DeliveryError"),
    "DeployError": ("labkit.errors", "DeployError"),
    "ExerciseError": ("labkit.errors", "ExerciseError"),
    "FrontError": ("labkit.errors", "FrontError"),
    "GitSourceError": ("labkit.errors", "GitSourceError"),
    "ImageError": ("labkit.errors", "ImageError"),
    "LabkitError": ("labkit.errors", "LabkitError"),
    "PipelineError": ("labkit.errors", "PipelineError"),
    "ReceiverError": ("labkit.errors", "ReceiverError"),
    "RuntimeFailure": ("labkit.errors", "RuntimeFailure"),
    "RuntimeUnavailable": ("labkit.errors", "RuntimeUnavailable"),
    "ServeError": ("labkit.errors", "ServeError"),
    "ShipError": ("labkit.errors", "ShipError"),
    "SignatureError": ("labkit.errors", "SignatureError"),
    "StackError": ("labkit.errors", "StackError"),
    "StoreError": ("labkit.errors", "StoreError"),
    "GitSource": ("labkit.pipeline.gitsource", "GitSource"),
    "Pipeline": ("labkit.pipeline.pipeline", "Pipeline"),
    "Traffic": ("labkit.pipeline.pipeline", "Traffic"),
    "PipelineRun": ("labkit.pipeline.runs", "PipelineRun"),
    "runtime": ("labkit.runtime", None),
    "choose_runtime": ("labkit.runtime", "choose"),
    "composefile": ("labkit.runtime.composefile", None),
    "images": ("labkit.runtime.images", None),
    "kube": ("labkit.runtime.kube", None),
    "swarm": ("labkit.runtime.swarm", None),
    "Stack": ("labkit.runtime.compose", "Stack"),
    "LocalStack": ("labkit.runtime.localstack", "LocalStack"),
    "stack": ("labkit.runtime.localstack", "stack"),
    "exercises": ("labkit.teaching.exercises", None),
    "Background": ("labkit.teaching.background", "Background"),
    "background": ("labkit.teaching.background", "background"),
    "stop_background": ("labkit.teaching.background", "stop_background"),
    "copy_stack": ("labkit.teaching.copies", "copy_stack"),
    "fill_task": ("labkit.teaching.copies", "fill_task"),
    "doctor": ("labkit.teaching.doctor", "doctor"),
    "events": ("labkit.webhooks.events", None),
    "signing": ("labkit.webhooks.signing", None),
    "Event": ("labkit.webhooks.events", "Event"),
    "Receiver": ("labkit.webhooks.receiver", "Receiver"),
    "Outcome": ("labkit.webhooks.sender", "Outcome"),
    "redeliver": ("labkit.webhooks.sender", "redeliver"),
    "send": ("labkit.webhooks.sender", "send"),
    "Served": ("labkit.webhooks.serving", "Served"),
    "free_port": ("labkit.webhooks.serving", "free_port"),
    "serve": ("labkit.webhooks.serving", "serve"),
    "stop_serving": ("labkit.webhooks.serving", "stop_serving"),
    "Delivery": ("labkit.webhooks.store", "Delivery"),
    "DeliveryLog": ("labkit.webhooks.store", "DeliveryLog"),
    "Inspector": ("labkit.widgets", "Inspector"),
    "inspect": ("labkit.widgets", "inspect"),
    "widgets": ("labkit.widgets", None),
    "StackStatus": ("labkit.widgets", "StackStatus"),
    "Flow": ("labkit.widgets", "Flow"),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'labkit' has no attribute {name!r}")
    module_name, attr = _LAZY[name]
    module = importlib.import_module(module_name)
    value = module if attr is None else getattr(module, attr)
    globals()[name] = value  # found once; later uses are plain attribute reads
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


__all__ = [
    "BadReport",
    "BuildError",
    "ClassroomError",
    "DeployError",
    "FrontError",
    "GitSourceError",
    "PipelineError",
    "RuntimeFailure",
    "RuntimeUnavailable",
    "ShipError",
    "Background",
    "background",
    "stop_background",
    "free_port",
    "BlockedAddressError",
    "Delivery",
    "DeliveryError",
    "DeliveryLog",
    "Event",
    "Flow",
    "GitSource",
    "ExerciseError",
    "ImageError",
    "Inspector",
    "LabkitError",
    "LocalStack",
    "Outcome",
    "Pipeline",
    "PipelineRun",
    "Receiver",
    "ReceiverError",
    "ServeError",
    "Served",
    "SignatureError",
    "Stack",
    "StackError",
    "StackStatus",
    "StoreError",
    "Traffic",
    "choose_runtime",
    "copy_stack",
    "fill_task",
    "composefile",
    "doctor",
    "events",
    "exercises",
    "images",
    "inspect",
    "kube",
    "redeliver",
    "runtime",
    "send",
    "serve",
    "stop_serving",
    "signing",
    "stack",
    "swarm",
    "widgets",
]
