"""labkit.signing.explain: one test per cause, each from a real signature (GitHub's documented
vector, labkit's senders, and the `standardwebhooks` reference package for Standard Webhooks)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks

from labkit.webhooks import events, signing

GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


def _push() -> events.Event:
    with events.seeded(7):
        return events.github.push(commits=["Añadir la página de inicio"]).signed("s3cret")


def _theirs(body: bytes, *, msg_id: str = "msg_2Lx", at: int | None = None) -> dict[str, str]:
    """Standard Webhooks headers signed by the reference package, not by labkit."""
    at = int(time.time()) if at is None else at
    sig = standardwebhooks.Webhook(SW_SECRET).sign(
        msg_id, datetime.fromtimestamp(at, tz=UTC), body.decode()
    )
    return {"webhook-id": msg_id, "webhook-timestamp": str(at), "webhook-signature": sig}


# --- GitHub -----------------------------------------------------------------------------------


def test_ok_on_githubs_documented_vector() -> None:
    result = signing.explain(GH_SECRET, GH_BODY, {"X-Hub-Signature-256": GH_SIG})
    assert result.cause == "ok" and result.ok and result.scheme == "github"
    assert str(result).startswith("ok (github): ")


def test_no_signature() -> None:
    result = signing.explain(GH_SECRET, GH_BODY, {"X-GitHub-Event": "ping"})
    assert result.cause == "no-signature" and not result
    assert "X-Hub-Signature-256" in str(result)


@pytest.mark.parametrize(
    "value",
    [
        GH_SIG[7:],
        "sha256=" + GH_SIG[7:].upper(),
        GH_SIG[:-2],
        "sha512=" + GH_SIG[7:],
        "sha256=" + "z" * 64,
    ],
)
def test_malformed(value: str) -> None:
    result = signing.explain(GH_SECRET, GH_BODY, {"X-Hub-Signature-256": value})
    assert result.cause == "malformed", str(result)
    assert "64 lowercase hex" in result.summary


def test_wrong_algorithm_only_the_legacy_sha1_header() -> None:
    sha1 = signing.github_signature_sha1(GH_BODY, GH_SECRET)
    result = signing.explain(GH_SECRET, GH_BODY, {"X-Hub-Signature": sha1})
    assert result.cause == "wrong-algorithm"
    assert "it does match the body" in result.summary


def test_wrong_algorithm_a_sha1_value_in_the_sha256_header() -> None:
    sha1 = signing.github_signature_sha1(GH_BODY, GH_SECRET)
    result = signing.explain(GH_SECRET, GH_BODY, {"X-Hub-Signature-256": sha1})
    assert result.cause == "wrong-algorithm"


@pytest.mark.parametrize(
    "rewrite, label",
    [
        (lambda v: json.dumps(v), "compact separators, ensure_ascii=False"),
        (lambda v: json.dumps(v, separators=(",", ":")), "compact separators, ensure_ascii=False"),
        (
            lambda v: json.dumps(v, ensure_ascii=False, indent=2),
            "compact separators, ensure_ascii=False",
        ),
    ],
)
def test_re_serialized_names_the_way_the_bytes_were_signed_and_shows_the_first_difference(
    rewrite: object, label: str
) -> None:
    push = _push()
    rewritten = rewrite(json.loads(push.body)).encode()  # type: ignore[operator]
    assert rewritten != push.body
    result = signing.explain("s3cret", rewritten, push.headers)
    assert result.cause == "re-serialized", str(result)
    assert label in result.summary
    assert result.signed_body == push.body
    at = next(i for i, (a, b) in enumerate(zip(rewritten, push.body, strict=False)) if a != b)
    assert f"first difference at byte {at} " in result.diff
    checked_line, signed_line, caret = result.diff.splitlines()[1:]
    i = caret.index("^")
    # Same bytes up to the caret (the labels are padded to one width), different from it on.
    start = len("    checked: ")
    assert checked_line[start:i] == signed_line[start:i]
    assert checked_line[i : i + 2] != signed_line[i : i + 2]


def test_re_serialized_when_the_signer_sorted_the_keys() -> None:
    body = b'{"zeta":1,"alpha":2}'
    signed_as = json.dumps(json.loads(body), sort_keys=True, separators=(",", ":")).encode()
    result = signing.explain("s3cret", body, signing.github_headers(signed_as, "s3cret"))
    assert result.cause == "re-serialized" and "keys sorted" in result.summary


def test_mismatch_wrong_secret_and_tampered_body() -> None:
    push = _push()
    assert signing.explain("guess", push.body, push.headers).cause == "mismatch"
    tampered = push.body.replace(b"refs/heads/main", b"refs/heads/prod")
    result = signing.explain("s3cret", tampered, push.headers)
    assert result.cause == "mismatch"
    assert "another secret" in result.summary


def test_headers_are_read_whatever_their_case_and_secrets_never_shown() -> None:
    push = _push()
    lower = {k.lower(): v for k, v in push.headers.items()}
    assert signing.explain("s3cret", push.body, lower).ok
    for body in (push.body, b"x" + push.body):
        assert "s3cret" not in str(signing.explain("s3cret", body, push.headers))


def test_a_rotation_list_matches_any_of_its_secrets() -> None:
    push = _push()
    assert signing.explain(["new-one", "s3cret"], push.body, push.headers).ok


# --- Standard Webhooks, signed by the reference package ----------------------------------------


def test_standard_ok_with_the_reference_packages_signature() -> None:
    body = b'{"type":"image.pushed","data":{"tag":"v1"}}'
    result = signing.explain(SW_SECRET, body, _theirs(body))
    assert result.cause == "ok" and result.scheme == "standard"
    standardwebhooks.Webhook(SW_SECRET).verify(body, _theirs(body), json_parse=False)


def test_standard_no_signature() -> None:
    headers = _theirs(b"{}")
    del headers["webhook-signature"]
    assert signing.explain(SW_SECRET, b"{}", headers).cause == "no-signature"


@pytest.mark.parametrize(
    "change",
    [
        {"webhook-signature": "v1abc"},
        {"webhook-signature": "v1,not base64!"},
        {"webhook-timestamp": "yesterday"},
        {"webhook-id": ""},
    ],
)
def test_standard_malformed(change: dict[str, str]) -> None:
    headers = {**_theirs(b"{}"), **change}
    assert signing.explain(SW_SECRET, b"{}", headers).cause == "malformed"


def test_standard_malformed_hex_instead_of_base64() -> None:
    body = b"{}"
    headers = _theirs(body)
    import base64

    digest = base64.b64decode(headers["webhook-signature"][3:])
    headers["webhook-signature"] = "v1," + digest.hex()
    result = signing.explain(SW_SECRET, body, headers)
    assert result.cause == "malformed" and "hex instead of base64" in result.summary


def test_standard_wrong_algorithm_only_an_asymmetric_entry() -> None:
    headers = {**_theirs(b"{}"), "webhook-signature": "v1a,c2lnbmVkIHdpdGggZWQyNTUxOQ=="}
    result = signing.explain(SW_SECRET, b"{}", headers)
    assert result.cause == "wrong-algorithm" and "v1a" in result.summary


def test_standard_stale_timestamp_says_whether_the_signature_itself_matches() -> None:
    body = b'{"type":"image.pushed"}'
    old = int(time.time()) - 600
    headers = _theirs(body, at=old)
    with pytest.raises(standardwebhooks.WebhookVerificationError, match="too old"):
        standardwebhooks.Webhook(SW_SECRET).verify(body, headers, json_parse=False)
    result = signing.explain(SW_SECRET, body, headers)
    assert result.cause == "stale-timestamp"
    assert "s old" in result.summary and "signature itself matches" in result.summary
    future = signing.explain(SW_SECRET, body, _theirs(body, at=int(time.time()) + 900))
    assert future.cause == "stale-timestamp" and "in the future" in future.summary
    assert signing.explain(SW_SECRET, body, headers, now=old).ok


def test_standard_re_serialized() -> None:
    body = b'{"type":"image.pushed","data":{"tag":"v1"}}'
    headers = _theirs(body)
    spaced = json.dumps(json.loads(body)).encode()
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SW_SECRET).verify(spaced, headers, json_parse=False)
    result = signing.explain(SW_SECRET, spaced, headers)
    assert result.cause == "re-serialized" and result.signed_body == body


def test_standard_mismatch_renamed_id_and_wrong_secret() -> None:
    body = b'{"type":"image.pushed"}'
    headers = {**_theirs(body), "webhook-id": "msg_renamed"}
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(SW_SECRET).verify(body, headers, json_parse=False)
    assert signing.explain(SW_SECRET, body, headers).cause == "mismatch"
    other = signing.new_standard_secret(b"o" * 32)
    assert signing.explain(other, body, _theirs(body)).cause == "mismatch"


def test_every_cause_is_covered_by_a_test_here() -> None:
    source = open(__file__, encoding="utf-8").read()
    for cause in signing.CAUSES:
        assert f'"{cause}"' in source, cause
