"""Rate limits of sign-in and sign-up: per e-mail address and per client address.

A sign-in link is a mail: without a limit, anyone could flood an inbox from our server or
probe addresses at speed. Token buckets as the API's (``web/ratelimit.py``), per node: an
address may ask 3 times in a burst and then once every 20 s; a client address 10 times, then
10 a minute.
"""

from __future__ import annotations

from dataclasses import dataclass

from quart import request

from runlater.web.ratelimit import Seconds, TokenBuckets, client_key, retry_after

PER_EMAIL_PER_MINUTE = 3
PER_CLIENT_PER_MINUTE = 10


@dataclass
class SignInLimits:
    per_email: TokenBuckets
    per_client: TokenBuckets

    @classmethod
    def create(cls, now: Seconds) -> SignInLimits:
        return cls(
            TokenBuckets(PER_EMAIL_PER_MINUTE, now), TokenBuckets(PER_CLIENT_PER_MINUTE, now)
        )

    def wait_s(self, email: str) -> str | None:
        """None when this request may go on, else the Retry-After value. Both buckets are
        charged, so a client spreading over addresses is limited too."""
        client = self.per_client.take(client_key(request.remote_addr or ""))
        address = self.per_email.take(email.strip().lower()[:254])
        wait = max(client, address)
        return None if wait == 0.0 else retry_after(wait)
