"""``runlater receive``: prints what arrives, checks both signature schemes, answers --status."""

from __future__ import annotations

import io
import time
from functools import partial

import httpx
import pytest
import trio
from standardwebhooks import Webhook

from runlater.apikeys import new_webhook_secret
from runlater.delivery.signing import signature_headers, verify_signatures
from runlater.receive import Receiver, check_secret, receive

SECRET = new_webhook_secret()
BODY = b'{"order": 42}'


def signed(secret: str, *, at: int | None = None) -> dict[str, str]:
    return signature_headers([secret], "msg_1", at or int(time.time()), BODY)


def test_signatures_valid_invalid_and_stale() -> None:
    now = int(time.time())
    good = {k.lower(): v for k, v in signed(SECRET, at=now).items()}
    Webhook(SECRET).verify(BODY, good)  # the reference library agrees the request is signed
    assert verify_signatures(SECRET, good, BODY, now) == {
        "webhook-signature": "valid",
        "x-runlater-signature": "valid",
    }
    other = verify_signatures(new_webhook_secret(), good, BODY, now)
    assert all(v.startswith("invalid: no signature matches") for v in other.values())
    assert verify_signatures(SECRET, good, b"tampered", now)["x-runlater-signature"] != "valid"
    stale = verify_signatures(SECRET, good, BODY, now + 301)
    assert stale["webhook-signature"].startswith("invalid: webhook-timestamp is 301 s from now")


def test_a_secret_must_look_like_one() -> None:
    assert check_secret(SECRET) == SECRET and check_secret(None) is None
    with pytest.raises(ValueError, match="whsec_"):
        check_secret("sk_live_nope")


@pytest.mark.parametrize(
    ("secret", "verdict"), [(SECRET, "valid"), (None, "not checked")], ids=["secret", "no-secret"]
)
async def test_receive_prints_the_request_and_answers_the_status(
    secret: str | None, verdict: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    async with trio.open_nursery() as nursery:
        url = await nursery.start(partial(receive, "127.0.0.1", 0, secret=secret, status=418))
        async with httpx.AsyncClient() as http:
            reply = await http.post(
                f"{url}/hook?x=1",
                content=BODY,
                headers={**signed(SECRET), "Content-Type": "application/json"},
            )
        nursery.cancel_scope.cancel()
    assert reply.status_code == 418
    printed = out.getvalue()
    assert f"receiving on {url} (answers 418)" in printed
    assert "--- POST /hook?x=1" in printed
    assert "content-type: application/json" in printed and "webhook-id: msg_1" in printed
    assert '\n{"order": 42}\n' in printed
    assert f"signatures: {'webhook-signature valid' if secret else 'not checked'}" in printed
    assert verdict in printed


def test_a_request_without_signatures_says_so() -> None:
    receiver = Receiver(secret=SECRET, status=200, out=io.StringIO())
    assert receiver.signature_line({}, b"") == "signatures: none in this request"
