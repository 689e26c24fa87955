"""Log lines as text or JSON, written by a thread off the event loop."""

from __future__ import annotations

import io
import json
import logging

import pytest

from runlater.logs import JsonFormatter, TextFormatter, formatter_for, setup_logging


def record(msg: str = "delivery", **fields: object) -> logging.LogRecord:
    rec = logging.makeLogRecord(
        {"name": "runlater.delivery", "levelname": "WARNING", "levelno": 30, "msg": msg}
    )
    rec.fields = fields
    return rec


def test_text_appends_fields_as_key_value_pairs_quoting_what_needs_it() -> None:
    line = TextFormatter().format(
        record(task="t1", status_code=None, error="ConnectError: no route", ms=12)
    )
    assert line.endswith(
        'level=WARNING logger=runlater.delivery delivery task=t1 status_code="" '
        'error="ConnectError: no route" ms=12'
    )


def test_json_is_one_object_per_line_with_the_fields_as_keys() -> None:
    line = JsonFormatter().format(record(task="t1", status_code=503, ms=12.5))
    parsed = json.loads(line)
    assert parsed["level"] == "WARNING" and parsed["logger"] == "runlater.delivery"
    assert parsed["message"] == "delivery"
    assert (parsed["task"], parsed["status_code"], parsed["ms"]) == ("t1", 503, 12.5)
    assert parsed["time"].endswith("+00:00")
    assert "\n" not in line


def test_an_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="text, json"):
        formatter_for("xml")


def test_records_reach_the_stream_through_the_writer_thread() -> None:
    out = io.StringIO()
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    listener = setup_logging("INFO", "json", stream=out)
    try:
        logging.getLogger("runlater.access").info(
            "request", extra={"fields": {"method": "GET", "status": 200}}
        )
        try:
            raise RuntimeError("boom")
        except RuntimeError:
            logging.getLogger("runlater.web").exception("unhandled error in request")
        logging.getLogger("runlater.x").debug("not at INFO")
    finally:
        listener.stop()  # writes what is queued
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["message"].splitlines()[0] for line in lines] == [
        "request",
        "unhandled error in request",
    ]
    assert (lines[0]["method"], lines[0]["status"]) == ("GET", 200)
    assert "RuntimeError: boom" in lines[1]["exception"]
