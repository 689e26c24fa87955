"""What the fuzzer found, each pinned by a small deterministic test (the bounded fuzz run need
not generate the same input again)."""

from __future__ import annotations

import pytest
import requests

from runlater.config import Settings
from tests.contract.conftest import Client
from tests.contract.server import ServerThread


@pytest.mark.parametrize(("method", "path"), [("GET", "/tasks"), ("DELETE", "/tasks")])
async def test_nul_in_a_free_text_query_parameter_is_a_validation_error(
    alice: Client, method: str, path: str
) -> None:
    """Was a 500: Postgres text cannot hold U+0000."""
    reply = await alice.call(method, path, query={"queue": "a\x00b"})
    assert reply.status == 422, reply.body
    assert reply.body["error"]["code"] == "validation_error"
    assert set(reply.body["error"]["details"]) == {"queue"}


@pytest.mark.parametrize(
    ("expression", "after"),
    [
        ("* * * * *", "9999-12-31T23:59:00Z"),  # the next minute is past year 9999
        ("0 0 1 1 *", "9999-06-01T00:00:00Z"),  # croniter's own year overflow
        ("* * * * *", "0001-01-01T00:00:00+14:00"),  # before year 1 in UTC
    ],
)
async def test_cron_preview_at_the_ends_of_time_is_a_validation_error(
    alice: Client, expression: str, after: str
) -> None:
    """Was a 500 (OverflowError / InvalidCron / ValueError while computing the runs)."""
    reply = await alice.call(
        "GET", "/cron/preview", query={"expression": expression, "after": after}
    )
    assert reply.status == 422, reply.body
    assert set(reply.body["error"]["details"]) == {"after"}, reply.body


def test_a_refused_method_with_a_body_does_not_stall_the_connection(database_url: str) -> None:
    """Was a hang: a 405/404 (answered before the API's hooks read the body) left hypercorn's
    keep-alive connection stuck, and the next request on it never got an answer."""
    settings = Settings(allow_private_targets=True, rate_limit_per_key=0, rate_limit_per_ip=0)
    with ServerThread(database_url, settings) as server, requests.Session() as session:
        headers = {"Authorization": f"Bearer {server.key}", "Content-Type": "application/json"}
        body = b'{"name": "deploy"}'
        answers = []
        for _ in range(3):
            for method, path in (("PUT", "/api-keys"), ("QUERY", "/tasks"), ("GET", "/nope")):
                reply = session.request(
                    method, f"{server.url}/api/v1{path}", headers=headers, data=body, timeout=10
                )
                answers.append(reply.status_code)
    assert answers == [405, 405, 404] * 3


@pytest.mark.parametrize("method", ["PUT", "PATCH"])
async def test_a_monitor_edit_with_null_notify_flags_restores_the_defaults(
    alice: Client, method: str
) -> None:
    """Was a 500 (a not-null column written null): null means the default, as on create."""
    made = await alice.call(
        "POST",
        "/monitors",
        json_body={"name": "nightly", "interval_seconds": 300, "notify_on_failure": False},
    )
    assert made.status == 201, made.body
    reply = await alice.call(
        method,
        f"/monitors/{made.body['data']['id']}",
        json_body={"notify_on_failure": None, "notify_on_recovery": None},
    )
    assert reply.status == 200, reply.body
    assert reply.body["data"]["notify_on_failure"] is True
    assert reply.body["data"]["notify_on_recovery"] is True
