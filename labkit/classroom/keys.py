"""Per-learner signing secrets for progress webhooks, derived from one classroom key.

The class view holds the key and derives any learner's secret; each learner's server is given
only its own. A learner who reads their environment can therefore sign their own progress, but
never another learner's.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

#: The Standard Webhooks event type of a batch of checks.
EVENT_TYPE = "progress.checked"


def learner_secret(key: bytes, learner: str) -> str:
    """The ``whsec_`` secret with which ``learner`` signs their progress."""
    digest = hmac.new(key, b"labkit-classroom-progress\0" + learner.encode(), hashlib.sha256)
    return "whsec_" + base64.b64encode(digest.digest()).decode()
