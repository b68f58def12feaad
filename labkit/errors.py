"""Every error labkit raises, in one hierarchy under :class:`LabkitError`, exported from ``labkit``;
each message says what to do next. (The receiver answers a bad request with a 4xx instead:
its ``Rejected`` never leaves the receiver.)"""

from __future__ import annotations


class LabkitError(Exception):
    """Base class: something labkit could not do, with a hint on how to fix it."""


class SignatureError(LabkitError):
    """A webhook signature is missing, malformed, stale or does not match the body."""


class ReceiverError(LabkitError):
    """The in-kernel receiver could not start, or its server thread died."""


class DeliveryError(LabkitError):
    """A webhook could not be delivered (after every retry)."""


class BlockedAddressError(DeliveryError):
    """The sender refused a destination address (SSRF guard)."""


class StoreError(LabkitError):
    """The delivery log cannot be written (disk full, read-only, locked)."""


class ExerciseError(LabkitError):
    """An exercise check was called with something it cannot check."""


class ImageError(LabkitError):
    """A lab image could not be built, saved or loaded."""


class StackError(LabkitError):
    """A Compose stack could not start, answer or stop."""


class ServeError(LabkitError):
    """An app served with ``labkit.serve`` could not start, or its server thread died."""


class FrontError(LabkitError):
    """The front could not start; the message says what to do."""


class RuntimeFailure(LabkitError):
    """A runtime could not do what the pipeline asked; the message says why and what to do."""


class BuildError(RuntimeFailure):
    """The build of a commit failed (the log says which step); nothing was shipped."""


class RuntimeUnavailable(RuntimeFailure):
    """The chosen runtime cannot run on this machine or is not part of this version of labkit."""


class ShipError(RuntimeFailure):
    """An artifact could not be stored in the runtime's registry."""


class DeployError(RuntimeFailure):
    """A deploy could not even be tried (unknown artifact, runtime stopped). An unhealthy new
    version is not an error: :meth:`Runtime.deploy` rolls back and says so in its result."""


class PipelineError(LabkitError):
    """The pipeline cannot start, or a run did not finish in time; the message says why."""


class GitSourceError(LabkitError):
    """A git command failed; the message shows what git said."""


class ClassroomError(LabkitError):
    """A classroom that cannot start, or a request it cannot do, with what to do instead."""


class BadReport(LabkitError, ValueError):
    """A progress report that does not have the shape the kit sends (answered with a 422)."""
