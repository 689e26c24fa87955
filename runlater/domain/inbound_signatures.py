"""Checking an inbound request's signature, as its sender made it (no I/O, no clock of its own).

Schemes:
- ``stripe``: ``Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=...]``, each ``v1`` an
  HMAC-SHA256 of ``"{t}.{body}"`` keyed by the endpoint secret's text; ``t`` within the tolerance.
- ``github``: ``X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>``, key the secret's text.
- ``standard_webhooks``: ``webhook-id``, ``webhook-timestamp``, ``webhook-signature:
  v1,<base64>`` (``runlater.delivery.signing.verify_signatures``), key the base64 part of
  ``whsec_...``; the timestamp within the tolerance.
- ``hmac``: a header named by the endpoint holding the HMAC-SHA256 of the body, hex or base64
  (an optional ``sha256=`` prefix is accepted), key the secret's text.

``verify`` returns None when the request is signed right, else the reason (a sentence, stored
with the rejected event).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

from runlater.delivery.signing import verify_signatures


@dataclass(frozen=True, slots=True)
class Verification:
    """An endpoint's signature settings."""

    scheme: str
    secret: str
    header: str | None = None
    encoding: str | None = None
    tolerance_s: int = 300


def _digest(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).digest()


def _within(now: int, timestamp: int, tolerance_s: int, what: str) -> str | None:
    if abs(now - timestamp) > tolerance_s:
        return (
            f"{what} is {now - timestamp} s from the receiver's clock "
            f"(at most {tolerance_s} s allowed)"
        )
    return None


def _stripe(v: Verification, headers: Mapping[str, str], body: bytes, now: int) -> str | None:
    raw = headers.get("stripe-signature")
    if raw is None:
        return "missing Stripe-Signature header"
    timestamp: int | None = None
    signatures: list[str] = []
    for item in raw.split(","):
        key, _, value = item.strip().partition("=")
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return "Stripe-Signature has a timestamp that is not a number"
        elif key == "v1":
            signatures.append(value.strip().lower())
    if timestamp is None or not signatures:
        return "Stripe-Signature has no t=<timestamp> or no v1=<signature>"
    expected = _digest(v.secret, f"{timestamp}.".encode() + body).hex()
    if not any(hmac.compare_digest(expected, s) for s in signatures):
        return "Stripe-Signature: no v1 signature matches the secret"
    return _within(now, timestamp, v.tolerance_s, "the Stripe-Signature timestamp")


def _github(v: Verification, headers: Mapping[str, str], body: bytes) -> str | None:
    raw = headers.get("x-hub-signature-256")
    if raw is None:
        return "missing X-Hub-Signature-256 header"
    expected = "sha256=" + _digest(v.secret, body).hex()
    if not hmac.compare_digest(expected, raw.strip().lower()):
        return "X-Hub-Signature-256 does not match the secret"
    return None


def _standard(v: Verification, headers: Mapping[str, str], body: bytes, now: int) -> str | None:
    if "webhook-signature" not in headers:
        return "missing webhook-signature header"
    if "webhook-id" not in headers or "webhook-timestamp" not in headers:
        return "missing webhook-id or webhook-timestamp header"
    found = verify_signatures(v.secret, dict(headers), body, now, v.tolerance_s)
    verdict = found.get("webhook-signature", "invalid")
    if verdict == "valid":
        return None
    return "webhook-signature " + verdict


def _hmac(v: Verification, headers: Mapping[str, str], body: bytes) -> str | None:
    name = (v.header or "").lower()
    raw = headers.get(name)
    if raw is None:
        return f"missing {v.header} header"
    given = raw.strip().removeprefix("sha256=")
    digest = _digest(v.secret, body)
    if v.encoding == "base64":
        try:
            sent = base64.b64decode(given, validate=True)
        except (binascii.Error, ValueError):
            return f"{v.header} is not base64"
    else:
        try:
            sent = bytes.fromhex(given)
        except ValueError:
            return f"{v.header} is not hex"
    if not hmac.compare_digest(digest, sent):
        return f"{v.header} does not match the secret"
    return None


def verify(v: Verification, headers: Mapping[str, str], body: bytes, now: int) -> str | None:
    """None when ``body`` with ``headers`` (names in lower case) is signed right at ``now``
    (unix seconds), else why not."""
    if v.scheme == "stripe":
        return _stripe(v, headers, body, now)
    if v.scheme == "github":
        return _github(v, headers, body)
    if v.scheme == "standard_webhooks":
        return _standard(v, headers, body, now)
    if v.scheme == "hmac":
        return _hmac(v, headers, body)
    raise ValueError(f"unknown signature scheme {v.scheme!r}")
