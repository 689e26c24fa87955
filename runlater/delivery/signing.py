"""Signatures on everything Runlater sends (deliveries and callbacks).

Two schemes, both from the organization's secret ``whsec_<base64 of 32 bytes>``:
- ``X-Runlater-Signature: sha256=<hex HMAC-SHA256 of the raw body>``, key = the whole secret
  string (the original Runlater scheme);
- Standard Webhooks: ``webhook-id``, ``webhook-timestamp`` and
  ``webhook-signature: v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">``, key = the
  base64-decoded part of the secret (verifiable with the ``standardwebhooks`` library).
While a secret is being rotated, each header carries one signature per secret, space
separated, the new one first, so receivers can switch keys at their own pace.

Tasks made through the QStash-compatible API are signed a third way as well:
``Upstash-Signature``, an HS256 JWT with the organization's current QStash signing key.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from functools import lru_cache

import jwt

PREFIX = "whsec_"


@lru_cache(maxsize=1024)
def _standard_key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix(PREFIX))


def runlater_signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("ascii"), body, hashlib.sha256).hexdigest()


def standard_signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_standard_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode("ascii")


def signature_headers(
    secrets: Sequence[str], msg_id: str, timestamp: int, body: bytes
) -> dict[str, str]:
    """Headers signing ``body``; ``secrets`` newest first (one, or two during rotation)."""
    if not secrets:
        return {"webhook-id": msg_id, "webhook-timestamp": str(timestamp)}
    return {
        "X-Runlater-Signature": " ".join(runlater_signature(s, body) for s in secrets),
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(
            standard_signature(s, msg_id, timestamp, body) for s in secrets
        ),
    }


# How long an Upstash-Signature token is valid after it was made (QStash's own: 5 minutes).
UPSTASH_VALIDITY_S = 300


def upstash_signature(key: str, url: str, body: bytes, now: int) -> str:
    """``Upstash-Signature`` of a delivery to ``url``: an HS256 JWT as QStash signs them
    (``iss`` "Upstash", ``sub`` the URL, ``iat``/``nbf`` now, ``exp`` +5 min, a unique ``jti``,
    ``body`` the unpadded base64url SHA-256 of the body; no ``aud``, which the qstash SDK's
    ``Receiver`` refuses)."""
    digest = base64.urlsafe_b64encode(hashlib.sha256(body).digest()).rstrip(b"=").decode("ascii")
    claims = {
        "iss": "Upstash",
        "sub": url,
        "iat": now,
        "nbf": now,
        "exp": now + UPSTASH_VALIDITY_S,
        "jti": "jwt_" + secrets.token_hex(16),
        "body": digest,
    }
    return jwt.encode(claims, key, algorithm="HS256")


# How far a webhook-timestamp may be from the receiver's clock (Standard Webhooks' default).
TOLERANCE_S = 300


def verify_signatures(
    secret: str, headers: dict[str, str], body: bytes, now: int, tolerance_s: int = TOLERANCE_S
) -> dict[str, str]:
    """Check each scheme a request carries against ``secret``: for ``webhook-signature`` and
    ``X-Runlater-Signature``, "valid", or why not. ``headers`` keys in lower case."""
    found: dict[str, str] = {}
    standard = headers.get("webhook-signature")
    if standard is not None:
        msg_id = headers.get("webhook-id", "")
        try:
            timestamp = int(headers.get("webhook-timestamp", ""))
        except ValueError:
            found["webhook-signature"] = "invalid: webhook-timestamp is not a number"
        else:
            expected = standard_signature(secret, msg_id, timestamp, body)
            if not any(hmac.compare_digest(expected, s) for s in standard.split()):
                found["webhook-signature"] = "invalid: no signature matches this secret"
            elif abs(now - timestamp) > tolerance_s:
                found["webhook-signature"] = (
                    f"invalid: webhook-timestamp is {now - timestamp} s from now "
                    f"(at most {tolerance_s} s allowed)"
                )
            else:
                found["webhook-signature"] = "valid"
    ours = headers.get("x-runlater-signature")
    if ours is not None:
        expected = runlater_signature(secret, body)
        ok = any(hmac.compare_digest(expected, s) for s in ours.split())
        found["x-runlater-signature"] = "valid" if ok else "invalid: no signature matches"
    return found
