"""Every error labkit raises, in one hierarchy; each message says what to do next."""

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
