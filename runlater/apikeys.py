"""API keys: ``pk_live_<24>.sk_live_<32>``; only the public part and a SHA-256 of the secret
part are stored, so a database leak does not leak working keys."""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import string
from dataclasses import dataclass

_ALPHABET = string.ascii_letters + string.digits
_KEY = re.compile(r"^(pk_live_[A-Za-z0-9]{24})\.(sk_live_[A-Za-z0-9]{32})$")


@dataclass(frozen=True, slots=True)
class NewApiKey:
    full: str  # shown once
    key_id: str
    key_hash: str


def _random(n: int) -> str:
    return "".join(secrets.choice(_ALPHABET) for _ in range(n))


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def generate() -> NewApiKey:
    key_id, secret = f"pk_live_{_random(24)}", f"sk_live_{_random(32)}"
    return NewApiKey(f"{key_id}.{secret}", key_id, hash_secret(secret))


def split(token: str) -> tuple[str, str] | None:
    """(public id, secret) of a well-formed key, else None."""
    match = _KEY.match(token)
    return (match[1], match[2]) if match else None


def secret_matches(secret: str, key_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(secret), key_hash)


def new_webhook_secret() -> str:
    """The org's signing secret: ``whsec_`` + base64 of 32 random bytes (Standard Webhooks)."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")
