"""Live views of what the in-kernel receiver sees, built with ipywidgets."""

from __future__ import annotations

from labkit.widgets.flow import Flow, flow
from labkit.widgets.inspector import Inspector, Replay, inspect
from labkit.widgets.stack_status import StackStatus

__all__ = ["Flow", "Inspector", "Replay", "StackStatus", "flow", "inspect"]
