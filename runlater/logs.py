"""Log lines as text or JSON (``RUNLATER_LOG_FORMAT``), written off the event loop.

A line that carries data passes it as ``extra={"fields": {...}}``: the text format appends
``key=value`` pairs to the message, the JSON format makes them keys of the line's object.

The handler formats the line where it is logged (about 15 µs) and puts the finished string on
a queue; one writer thread wakes at most every ``LINGER_S`` and writes what queued in one
write, so a slow stderr (a full pipe, a slow log collector) never stalls the engine and the
event loop hands the GIL to the writer once per batch. The stdlib ``QueueListener`` (a wake-up
and a format in the thread per line) cost a third of the delivery rate (bench/README.md,
"Logging").
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import queue
import sys
import threading
import time
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


WRITE_BATCH = 512  # lines joined into one write
# After the first line of a quiet spell the writer waits this long and takes what queued
# meanwhile: one wake-up of the thread per batch, not one per line (each wake-up makes the
# event loop hand over the GIL).
LINGER_S = 0.05
_STOP = object()


class LineWriter:
    """A thread that writes finished lines to ``stream``, what queued meanwhile in one write."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines: queue.SimpleQueue[object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="runlater-log-writer", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Write what is queued, then end the thread (once)."""
        if self._thread is None:
            return
        self.lines.put(_STOP)
        self._thread.join(timeout=5)
        self._thread = None

    def _run(self) -> None:
        while True:
            batch: list[str] = []
            item = self.lines.get()
            if item is not _STOP:
                time.sleep(LINGER_S)
            while item is not _STOP:
                batch.append(str(item))
                if len(batch) >= WRITE_BATCH:
                    break
                try:
                    item = self.lines.get_nowait()
                except queue.Empty:
                    break
            if batch:
                self._write(batch)
            if item is _STOP:
                return

    def _write(self, batch: list[str]) -> None:
        # A closed or broken stream loses these lines, never the node.
        with contextlib.suppress(OSError, ValueError):
            self.stream.write("\n".join(batch) + "\n")
            self.stream.flush()


class LineHandler(logging.Handler):
    """Formats each record where it is logged and hands the line to a ``LineWriter``."""

    def __init__(self, writer: LineWriter) -> None:
        super().__init__()
        self.writer = writer

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.writer.lines.put(self.format(record))
        except Exception:
            self.handleError(record)


def setup_logging(
    level: str = "INFO", log_format: str = "text", stream: TextIO | None = None
) -> LineWriter:
    """Route every log record, formatted, through a queue to a writer thread; returns the
    writer (stopped, and the queue written out, at interpreter exit)."""
    writer = LineWriter(stream or sys.stderr)
    handler = LineHandler(writer)
    handler.setFormatter(formatter_for(log_format))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    writer.start()
    atexit.register(writer.stop)
    return writer
