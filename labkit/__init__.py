"""labkit: a hands-on lab kit for webhooks and services in Docker.

Notebooks use this one surface: ``import labkit`` and the names in ``__all__``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from labkit import runtime
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
from labkit.teaching.background import Background, background, stop_background
from labkit.teaching.copies import copy_stack, fill_task
from labkit.teaching.doctor import doctor
from labkit.webhooks import events, signing
from labkit.webhooks.events import Event
from labkit.webhooks.receiver import Receiver
from labkit.webhooks.sender import Outcome, redeliver, send
from labkit.webhooks.serving import Served, free_port, serve, stop_serving
from labkit.webhooks.store import Delivery, DeliveryLog

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

# Widgets and exercises pull in ipywidgets; load them only when a notebook asks, so the
# command line (``labkit listen``) starts fast.
_LAZY = {
    "Inspector": ("labkit.widgets", "Inspector"),
    "inspect": ("labkit.widgets", "inspect"),
    "exercises": ("labkit.teaching.exercises", None),
    "widgets": ("labkit.widgets", None),
    "StackStatus": ("labkit.widgets", "StackStatus"),
    "Flow": ("labkit.widgets", "Flow"),
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module_name, attr = _LAZY[name]
        module = importlib.import_module(module_name)
        return module if attr is None else getattr(module, attr)
    raise AttributeError(f"module 'labkit' has no attribute {name!r}")


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
