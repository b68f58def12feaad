"""What every exercise shares: the result a check shows, a solution, known-answer vectors."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Hint:
    """A hint in two tiers: a nudge first, then (when the same check fails again) the fix."""

    nudge: str
    fix: str


#: What a checker returns: passed, and a message or a :class:`Hint`; optionally a third item
#: that names what the check looked at ("the receiver's log: 3 deliveries").
Verdict = tuple[bool, "str | Hint"] | tuple[bool, "str | Hint", str]

# --- known-answer material the tasks use ---------------------------------------------------------
#: GitHub's documented test vector for ``X-Hub-Signature-256``.
GITHUB_SECRET = "It's a Secret to Everybody"
GITHUB_BODY = b"Hello, World!"
GITHUB_SIGNATURE = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
#: The Standard Webhooks specification's test vector.
STANDARD_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
STANDARD_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
STANDARD_TIMESTAMP = 1614265330
STANDARD_BODY = b'{"test": 2432232314}'
STANDARD_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#: The secret that replaces :data:`STANDARD_SECRET` in the key-rotation exercise.
ROTATION_NEW_SECRET = "whsec_2a9tMnCVsEvvG1Al+K0jg6XFIqhFgeOz0ncbtyIhe8w="


@dataclass(frozen=True)
class Result:
    """What a check made of an answer; shows as ``PASS: ...`` or ``NOT YET: <hint>``."""

    exercise: str
    passed: bool
    message: str
    #: 0 when passed or no hint was needed, 1 for a nudge, 2 for the specific fix.
    tier: int = 0
    #: What the check read to decide ("the receiver's log", "your server's last answer").
    looked_at: str = ""
    #: Set when the progress record could not keep this check (the check still counts).
    note: str = ""

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        text = f"{'PASS' if self.passed else 'NOT YET'}: {self.message}"
        if self.looked_at:
            text += f"\n  (looked at: {self.looked_at})"
        if self.note:
            text += f"\n  ({self.note})"
        return text

    def __repr__(self) -> str:
        return str(self)

    def _repr_html_(self) -> str:
        import html

        colour = "#1a7f37" if self.passed else "#9a6700"
        word = "PASS" if self.passed else "NOT YET"
        looked = (
            f"<br><small>looked at: {html.escape(self.looked_at)}</small>" if self.looked_at else ""
        )
        if self.note:
            looked += f"<br><small>{html.escape(self.note)}</small>"
        return (
            f'<div style="border-left:4px solid {colour};padding:2px 8px">'
            f'<b style="color:{colour}">{word}</b>: {html.escape(self.message)}{looked}</div>'
        )


@dataclass(frozen=True)
class Solution:
    """One working answer to an exercise, shown as code."""

    exercise: str
    code: str

    def __str__(self) -> str:
        return self.code

    def __repr__(self) -> str:
        return f"# A solution to {self.exercise}\n{self.code}"


@dataclass(frozen=True)
class Exercise:
    """A task, the function that checks an answer, and one working answer."""

    id: str
    task: str
    checker: Callable[[Any], Verdict]
    solution: str
    #: What the student edition's answer cell holds instead of the bare placeholder, for a
    #: task done somewhere else (a file the learner edits) whose answer cell only points there.
    starter: str = ""


# --- small helpers -------------------------------------------------------------------------------


def _empty(answer: Any) -> bool:
    if answer is None or answer is Ellipsis:
        return True
    return isinstance(answer, (str, bytes, list, tuple, dict, set, frozenset)) and not answer


def _as_text(answer: Any) -> str | None:
    if isinstance(answer, bytes):
        try:
            return answer.decode()
        except UnicodeDecodeError:
            return None
    return answer.strip() if isinstance(answer, str) else None


def _ints(answer: Any) -> list[int] | None:
    """A list of status codes, also from Outcome objects or digit strings."""
    if not isinstance(answer, (list, tuple)):
        return None
    out = []
    for item in answer:
        item = getattr(item, "status", item)
        if isinstance(item, str) and item.strip().isdigit():
            item = int(item)
        if not isinstance(item, int) or isinstance(item, bool):
            return None
        out.append(item)
    return out
