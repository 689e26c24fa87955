"""Log lines as text or JSON (``RUNLATER_LOG_FORMAT``), written off the event loop.

A line that carries data passes it as ``extra={"fields": {...}}``: the text format appends
``key=value`` pairs to the message, the JSON format makes them keys of the line's object. The
handler on the trio thread only puts records on a queue; a ``QueueListener`` thread formats and
writes them, so a slow stderr (a full pipe, a slow log collector) never stalls the engine, and
a high delivery rate costs the event loop one queue put per line.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import queue
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

FORMATS = ("text", "json")


def fields_of(record: logging.LogRecord) -> dict[str, Any]:
    fields = getattr(record, "fields", None)
    return fields if isinstance(fields, dict) else {}


def _text_value(value: Any) -> str:
    text = "" if value is None else str(value)
    if text == "" or any(c.isspace() or c in '"=' for c in text):
        return json.dumps(text, ensure_ascii=False)
    return text


class TextFormatter(logging.Formatter):
    """``2026-12-05 18:00:00,123 level=INFO logger=runlater.web message key=value ...``"""

    def __init__(self) -> None:
        super().__init__("%(asctime)s level=%(levelname)s logger=%(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = fields_of(record)
        if fields:
            pairs = " ".join(f"{key}={_text_value(value)}" for key, value in fields.items())
            head, newline, rest = line.partition("\n")  # a traceback stays below the pairs
            line = f"{head} {pairs}{newline}{rest}"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO 8601), level, logger, message, the fields, and
    ``exception`` with the traceback when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in fields_of(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, ensure_ascii=False, default=str)


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}, got {log_format!r}")
    return JsonFormatter() if log_format == "json" else TextFormatter()


def setup_logging(
    level: str = "INFO", log_format: str = "text", stream: TextIO | None = None
) -> logging.handlers.QueueListener:
    """Route every log record through a queue to a writer thread; returns the listener (stopped,
    and the queue drained, at interpreter exit)."""
    writer = logging.StreamHandler(stream or sys.stderr)
    writer.setFormatter(formatter_for(log_format))
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    listener = logging.handlers.QueueListener(records, writer, respect_handler_level=True)
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.handlers.QueueHandler(records))
    root.setLevel(level)
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    listener.start()
    atexit.register(_stop, listener)
    return listener


def _stop(listener: logging.handlers.QueueListener) -> None:
    """Drain and stop, once (a caller may have stopped it already)."""
    if getattr(listener, "_thread", None) is not None:
        listener.stop()
