"""Parsing QStash requests (runlater.domain.qstash): durations, CRON_TZ, Upstash-* headers."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

import pytest

from runlater.domain import qstash
from runlater.errors import InvalidInput

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
URL = "https://example.com/hook"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("10s", 10), ("5m", 300), ("2h", 7200), ("1d", 86400), ("1h30m", 5400), ("45", 45)],
)
def test_durations_take_qstash_s_forms(value: str, seconds: int) -> None:
    assert qstash.parse_duration(value, "Upstash-Delay", low_s=0, high_s=10**9) == seconds


@pytest.mark.parametrize("value", ["", "10", "1w", "-5s", "1.5h", "s", "10 s"])
def test_a_duration_out_of_form_or_range_names_the_header(value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        qstash.parse_duration(value, "Upstash-Timeout", low_s=1, high_s=5)
    assert caught.value.message.startswith("Upstash-Timeout: ")


def test_cron_tz_prefix_sets_the_zone() -> None:
    assert qstash.parse_cron("CRON_TZ=Europe/Berlin 30 2 * * *") == ("30 2 * * *", "Europe/Berlin")
    assert qstash.parse_cron("*/5 * * * *") == ("*/5 * * * *", "UTC")
    assert qstash.cron_header("30 2 * * *", "Europe/Berlin") == "CRON_TZ=Europe/Berlin 30 2 * * *"
    assert qstash.cron_header("0 * * * *", "UTC") == "0 * * * *"
    with pytest.raises(InvalidInput, match="Upstash-Cron"):
        qstash.parse_cron("CRON_TZ=Europe/Berlin")


def test_a_message_becomes_a_task_body() -> None:
    draft = qstash.parse_message(
        URL,
        [
            ("Content-Type", "text/plain"),
            ("Upstash-Method", "put"),
            ("Upstash-Retries", "0"),
            ("Upstash-Timeout", "2m"),
            ("Upstash-Delay", "10s"),
            ("upstash-forward-x-api-key", "k1"),
            ("Upstash-Forward-X-Api-Key", "k2"),
            ("User-Agent", "qstash-py"),
        ],
        b"hi",
        NOW,
        queue="q",
    )
    assert draft.payload == {
        "url": URL,
        "headers": {"Content-Type": "text/plain", "X-Api-Key": "k1, k2"},
        "method": "PUT",
        "retry_attempts": 0,
        "timeout_ms": 120_000,
        "queue": "q",
        "delay": 10,
    }
    assert draft.body == b"hi" and draft.dedup_key is None


def test_not_before_wins_over_delay_and_a_past_one_runs_now() -> None:
    later = int(NOW.timestamp()) + 90
    draft = qstash.parse_message(
        URL, [("Upstash-Not-Before", str(later)), ("Upstash-Delay", "1d")], b"", NOW
    )
    assert draft.payload["delay"] == 90 and draft.body is None
    past = qstash.parse_message(URL, [("Upstash-Not-Before", "1000")], b"", NOW)
    assert past.payload["delay"] == 0


def test_defaults_are_qstash_s() -> None:
    draft = qstash.parse_message(URL, [], b"", NOW)
    assert draft.payload["method"] == "POST" and draft.payload["retry_attempts"] == 3
    assert "delay" not in draft.payload and "timeout_ms" not in draft.payload


def test_deduplication_keys_are_namespaced_and_content_keys_follow_the_content() -> None:
    by_id = qstash.parse_message(URL, [("Upstash-Deduplication-Id", "a")], b"", NOW)
    assert by_id.dedup_key == "qstash-dedup:a"

    def content(body: bytes, *more: tuple[str, str]) -> str | None:
        headers = [("Upstash-Content-Based-Deduplication", "true"), *more]
        return qstash.parse_message(URL, headers, body, NOW).dedup_key

    assert content(b"x") == content(b"x")
    assert content(b"x") != content(b"y")
    assert content(b"x") != content(b"x", ("Upstash-Forward-A", "1"))
    assert content(b"x") != content(b"x", ("Upstash-Method", "PUT"))
    assert str(content(b"x")).startswith("qstash-dedup:content:")
    off = [("Upstash-Content-Based-Deduplication", "false")]
    assert qstash.parse_message(URL, off, b"x", NOW).dedup_key is None


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("Upstash-Flow-Control-Key", "k"),
        ("Upstash-Flow-Control-Value", "rate=1"),
        ("Upstash-Retry-Delay", "1000"),
        ("Upstash-Callback-Authorization", "x"),
        ("Upstash-Failure-Callback-Authorization", "x"),
        ("Upstash-Redact-Fields", "body"),
        ("Upstash-Brand-New", "1"),
        ("Upstash-Cron", "* * * * *"),
        ("Upstash-Schedule-Id", "x"),
        ("Upstash-Retries", "11"),
        ("Upstash-Retries", "three"),
    ],
)
def test_unsupported_message_headers_are_refused_by_name(name: str, value: str) -> None:
    with pytest.raises(InvalidInput) as caught:
        qstash.parse_message(URL, [(name.lower(), value)], b"", NOW)
    assert caught.value.message.startswith(f"{name}: ")


def test_a_header_given_twice_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"^Upstash-Retries: is given more than once"):
        qstash.parse_message(URL, [("Upstash-Retries", "1"), ("upstash-retries", "2")], b"", NOW)


def test_destinations_must_be_urls() -> None:
    assert qstash.destination_url("http://a/b?c=d") == "http://a/b?c=d"
    for topic in ("my-group", "ftp://x", ""):
        with pytest.raises(InvalidInput, match=r"^destination: "):
            qstash.destination_url(topic)


def test_a_schedule_becomes_a_cron_task_body() -> None:
    sid = "0190a0d2-0000-7000-8000-000000000001"
    draft = qstash.parse_schedule(
        URL,
        [
            ("Upstash-Cron", "CRON_TZ=America/New_York 0 9 * * 1-5"),
            ("Upstash-Queue-Name", "q"),
            ("Upstash-Schedule-Id", sid),
        ],
        b"{}",
    )
    assert draft.payload["cron_expression"] == "0 9 * * 1-5"
    assert draft.payload["timezone"] == "America/New_York"
    assert draft.payload["queue"] == "q" and draft.payload["method"] == "POST"
    assert draft.schedule_id == UUID(sid)
    replacement = qstash.replacement(draft)
    assert replacement["body"] == "{}" and replacement["callback_url"] is None
    for headers in (
        [],
        [("Upstash-Cron", "0 * * * *"), ("Upstash-Delay", "10s")],
        [("Upstash-Cron", "0 * * * *"), ("Upstash-Deduplication-Id", "x")],
    ):
        with pytest.raises(InvalidInput):
            qstash.parse_schedule(URL, headers, b"")


def test_task_field_errors_are_named_by_their_header() -> None:
    assert qstash.header_of("retry_attempts") == "Upstash-Retries"
    assert qstash.header_of("headers") == "Upstash-Forward-*"
    assert qstash.header_of("url") == "destination"
    assert qstash.header_of("Upstash-Delay") == "Upstash-Delay"


def test_batch_items_are_checked_field_by_field() -> None:
    assert qstash.batch_item({"destination": URL, "body": "b", "queue": "q"}, 0) == (
        URL,
        [],
        b"b",
        "q",
    )
    for item, named in (
        ("x", "batch[2]"),
        ({"destination": URL, "extra": 1}, "batch[2].extra"),
        ({}, "batch[2].destination"),
        ({"destination": URL, "headers": {"a": 1}}, "batch[2].headers"),
        ({"destination": URL, "body": {"a": 1}}, "batch[2].body"),
    ):
        with pytest.raises(InvalidInput) as caught:
            qstash.batch_item(item, 2)
        assert caught.value.message.startswith(f"{named}: ")
