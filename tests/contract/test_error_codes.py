"""Every error code of docs/api.md's table, produced through the real app, in the one error
shape, and documented by the spec on the route that produced it.

Then the rules by which the spec documents codes on every route that can produce them: auth,
rate limit and availability codes on every API route; ``not_found`` wherever the path names a
resource; the ``Idempotency-Key`` and size codes on every mutating route; ``invalid_json`` and
``validation_error`` wherever a body is read; ``invalid_delay``/``invalid_run_at``/
``url_not_allowed`` wherever a body may hold a ``delay``/``run_at``/URL; ``limit_exceeded``
wherever a call creates work.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from quart_trio import QuartTrio

from runlater.clock import ManualClock
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.contract.conftest import SETTINGS, Client, Reply
from tests.contract.server import EveryNameResolver
from tests.contract.spec_tools import (
    CONTRACT_ERROR_CODES,
    api_operations,
    error_codes,
    resolve,
)
from tests.helpers.factories import make_org
from tests.helpers.keys import key_in_progress

TARGET = "http://127.0.0.1:9999/never"  # a task that only needs to exist
UNREACHABLE_DSN = "postgresql://runlater:x@127.0.0.1:1/nope"
TASKS = "/api/v1/tasks"


def assert_error(reply: Reply, status: int, code: str) -> dict[str, Any]:
    assert reply.status == status, (reply.status, reply.body)
    assert reply.headers["Content-Type"] == "application/json"
    assert set(reply.body) == {"error"} and set(reply.body["error"]) <= {
        "code",
        "message",
        "details",
    }, reply.body
    error = reply.body["error"]
    assert error["code"] == code, error
    assert isinstance(error["message"], str) and error["message"], error
    assert "Traceback" not in reply.text
    return error


@pytest.fixture
async def dead_app(aio_loop: object, clock: ManualClock) -> AsyncIterator[QuartTrio]:
    """The app with a database nobody answers for (port 1)."""
    store = await Store.open(UNREACHABLE_DSN)
    try:
        yield create_app(store, SETTINGS, clock, EveryNameResolver())
    finally:
        await store.close()


async def produce(code: str, alice: Client, store: Store, clock: ManualClock) -> Reply:
    """Make the app answer ``code`` (each branch is one way a client runs into it)."""
    app = alice.app
    if code == "bad_request":
        reply = await alice.call(
            "POST", TASKS, json_body={"url": TARGET}, headers={"Idempotency-Key": "k" * 256}
        )
    elif code == "invalid_json":
        reply = await alice.call("POST", TASKS, data=b'{"url": ')
    elif code == "invalid_delay":
        reply = await alice.call("POST", TASKS, json_body={"url": TARGET, "delay": "soon"})
    elif code == "invalid_run_at":
        reply = await alice.call("POST", TASKS, json_body={"url": TARGET, "run_at": "tomorrow"})
    elif code == "unauthorized":
        reply = await Client(app, "pk_live_nope.sk_live_nope").call("GET", TASKS)
        assert reply.headers["WWW-Authenticate"] == "Bearer"
    elif code == "not_found":
        reply = await alice.call("GET", f"{TASKS}/{uuid.uuid4()}")
        malformed = await alice.call("GET", f"{TASKS}/not-a-uuid")
        assert_error(malformed, 404, "not_found")
    elif code == "idempotency_conflict":
        body = json.dumps({"url": TARGET}).encode()
        assert alice.org_id is not None
        async with key_in_progress(store, alice.org_id, "held", "POST", TASKS, body):
            reply = await alice.call("POST", TASKS, data=body, headers={"Idempotency-Key": "held"})
    elif code == "payload_too_large":
        huge = json.dumps({"url": TARGET, "body": "x" * (256 * 1024)}).encode()
        reply = await alice.call("POST", TASKS, data=huge)
    elif code == "validation_error":
        reply = await alice.call("POST", TASKS, json_body={"url": TARGET, "timeout_ms": 5})
        assert set(reply.body["error"]["details"]) == {"timeout_ms"}, reply.body
    elif code == "limit_exceeded":
        _, free_key = await make_org(store, "Free Corp", tier="free")
        reply = await Client(app, free_key).call(
            "POST", TASKS, json_body={"url": TARGET, "cron": "*/5 * * * *"}
        )
    elif code == "url_not_allowed":
        metadata = "http://169.254.169.254/latest/meta-data"
        reply = await alice.call("POST", TASKS, json_body={"url": metadata})
        assert set(reply.body["error"]["details"]) == {"url"}, reply.body
    elif code == "idempotency_mismatch":
        headers = {"Idempotency-Key": "once"}
        first = await alice.call("POST", TASKS, json_body={"url": TARGET}, headers=headers)
        assert first.status == 202, first.body
        reply = await alice.call(
            "POST", TASKS, json_body={"url": TARGET, "delay": 60}, headers=headers
        )
    elif code == "rate_limited":
        limited = create_app(
            store, SETTINGS.replace(rate_limit_per_key=1), clock, EveryNameResolver()
        )
        client = Client(limited, alice.key)
        assert (await client.call("GET", TASKS)).status == 200
        reply = await client.call("GET", TASKS)
        assert int(reply.headers["Retry-After"]) >= 1
    else:
        raise AssertionError(f"no way to produce {code} here")
    return reply


@pytest.mark.parametrize(
    "code", sorted(c for c in CONTRACT_ERROR_CODES if c != "unavailable"), ids=str
)
async def test_each_code_is_answered_in_the_error_shape_and_documented_there(
    code: str, alice: Client, store: Store, clock: ManualClock, spec: dict[str, Any]
) -> None:
    status = CONTRACT_ERROR_CODES[code]
    assert_error(await produce(code, alice, store, clock), status, code)
    method = "GET" if code in ("unauthorized", "not_found", "rate_limited") else "POST"
    path = f"{TASKS}/{{task_id}}" if code == "not_found" else TASKS
    documented = error_codes(spec, spec["paths"][path][method.lower()])
    assert documented.get(code) == status, (method, path, documented)


async def test_unavailable_database_is_503_with_retry_after_and_documented(
    dead_app: QuartTrio, spec: dict[str, Any]
) -> None:
    reply = await Client(dead_app, "pk_live_" + "a" * 24 + ".sk_live_" + "b" * 32).call(
        "GET", TASKS
    )
    assert_error(reply, 503, "unavailable")
    assert int(reply.headers["Retry-After"]) >= 1
    assert error_codes(spec, spec["paths"][TASKS]["get"])["unavailable"] == 503


# ---------------------------------------------------------------- which routes document what


def _is_http_url(spec: dict[str, Any], schema: Any) -> bool:
    """A string schema that only takes http(s) URLs (or an array of them)."""
    if not isinstance(schema, dict):
        return False
    schema = resolve(spec, schema)
    if "items" in schema:
        return _is_http_url(spec, schema["items"])
    branches = schema.get("anyOf", ()) or [schema]
    return any(
        "http" in str(b.get("pattern", "")).lower().replace("[hh][tt][tt][pp]", "http")
        or b.get("format") == "uri"
        for b in (resolve(spec, b) for b in branches)
    )


def called_urls(spec: dict[str, Any], schema: Any, seen: frozenset[str] = frozenset()) -> bool:
    """Whether a request body holds, at any depth, a URL Runlater will call (``url``,
    ``*_url``, ``forward_urls`` taking http(s) URLs; not a filter that matches a piece of one)."""
    if not isinstance(schema, dict):
        return False
    if "$ref" in schema:
        if schema["$ref"] in seen:
            return False
        return called_urls(spec, resolve(spec, schema), seen | {schema["$ref"]})
    for name, prop in schema.get("properties", {}).items():
        named = name == "url" or name.endswith("_url") or name == "forward_urls"
        if named and _is_http_url(spec, prop):
            return True
    children = [
        *schema.get("properties", {}).values(),
        schema.get("items"),
        schema.get("additionalProperties"),
    ]
    for key in ("anyOf", "oneOf", "allOf"):
        children += schema.get(key, [])
    return any(called_urls(spec, child, seen) for child in children)


# Operations that create executions or tasks, which the plan's limits can refuse.
CREATES_WORK = {
    ("POST", "/api/v1/tasks"),
    ("PATCH", "/api/v1/tasks/{task_id}"),
    ("PUT", "/api/v1/tasks/{task_id}"),
    ("POST", "/api/v1/tasks/{task_id}/trigger"),
    ("POST", "/api/v1/executions/{execution_id}/retry"),
    ("POST", "/api/v1/tasks/batch"),
    ("PUT", "/api/v1/sync"),
}


def top_level_properties(spec: dict[str, Any], schema: dict[str, Any]) -> set[str]:
    """The property names of the body itself (of each branch of a union)."""
    schema = resolve(spec, schema)
    found = set(schema.get("properties", {}))
    for branch in schema.get("anyOf", ()):
        found |= top_level_properties(spec, branch)
    return found


def expected_codes(
    spec: dict[str, Any], method: str, path: str, operation: dict[str, Any]
) -> set[str]:
    codes = {"unauthorized", "rate_limited", "unavailable", "payload_too_large"}
    parameters = operation.get("parameters", ())
    if any(p["in"] == "path" for p in parameters):
        codes.add("not_found")
    if any(p["in"] == "query" for p in parameters):
        codes.add("validation_error")
    if method in ("POST", "PUT", "PATCH", "DELETE"):
        codes |= {"bad_request", "idempotency_conflict", "idempotency_mismatch"}
    body = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if body is not None:
        codes |= {"invalid_json", "validation_error"}
        # Timing keys of the body itself answer 400 (nested in items they are item errors).
        top = top_level_properties(spec, body["schema"])
        if "delay" in top:
            codes.add("invalid_delay")
        if "run_at" in top:
            codes.add("invalid_run_at")
        if called_urls(spec, body["schema"]):
            codes.add("url_not_allowed")
    if (method, path) in CREATES_WORK:
        codes.add("limit_exceeded")
    return codes


async def test_every_route_documents_the_codes_it_can_produce(spec: dict[str, Any]) -> None:
    checked = 0
    for method, path, operation in api_operations(spec):
        documented = error_codes(spec, operation)
        missing = expected_codes(spec, method, path, operation) - set(documented)
        assert not missing, f"{method} {path} does not document {sorted(missing)}"
        for code, status in documented.items():
            assert CONTRACT_ERROR_CODES[code] == status, (method, path, code, status)
        checked += 1
    assert checked >= 15, checked
