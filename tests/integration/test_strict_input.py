"""A new user's first requests: typos are refused with a suggestion, errors say how to fix them
and use the caller's own field names, and DNS alone never decides whether a task is accepted.

Through quart's test client into the real app on a real Postgres; host names resolve from a
table (``StaticResolver``), so "offline" is a name the table does not know.
"""

from __future__ import annotations

from typing import Any

import pytest

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.delivery.client import Deliverer
from runlater.delivery.resolver import StaticResolver
from runlater.delivery.retry import is_retryable
from runlater.delivery.transport import TrioTransport
from runlater.store.postgres import Store
from runlater.web.app import create_app
from tests.helpers.factories import claimed_execution, make_org

PUBLIC = "https://hooks.example.test/in"
OFFLINE = "https://example.com/webhook"  # the README's example; not in the table: no answer
ANSWERS = {"hooks.example.test": ["93.184.216.34"], "inside.test": ["10.1.2.3"]}


class Client:
    def __init__(self, store: Store, key: str, *, allow_private: bool = False) -> None:
        self.store = store
        self.app = create_app(
            store,
            Settings(allow_private_targets=allow_private),
            SystemClock(),
            resolver=StaticResolver(ANSWERS),
        )
        self.headers = {"Authorization": f"Bearer {key}"}

    async def call(self, method: str, path: str, body: Any) -> tuple[int, Any]:
        response = await self.app.test_client().open(
            f"/api/v1{path}", method=method, json=body, headers=self.headers
        )
        return response.status_code, await response.get_json()


@pytest.fixture
async def client(store: Store) -> Client:
    _, key = await make_org(store)
    return Client(store, key)


def details(status: int, body: Any, code: str = "validation_error") -> dict[str, list[str]]:
    assert status == 422, body
    assert body["error"]["code"] == code, body
    return body["error"]["details"]


async def task_count(client: Client) -> int:
    status, body = await client.call("GET", "/tasks?limit=100", None)
    assert status == 200
    return len(body["data"])


# ------------------------------------------------------------------------ unknown fields


async def test_a_typo_in_a_field_name_is_refused_with_the_nearest_name(client: Client) -> None:
    status, body = await client.call("POST", "/tasks", {"url": PUBLIC, "delya": "30s"})
    assert details(status, body) == {"delya": ["unknown field 'delya'; did you mean 'delay'?"]}
    assert await task_count(client) == 0


async def test_a_field_with_no_near_name_lists_the_known_ones(client: Client) -> None:
    status, body = await client.call("POST", "/tasks", {"task": {"url": PUBLIC, "zzz": 1}})
    [message] = details(status, body)["zzz"]
    assert message.startswith("unknown field 'zzz'; known fields: alert_after, body, callback_url,")
    assert "delay" in message and "url" in message


async def test_update_refuses_unknown_fields_and_changes_nothing(client: Client) -> None:
    status, created = await client.call("POST", "/tasks", {"url": PUBLIC, "cron": "0 * * * *"})
    assert status == 201, created
    path = f"/tasks/{created['data']['id']}"
    status, body = await client.call("PATCH", path, {"enabeld": False, "name": "renamed"})
    assert details(status, body) == {
        "enabeld": ["unknown field 'enabeld'; did you mean 'enabled'?"]
    }
    status, task = await client.call("GET", path, None)
    assert (task["data"]["enabled"], task["data"]["name"]) == (True, created["data"]["name"])


async def test_batch_refuses_unknown_shared_fields(client: Client) -> None:
    batch = {"url": PUBLIC, "queue": "q", "items": [1, 2], "retry_atempts": 2}
    status, body = await client.call("POST", "/tasks/batch", batch)
    assert details(status, body) == {
        "retry_atempts": ["unknown field 'retry_atempts'; did you mean 'retry_attempts'?"]
    }
    assert await task_count(client) == 0


async def test_sync_refuses_unknown_fields_in_items_and_at_the_top(client: Client) -> None:
    declared = {
        "tasks": [
            {"name": "a", "url": PUBLIC, "cron": "0 * * * *"},
            {"name": "b", "url": PUBLIC, "cron": "0 * * * *", "timzone": "Europe/Berlin"},
        ]
    }
    status, body = await client.call("PUT", "/sync", declared)
    assert details(status, body) == {
        "tasks[1].timzone": ["unknown field 'timzone'; did you mean 'timezone'?"]
    }
    status, body = await client.call("PUT", "/sync", {"tasks": [], "delete_removd": True})
    assert details(status, body) == {
        "delete_removd": ["unknown field 'delete_removd'; did you mean 'delete_removed'?"]
    }
    assert await task_count(client) == 0


# ------------------------------------------------------------- errors that say how to fix


@pytest.mark.parametrize("delay", ["30 minutes", "1.5h", 1.5, "-5s"])
async def test_a_bad_delay_shows_the_accepted_forms(client: Client, delay: Any) -> None:
    status, body = await client.call("POST", "/tasks", {"url": PUBLIC, "delay": delay})
    assert status == 400, body
    assert body["error"]["code"] == "invalid_delay"
    assert "'30s', '5m', '2h', '1d', or seconds as a number" in body["error"]["message"]


async def test_cron_errors_are_reported_under_the_name_the_caller_used(client: Client) -> None:
    status, body = await client.call("POST", "/tasks", {"url": PUBLIC, "cron": "61 * * * *"})
    assert set(details(status, body)) == {"cron"}
    status, body = await client.call(
        "POST", "/tasks", {"url": PUBLIC, "cron_expression": "61 * * * *"}
    )
    assert set(details(status, body)) == {"cron_expression"}
    status, body = await client.call(
        "PUT", "/sync", {"tasks": [{"task": {"name": "x", "url": PUBLIC, "cron": "* *"}}]}
    )
    assert set(details(status, body)) == {"tasks[0].cron"}
    status, body = await client.call(
        "POST", "/tasks", {"url": PUBLIC, "run_at": "2000-01-01T00:00:00Z", "delay": "5m"}
    )
    assert set(details(status, body)) == {"run_at", "delay"}


@pytest.mark.parametrize(
    ("url", "field_path"),
    [("http://127.0.0.1:8080/hook", "url"), ("http://inside.test/", "callback_url")],
)
async def test_a_private_target_names_the_setting_that_allows_it(
    client: Client, url: str, field_path: str
) -> None:
    body_in = {"url": PUBLIC, field_path: url} if field_path != "url" else {"url": url}
    status, body = await client.call("POST", "/tasks", body_in)
    [message] = details(status, body, "url_not_allowed")[field_path]
    assert "RUNLATER_ALLOW_PRIVATE_TARGETS=true" in message


# ------------------------------------------------------------------ DNS is not a verdict


async def test_an_unresolvable_host_is_accepted_with_a_warning(client: Client) -> None:
    status, body = await client.call("POST", "/tasks", {"url": OFFLINE, "delay": "1h"})
    assert status == 202, body
    [warning] = body["warnings"]
    assert warning["field"] == "url"
    assert "'example.com' does not resolve" in warning["message"]
    status, body = await client.call("POST", "/tasks", {"url": PUBLIC, "delay": "1h"})
    assert status == 202 and "warnings" not in body


async def test_warnings_name_the_item_in_batch_and_sync(client: Client) -> None:
    status, body = await client.call(
        "POST", "/tasks/batch", {"url": OFFLINE, "queue": "q", "items": [1]}
    )
    assert status == 201, body
    assert [w["field"] for w in body["warnings"]] == ["url"]
    declared = {
        "tasks": [
            {"name": "a", "url": PUBLIC, "cron": "0 * * * *"},
            {"name": "b", "url": PUBLIC, "callback_url": OFFLINE, "cron": "0 * * * *"},
        ]
    }
    status, body = await client.call("PUT", "/sync", declared)
    assert status == 200, body
    assert [w["field"] for w in body["warnings"]] == ["tasks[1].callback_url"]


async def test_a_name_that_resolves_to_a_blocked_address_is_still_refused(client: Client) -> None:
    status, body = await client.call("POST", "/tasks", {"url": "http://inside.test/"})
    assert "resolves to a private address" in details(status, body, "url_not_allowed")["url"][0]


async def test_an_unresolvable_host_fails_the_delivery_attempt_clearly_and_is_retried() -> None:
    async with TrioTransport(allow_private=False, resolver=StaticResolver(ANSWERS)) as transport:
        deliverer = Deliverer(transport)
        attempt: Any = await deliverer.deliver(claimed_execution(OFFLINE))
        assert transport.stats.opened == 0
    assert attempt.status == "failed"
    assert "host 'example.com' does not resolve" in attempt.error
    assert is_retryable(attempt.status, attempt.status_code)


# ------------------------------------------------------------ what the engine does is shown


async def test_retry_attempts_default_to_what_the_engine_does(client: Client) -> None:
    status, cron = await client.call("POST", "/tasks", {"url": PUBLIC, "cron": "0 * * * *"})
    assert status == 201 and cron["data"]["retry_attempts"] == 0
    status, asked = await client.call(
        "POST", "/tasks", {"url": PUBLIC, "cron": "0 * * * *", "retry_attempts": 3}
    )
    assert status == 201 and asked["data"]["retry_attempts"] == 3
    status, once = await client.call("POST", "/tasks", {"url": PUBLIC, "delay": "1h"})
    assert status == 202
    status, task = await client.call("GET", f"/tasks/{once['data']['task_id']}", None)
    assert task["data"]["retry_attempts"] == 5
