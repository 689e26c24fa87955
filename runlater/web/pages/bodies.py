"""A received body as a page shows it, safely: JSON pretty-printed, other text as it is (the
template escapes it; it is never rendered as HTML), anything else — not UTF-8, or holding NUL —
as a hex dump. A long body is cut (``TEXT_SHOWN`` characters, ``HEX_SHOWN`` bytes) and the
page says how much of it is shown; the whole body is a download away."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

TEXT_SHOWN = 64 * 1024  # characters of a text body shown in a page
HEX_SHOWN = 4 * 1024  # bytes of a binary body shown as a hex dump (about 19 KiB of text)
HEX_WIDTH = 16


@dataclass(frozen=True, slots=True)
class ShownBody:
    """``text`` is what the page shows in a ``<pre>``; ``truncated`` when it is not all."""

    kind: Literal["empty", "json", "text", "binary"]
    text: str
    size: int
    truncated: bool


def size_text(size: int) -> str:
    """A byte count for people: ``512 B``, ``1.5 KiB``, ``2.0 MiB``."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KiB"
    return f"{size / (1024 * 1024):.1f} MiB"


def hex_dump(data: bytes) -> str:
    """Offset, 16 bytes in hex (two groups of 8), and those bytes as ASCII (``.`` for the
    rest), one line each — as ``hexdump -C`` writes them."""
    lines = []
    for offset in range(0, len(data), HEX_WIDTH):
        chunk = data[offset : offset + HEX_WIDTH]
        hexes = [f"{b:02x}" for b in chunk]
        left, right = " ".join(hexes[:8]), " ".join(hexes[8:])
        ascii_ = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{offset:08x}  {left:<23}  {right:<23}  |{ascii_}|")
    return "\n".join(lines)


def shown_body(body: bytes, is_text: bool) -> ShownBody:
    """``body`` as a page shows it; ``is_text`` is the event's own verdict (UTF-8, no NUL)."""
    size = len(body)
    if not body:
        return ShownBody("empty", "", 0, False)
    if not is_text:
        return ShownBody("binary", hex_dump(body[:HEX_SHOWN]), size, size > HEX_SHOWN)
    text = body.decode("utf-8")
    kind: Literal["json", "text"] = "text"
    try:
        parsed: Any = json.loads(text)
    except ValueError:
        parsed = None  # not JSON: shown as text
    if isinstance(parsed, dict | list):
        text, kind = json.dumps(parsed, indent=2, ensure_ascii=False), "json"
    return ShownBody(kind, text[:TEXT_SHOWN], size, len(text) > TEXT_SHOWN)
