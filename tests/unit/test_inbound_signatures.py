"""The inbound signature checks (runlater/domain/inbound_signatures.py) against vectors made
the senders' way: GitHub's documented example, Stripe's scheme, and the ``standardwebhooks``
library's own signer."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from runlater.domain.inbound_signatures import Verification, verify

NOW = 1_767_348_000


def stripe_header(secret: str, timestamp: int, body: bytes) -> str:
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def test_github_documented_example() -> None:
    check = Verification("github", "It's a Secret to Everybody")
    header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
    assert verify(check, {"x-hub-signature-256": header}, b"Hello, World!", NOW) is None
    assert verify(check, {"x-hub-signature-256": header}, b"Hello, World?", NOW) == (
        "X-Hub-Signature-256 does not match the secret"
    )
    assert verify(check, {}, b"Hello, World!", NOW) == "missing X-Hub-Signature-256 header"


def test_stripe_right_wrong_and_out_of_tolerance() -> None:
    secret = "whsec_1234567890abcdef"
    check = Verification("stripe", secret, tolerance_s=300)
    body = b'{"id":"evt_1","object":"event"}'
    # A Stripe-Signature with a v0 and two v1 entries (a secret being rolled): one v1 matches.
    good = stripe_header(secret, NOW, body)
    rolled = f"{good},v1={'0' * 64},v0=abc"
    assert verify(check, {"stripe-signature": good}, body, NOW) is None
    assert verify(check, {"stripe-signature": rolled}, body, NOW + 300) is None
    late = verify(check, {"stripe-signature": good}, body, NOW + 301)
    assert late is not None and "at most 300 s" in late
    early = verify(check, {"stripe-signature": good}, body, NOW - 301)
    assert early is not None and "at most 300 s" in early
    wrong = stripe_header("whsec_other", NOW, body)
    assert "no v1 signature" in (verify(check, {"stripe-signature": wrong}, body, NOW) or "")
    assert "no t=" in (verify(check, {"stripe-signature": "v1=abc"}, body, NOW) or "")
    assert verify(check, {}, body, NOW) == "missing Stripe-Signature header"


def test_stripe_known_vector() -> None:
    # HMAC-SHA256 of "1614556828.{body}" keyed by the secret's text, computed independently.
    secret, body = "whsec_test_secret", b'{"hello":"world"}'
    digest = hmac.new(b"whsec_test_secret", b'1614556828.{"hello":"world"}', hashlib.sha256)
    header = f"t=1614556828,v1={digest.hexdigest()}"
    check = Verification("stripe", secret)
    assert verify(check, {"stripe-signature": header}, body, 1614556828) is None


def test_standard_webhooks_as_the_library_signs() -> None:
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    body = b'{"type":"user.created"}'
    signed_at = datetime.fromtimestamp(NOW, UTC)
    signature = Webhook(secret).sign("msg_2Kx", signed_at, body.decode())
    headers = {
        "webhook-id": "msg_2Kx",
        "webhook-timestamp": str(NOW),
        "webhook-signature": signature,
    }
    check = Verification("standard_webhooks", secret, tolerance_s=300)
    assert verify(check, headers, body, NOW) is None
    assert verify(check, headers, body + b" ", NOW) is not None
    stale = verify(check, headers, body, NOW + 301)
    assert stale is not None and "at most 300 s" in stale
    assert verify(check, {"webhook-signature": signature}, body, NOW) == (
        "missing webhook-id or webhook-timestamp header"
    )


@pytest.mark.parametrize("encoding", ["hex", "base64"])
def test_a_shared_secret_hmac_header(encoding: str) -> None:
    body = b"payload"
    digest = hmac.new(b"shared", body, hashlib.sha256).digest()
    written = digest.hex() if encoding == "hex" else base64.b64encode(digest).decode()
    check = Verification("hmac", "shared", header="X-Signature", encoding=encoding)
    assert verify(check, {"x-signature": written}, body, NOW) is None
    assert verify(check, {"x-signature": "sha256=" + written}, body, NOW) is None
    assert verify(check, {"x-signature": written}, b"other", NOW) == (
        "X-Signature does not match the secret"
    )
    assert verify(check, {"x-signature": "!!"}, body, NOW) == f"X-Signature is not {encoding}"
    assert verify(check, {}, body, NOW) == "missing X-Signature header"
