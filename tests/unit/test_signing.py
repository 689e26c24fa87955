"""Signatures verify with the standardwebhooks library and with a plain HMAC check."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from runlater.apikeys import new_webhook_secret
from runlater.delivery.signing import signature_headers

BODY = json.dumps({"hello": "wörld", "n": 1}).encode()
MSG_ID = "01a22491-d8a4-7553-881b-ba0584c0a3a9"


def _headers(*secrets: str, ts: int | None = None) -> dict[str, str]:
    import time

    return signature_headers(list(secrets), MSG_ID, ts or int(time.time()), BODY)


def test_standard_webhooks_library_verifies() -> None:
    secret = new_webhook_secret()
    headers = _headers(secret)
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)


def test_plain_hmac_of_the_raw_body_with_the_secret_string() -> None:
    secret = new_webhook_secret()
    expected = hmac.new(secret.encode(), BODY, hashlib.sha256).hexdigest()
    assert _headers(secret)["X-Runlater-Signature"] == f"sha256={expected}"


def test_standard_signature_by_hand() -> None:
    secret = new_webhook_secret()
    headers = _headers(secret, ts=1_700_000_000)
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{MSG_ID}.1700000000.".encode() + BODY
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    assert headers["webhook-signature"] == f"v1,{expected}"
    assert headers["webhook-id"] == MSG_ID and headers["webhook-timestamp"] == "1700000000"


def test_tampered_body_or_wrong_secret_fails() -> None:
    secret = new_webhook_secret()
    headers = _headers(secret)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(BODY + b" ", headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(new_webhook_secret()).verify(BODY, headers)


def test_during_rotation_both_secrets_verify_and_the_new_one_comes_first() -> None:
    old, new = new_webhook_secret(), new_webhook_secret()
    headers = _headers(new, old)
    assert Webhook(new).verify(BODY, headers)
    assert Webhook(old).verify(BODY, headers)
    ours = headers["X-Runlater-Signature"].split(" ")
    assert ours == [
        "sha256=" + hmac.new(s.encode(), BODY, hashlib.sha256).hexdigest() for s in (new, old)
    ]
    assert len(headers["webhook-signature"].split(" ")) == 2
