"""labkit: a hands-on lab kit for webhooks and services in Docker.

Notebooks use this one surface: ``import labkit`` and the names in ``__all__``.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from . import events, images, runtime, signing
from .background import Background, background, stop_background
from .compose import Stack
from .doctor import doctor
from .errors import (
    BlockedAddressError,
    DeliveryError,
    ExerciseError,
    ImageError,
    LabkitError,
    ReceiverError,
    ServeError,
    SignatureError,
    StackError,
    StoreError,
)
from .events import Event
from .gitsource import GitSource
from .localstack import LocalStack, stack
from .pipeline import Pipeline, Traffic
from .receiver import Receiver
from .runs import PipelineRun
from .runtime import choose as choose_runtime
from .sender import Outcome, redeliver, send
from .serving import Served, free_port, serve, stop_serving
from .store import Delivery, DeliveryLog
from .teaching.copies import copy_stack, fill_task

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
    """In a notebook, ``%compose`` runs Compose's command line (or the local stand-in)."""
    shell_module = sys.modules.get("IPython")
    shell = shell_module.get_ipython() if shell_module is not None else None
    if shell is not None:
        from .teaching import terminal

        terminal.register(shell)


_register_magics()

# Widgets and exercises pull in ipywidgets; load them only when a notebook asks, so the
# command line (``labkit listen``) starts fast.
_LAZY = {
    "Inspector": ("labkit.widgets", "Inspector"),
    "inspect": ("labkit.widgets", "inspect"),
    "exercises": ("labkit.exercises", None),
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
    "doctor",
    "events",
    "exercises",
    "images",
    "inspect",
    "redeliver",
    "runtime",
    "send",
    "serve",
    "stop_serving",
    "signing",
    "stack",
    "widgets",
]
