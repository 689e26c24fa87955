"""What /in/{slug} records of a request: the sender's address (X-Forwarded-For only from
trusted proxies), the headers, whether a body can travel as text; and the endpoint payloads."""

from __future__ import annotations

import pytest

from runlater.domain.inbound import (
    client_ip,
    draft_endpoint,
    new_slug,
    parse_trusted_proxies,
    plan_endpoint_edit,
    received_headers,
)
from runlater.domain.tasks import is_text
from runlater.errors import InvalidInput

TRUSTED = parse_trusted_proxies(["10.0.0.0/8", "2001:db8::1"])


def test_the_peer_unless_it_is_a_trusted_proxy() -> None:
    chain = ["198.51.100.1, 203.0.113.9", "10.0.0.7"]
    assert client_ip("192.0.2.1", chain, TRUSTED) == "192.0.2.1"
    assert client_ip("10.1.1.1", chain, TRUSTED) == "203.0.113.9"
    assert client_ip("10.1.1.1", [], TRUSTED) == "10.1.1.1"
    assert client_ip("10.1.1.1", ["10.0.0.2, 10.0.0.3"], TRUSTED) == "10.0.0.2"
    assert client_ip("10.1.1.1", ["garbage, 203.0.113.5"], TRUSTED) == "203.0.113.5"
    assert client_ip("2001:db8::1", ["[2001:db8::5]:443"], TRUSTED) == "2001:db8::5"
    assert client_ip("10.1.1.1", ["203.0.113.5"], ()) == "10.1.1.1"
    assert client_ip(None, ["203.0.113.5"], TRUSTED) is None


def test_headers_are_kept_in_lower_case_with_repeats_joined() -> None:
    pairs = [("X-A", "1"), ("x-a", "2"), ("Content-Type", "text/plain"), ("X-N", "a\x00b")]
    assert received_headers(pairs) == {
        "x-a": "1, 2",
        "content-type": "text/plain",
        "x-n": "a\ufffdb",
    }


def test_text_bodies() -> None:
    assert is_text("Jürgen".encode())
    assert is_text(b"")
    assert not is_text(b"\xff\xfe")
    assert not is_text(b"a\x00b")


def test_slugs_are_long_and_unguessable() -> None:
    slugs = {new_slug() for _ in range(100)}
    assert len(slugs) == 100 and all(len(s) == 24 and s.isalnum() for s in slugs)


def test_a_draft_and_an_edit() -> None:
    row = draft_endpoint(
        {"endpoint": {"name": "x", "verify": {"scheme": "hmac", "secret": "s", "header": "X-S"}}}
    )
    assert row["verify_encoding"] == "hex" and row["verify_tolerance_s"] == 300
    assert row["forward_urls"] == [] and row["retry_attempts"] == 5
    edited = plan_endpoint_edit({"verify": None, "use_queue": True})(row)
    assert edited["verify_scheme"] is None and edited["use_queue"] is True
    assert edited["name"] == "x" and edited["slug"] == row["slug"]
    with pytest.raises(InvalidInput) as refused:
        draft_endpoint({"name": "x", "verify": {"scheme": "standard_webhooks", "secret": "%%"}})
    assert set(refused.value.details or {}) == {"verify"}
    with pytest.raises(InvalidInput):
        plan_endpoint_edit({"name": None})
