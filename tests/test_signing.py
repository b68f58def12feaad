"""labkit.signing: known answers, a cross-check with the PyPI `standardwebhooks` package, properties."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime

import pytest
import standardwebhooks
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from labkit import SignatureError
from labkit.webhooks import signing

FAST = settings(
    max_examples=150, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow]
)

# --- known-answer vectors (wire-formats.md) ---------------------------------------------------

GH_SECRET = "It's a Secret to Everybody"
GH_BODY = b"Hello, World!"
GH_SIG = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"

SW_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SW_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SW_TS = 1614265330
SW_BODY = b'{"test": 2432232314}'
SW_SIG = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_github_known_answer() -> None:
    assert signing.github_signature_256(GH_BODY, GH_SECRET) == GH_SIG
    assert signing.github_signature_256(GH_BODY, GH_SECRET.encode()) == GH_SIG
    assert signing.verify_github(GH_BODY, GH_SECRET, GH_SIG) == "sha256"


def test_github_headers_carry_both_schemes() -> None:
    headers = signing.github_headers(GH_BODY, GH_SECRET)
    assert headers["X-Hub-Signature-256"] == GH_SIG
    sha1 = "sha1=" + hmac.new(GH_SECRET.encode(), GH_BODY, hashlib.sha1).hexdigest()
    assert headers["X-Hub-Signature"] == sha1
    # The legacy header alone is accepted (and reported as such) ...
    assert signing.verify_github(GH_BODY, GH_SECRET, None, sha1) == "sha1"
    # ... but a wrong sha256 is not rescued by a right sha1: sha256 wins when present.
    bad = "sha256=" + "0" * 64
    with pytest.raises(SignatureError):
        signing.verify_github(GH_BODY, GH_SECRET, bad, sha1)


def test_standard_known_answer() -> None:
    assert signing.standard_signature(SW_SECRET, SW_ID, SW_TS, SW_BODY) == SW_SIG
    signing.verify_standard(SW_SECRET, SW_ID, str(SW_TS), SW_SIG, SW_BODY, now=SW_TS)


def test_standard_known_answer_rejected_once_stale() -> None:
    with pytest.raises(SignatureError, match="old"):
        signing.verify_standard(SW_SECRET, SW_ID, str(SW_TS), SW_SIG, SW_BODY)  # real clock


def test_standard_key_decodes_whsec_and_keeps_plain_text() -> None:
    assert signing.standard_key(SW_SECRET) == base64.b64decode(SW_SECRET[len("whsec_") :])
    assert signing.standard_key("s3cret") == b"s3cret"
    assert signing.standard_key(b"\x00raw") == b"\x00raw"
    with pytest.raises(SignatureError):
        signing.standard_key("whsec_not*base64!")


def test_new_standard_secret_bounds() -> None:
    assert signing.new_standard_secret(b"x" * 24).startswith("whsec_")
    assert signing.new_standard_secret(b"x" * 64).startswith("whsec_")
    for size in (23, 65):
        with pytest.raises(ValueError):
            signing.new_standard_secret(b"x" * size)


# --- cross-check with the reference implementation (PyPI standardwebhooks) ----------------------


def test_standardwebhooks_package_agrees_on_the_known_answer() -> None:
    theirs = standardwebhooks.Webhook(SW_SECRET).sign(
        SW_ID, datetime.fromtimestamp(SW_TS, tz=UTC), SW_BODY.decode()
    )
    assert theirs == SW_SIG


secret_bytes = st.binary(min_size=24, max_size=64)
msg_ids = st.from_regex(r"\Amsg_[A-Za-z0-9]{1,30}\Z")
json_text = st.text(max_size=300)  # their verify() decodes the body as UTF-8 text


@FAST
@given(raw=secret_bytes, msg_id=msg_ids, body=json_text)
def test_our_signatures_verify_with_standardwebhooks(raw: bytes, msg_id: str, body: str) -> None:
    secret = signing.new_standard_secret(raw)
    now = int(time.time())
    headers = signing.standard_headers(secret, msg_id, now, body.encode())
    standardwebhooks.Webhook(secret).verify(body.encode(), headers, json_parse=False)


@FAST
@given(raw=secret_bytes, msg_id=msg_ids, body=json_text)
def test_standardwebhooks_signatures_verify_with_ours(raw: bytes, msg_id: str, body: str) -> None:
    secret = signing.new_standard_secret(raw)
    now = int(time.time())
    theirs = standardwebhooks.Webhook(secret).sign(
        msg_id, datetime.fromtimestamp(now, tz=UTC), body
    )
    signing.verify_standard(secret, msg_id, str(now), theirs, body.encode())


def test_standardwebhooks_rejects_what_we_reject() -> None:
    secret = signing.new_standard_secret(b"k" * 32)
    now = int(time.time())
    headers = signing.standard_headers(secret, "msg_1", now, b'{"a":1}')
    with pytest.raises(standardwebhooks.WebhookVerificationError):
        standardwebhooks.Webhook(secret).verify(b'{"a":2}', headers, json_parse=False)
    with pytest.raises(SignatureError):
        signing.verify_standard(secret, "msg_1", str(now), headers["webhook-signature"], b'{"a":2}')


def test_a_malformed_standard_signature_is_a_signatureerror_as_the_reference_refuses_it() -> None:
    """`v1abc`: the reference library refuses it (older releases with a bare ValueError,
    wire-formats.md; newer ones with their own error); labkit says SignatureError either way."""
    secret = signing.new_standard_secret(b"k" * 32)
    now = str(int(time.time()))
    headers = {"webhook-id": "msg_1", "webhook-timestamp": now, "webhook-signature": "v1abc"}
    with pytest.raises((ValueError, standardwebhooks.webhooks.WebhookVerificationError)):
        standardwebhooks.Webhook(secret).verify(b"{}", headers)
    with pytest.raises(SignatureError):
        signing.verify_standard(secret, "msg_1", now, "v1abc", b"{}")


# --- round trips and single-byte changes (hypothesis) ------------------------------------------

any_secret = st.one_of(st.text(min_size=1, max_size=64), st.binary(min_size=1, max_size=64))


def _flip(data: bytes, index: int, delta: int) -> bytes:
    i = index % len(data)
    return data[:i] + bytes([(data[i] + delta) % 256]) + data[i + 1 :]


@FAST
@given(body=st.binary(max_size=2048), secret=any_secret)
def test_github_round_trip(body: bytes, secret: str | bytes) -> None:
    assert (
        signing.verify_github(body, secret, signing.github_signature_256(body, secret)) == "sha256"
    )
    assert (
        signing.verify_github(body, secret, None, signing.github_signature_sha1(body, secret))
        == "sha1"
    )


@FAST
@given(
    body=st.binary(min_size=1, max_size=2048),
    secret=any_secret,
    index=st.integers(min_value=0),
    delta=st.integers(min_value=1, max_value=255),
)
def test_github_any_single_byte_change_fails(
    body: bytes, secret: str | bytes, index: int, delta: int
) -> None:
    signature = signing.github_signature_256(body, secret)
    with pytest.raises(SignatureError):
        signing.verify_github(_flip(body, index, delta), secret, signature)
    # ... and a change to the signature itself fails too.
    sig = signature.encode()
    hex_index = len("sha256=") + index % 64
    other = b"0123456789abcdef".replace(sig[hex_index : hex_index + 1], b"")[
        delta % 15 : delta % 15 + 1
    ]
    tampered = (sig[:hex_index] + other + sig[hex_index + 1 :]).decode()
    with pytest.raises(SignatureError):
        signing.verify_github(body, secret, tampered)


@FAST
@given(body=st.binary(max_size=2048), secret=any_secret, msg_id=msg_ids)
def test_standard_round_trip(body: bytes, secret: str | bytes, msg_id: str) -> None:
    assume(not (isinstance(secret, str) and secret.startswith("whsec_")))
    now = int(time.time())
    header = signing.standard_sign(secret, msg_id, now, body)
    signing.verify_standard(secret, msg_id, str(now), header, body)


@FAST
@given(
    body=st.binary(min_size=1, max_size=2048),
    raw=secret_bytes,
    msg_id=msg_ids,
    index=st.integers(min_value=0),
    delta=st.integers(min_value=1, max_value=255),
)
def test_standard_any_single_byte_change_fails(
    body: bytes, raw: bytes, msg_id: str, index: int, delta: int
) -> None:
    secret = signing.new_standard_secret(raw)
    now = int(time.time())
    header = signing.standard_sign(secret, msg_id, now, body)
    with pytest.raises(SignatureError):
        signing.verify_standard(secret, msg_id, str(now), header, _flip(body, index, delta))
    with pytest.raises(SignatureError):  # the id is signed too
        signing.verify_standard(secret, msg_id + "x", str(now), header, body)
    with pytest.raises(SignatureError):  # and so is the timestamp
        signing.verify_standard(secret, msg_id, str(now - 1), header, body)
    with pytest.raises(SignatureError):  # and another key does not match
        signing.verify_standard(
            signing.new_standard_secret(_flip(raw, index, delta)), msg_id, str(now), header, body
        )


# --- fuzzed input: rejected with SignatureError (never another error), and a valid signature
# among the noise still verifies ---------------------------------------------------------------

FUZZ_SECRET = "s3cret"
FUZZ_NOW = 1_700_000_000  # verify_standard(now=...): the same clock for every example
# A timestamp is mostly any text, but often a current one, so a fuzzed header gets past the
# timestamp check and reaches the signature list.
fuzz_timestamps = st.one_of(
    st.text(max_size=30),
    st.integers(min_value=-300, max_value=300).map(lambda d: str(FUZZ_NOW + d)),
)
# Well-formed entries that are not the signature: another version, or a v1 that does not match.
decoy_entries = st.from_regex(r"\A(v1|v1a|v2),[A-Za-z0-9+/]{1,60}={0,2}\Z")


@FAST
@given(header=st.text(max_size=200), timestamp=fuzz_timestamps, body=st.binary(max_size=64))
def test_verify_standard_rejects_fuzzed_signatures(
    header: str, timestamp: str, body: bytes
) -> None:
    """Any header text that is not the signature is refused, and only ever with SignatureError
    (a missing, malformed or stale value included)."""
    with pytest.raises(SignatureError):
        signing.verify_standard(FUZZ_SECRET, "msg_1", timestamp, header, body, now=FUZZ_NOW)


@FAST
@given(
    before=st.lists(decoy_entries, max_size=3),
    after=st.lists(decoy_entries, max_size=3),
    offset=st.integers(min_value=-300, max_value=300),
    body=st.binary(max_size=64),
)
def test_verify_standard_accepts_the_signature_among_decoys(
    before: list[str], after: list[str], offset: int, body: bytes
) -> None:
    """The accepted path of the fuzz above: the real ``v1`` entry anywhere in a list of
    well-formed entries that do not match verifies; without it the same list is refused."""
    ts = FUZZ_NOW + offset  # within the default tolerance of five minutes
    valid = signing.standard_signature(FUZZ_SECRET, "msg_1", ts, body)
    assume(valid not in before + after)
    header = " ".join([*before, valid, *after])
    assert (
        signing.verify_standard(FUZZ_SECRET, "msg_1", str(ts), header, body, now=FUZZ_NOW) is None
    )
    if before or after:
        with pytest.raises(SignatureError, match="No webhook-signature entry matches"):
            signing.verify_standard(
                FUZZ_SECRET, "msg_1", str(ts), " ".join([*before, *after]), body, now=FUZZ_NOW
            )


@FAST
@given(
    sig256=st.one_of(st.none(), st.text(max_size=100)),
    sig1=st.one_of(st.none(), st.text(max_size=100)),
    body=st.binary(max_size=64),
)
def test_verify_github_rejects_fuzzed_signatures(
    sig256: str | None, sig1: str | None, body: bytes
) -> None:
    """No header, an empty one or any text that is not the HMAC: refused with SignatureError."""
    with pytest.raises(SignatureError):
        signing.verify_github(body, FUZZ_SECRET, sig256, sig1)


@FAST
@given(
    sig1=st.one_of(st.none(), st.text(max_size=100)),
    body=st.binary(max_size=64),
)
def test_verify_github_accepts_a_valid_sha256_whatever_the_legacy_header_says(
    sig1: str | None, body: bytes
) -> None:
    signature = signing.github_signature_256(body, FUZZ_SECRET)
    assert signing.verify_github(body, FUZZ_SECRET, signature, sig1) == "sha256"


@FAST
@given(
    sig256=st.one_of(st.none(), st.just("")),
    body=st.binary(max_size=64),
    sig256_bad=st.text(min_size=1, max_size=100),
)
def test_verify_github_uses_sha1_only_without_a_sha256_header(
    sig256: str | None, body: bytes, sig256_bad: str
) -> None:
    """The legacy header verifies when sha256 is absent, but never rescues a wrong sha256."""
    legacy = signing.github_signature_sha1(body, FUZZ_SECRET)
    assert signing.verify_github(body, FUZZ_SECRET, sig256, legacy) == "sha1"
    with pytest.raises(SignatureError, match="X-Hub-Signature-256"):
        signing.verify_github(body, FUZZ_SECRET, sig256_bad, legacy)


# --- rotation -----------------------------------------------------------------------------------


def test_standard_rotation_accepts_any_current_secret() -> None:
    old = signing.new_standard_secret(b"o" * 32)
    new = signing.new_standard_secret(b"n" * 32)
    stranger = signing.new_standard_secret(b"s" * 32)
    now = int(time.time())
    body = b'{"type":"x"}'
    by_old = signing.standard_sign(old, "msg_1", now, body)
    by_new = signing.standard_sign(new, "msg_1", now, body)
    by_both = signing.standard_sign([new, old], "msg_1", now, body)
    assert len(by_both.split(" ")) == 2
    for header in (by_old, by_new, by_both):
        signing.verify_standard([new, old], "msg_1", str(now), header, body)
    # A sender mid-rotation lists several entries: one match is enough.
    signing.verify_standard(old, "msg_1", str(now), by_both, body)
    signing.verify_standard(new, "msg_1", str(now), by_both, body)
    # Unknown versions (v1a is ed25519) are skipped, not fatal.
    signing.verify_standard(new, "msg_1", str(now), "v1a,AAAA " + by_new, body)
    with pytest.raises(SignatureError):
        signing.verify_standard([stranger], "msg_1", str(now), by_both, body)
    with pytest.raises(SignatureError):
        signing.verify_standard([new], "msg_1", str(now), by_old, body)


def test_github_rotation_is_one_verify_per_secret() -> None:
    body = b'{"zen":"x"}'
    sig = signing.github_signature_256(body, "old")
    assert signing.verify_github(body, "old", sig) == "sha256"
    with pytest.raises(SignatureError):
        signing.verify_github(body, "new", sig)


# --- timestamps ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "offset, ok",
    [
        (0, True),
        (-300, True),
        (300, True),
        (-301, False),
        (301, False),
        (-86_400, False),
        (86_400, False),
    ],
)
def test_standard_timestamp_tolerance(offset: int, ok: bool) -> None:
    now = 1_700_000_000
    ts = now + offset
    header = signing.standard_sign("s3cret", "msg_1", ts, b"{}")
    if ok:
        signing.verify_standard("s3cret", "msg_1", str(ts), header, b"{}", now=now)
    else:
        with pytest.raises(SignatureError, match="old" if offset < 0 else "future"):
            signing.verify_standard("s3cret", "msg_1", str(ts), header, b"{}", now=now)


def test_standard_custom_tolerance() -> None:
    now = 1_700_000_000
    header = signing.standard_sign("s3cret", "msg_1", now - 20, b"{}")
    signing.verify_standard("s3cret", "msg_1", str(now - 20), header, b"{}", now=now, tolerance=30)
    with pytest.raises(SignatureError):
        signing.verify_standard(
            "s3cret", "msg_1", str(now - 20), header, b"{}", now=now, tolerance=10
        )


# --- malformed input: always SignatureError, never a bare ValueError ------------------------------

NOW = int(time.time())
GOOD = signing.standard_sign("s3cret", "msg_1", NOW, b"{}")


@pytest.mark.parametrize(
    "msg_id, timestamp, signature",
    [
        ("msg_1", str(NOW), "v1abc"),
        ("msg_1", str(NOW), "v1,"),
        ("msg_1", str(NOW), ",abc"),
        ("msg_1", str(NOW), "v1"),
        ("msg_1", str(NOW), " "),
        ("msg_1", str(NOW), GOOD + " v1abc"),
        ("msg_1", str(NOW), "v1,not-base64!!"),
        ("msg_1", str(NOW), "v2," + GOOD[3:]),
        ("msg_1", str(NOW), GOOD[:-5]),
        ("msg_1", "soon", GOOD),
        ("msg_1", "1.5e9", GOOD),
        ("msg_1", "", GOOD),
        ("msg_1", "9" * 5000, GOOD),
        ("", str(NOW), GOOD),
        (None, str(NOW), GOOD),
        ("msg_1", None, GOOD),
        ("msg_1", str(NOW), None),
        ("msg_1", str(NOW), ""),
    ],
)
def test_malformed_standard_input_raises_signatureerror(
    msg_id: str | None, timestamp: str | None, signature: str | None
) -> None:
    with pytest.raises(SignatureError):
        signing.verify_standard("s3cret", msg_id, timestamp, signature, b"{}")


@pytest.mark.parametrize(
    "sig256, sig1",
    [
        (None, None),
        ("", None),
        ("757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17", None),  # no prefix
        ("sha1=" + "0" * 40, None),
        ("sha256=", None),
        (GH_SIG[:30], None),
        (GH_SIG.upper(), None),
        ("sha256=" + "z" * 64, None),
        ("sha256=\u00e9\u00e9", None),
        (None, "sha256=" + "0" * 64),
        (None, "sha1="),
    ],
)
def test_malformed_github_signatures_raise_signatureerror(
    sig256: str | None, sig1: str | None
) -> None:
    with pytest.raises(SignatureError):
        signing.verify_github(GH_BODY, GH_SECRET, sig256, sig1)
