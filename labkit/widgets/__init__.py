"""Live views of what the in-kernel receiver sees, built with ipywidgets."""

from __future__ import annotations

from .flow import Flow, flow
from .inspector import Inspector, Replay, inspect
from .stack_status import StackStatus

__all__ = ["Flow", "Inspector", "Replay", "StackStatus", "flow", "inspect"]
