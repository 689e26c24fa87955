"""Errors name a field the way the caller spelled it.

Task bodies accept two names for two fields (``cron`` ≡ ``cron_expression``, ``run_at`` ≡
``scheduled_at``); validation works on the canonical names. A caller who sent ``cron`` must
read about ``cron`` in the error, including under an item's path (``tasks[3].cron``).
"""

from __future__ import annotations

import json
import re
from typing import Any

# canonical name -> the alias a caller may have used instead
ALIASES = {"cron_expression": "cron", "scheduled_at": "run_at"}
_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _container(body: Any, path: list[str | int]) -> Any:
    """The object at ``path`` in ``body``, looking through ``{"task": {...}}`` wrappers."""
    node = body
    for step in path:
        if isinstance(node, dict) and set(node) == {"task"} and isinstance(node["task"], dict):
            node = node["task"]
        if isinstance(step, int):
            node = node[step] if isinstance(node, list) and step < len(node) else None
        else:
            node = node.get(step) if isinstance(node, dict) else None
    if isinstance(node, dict) and set(node) == {"task"} and isinstance(node["task"], dict):
        node = node["task"]
    return node


def _as_sent(key: str, body: Any) -> str:
    prefix, _, last = key.rpartition(".")
    alias = ALIASES.get(last)
    if alias is None:
        return key
    steps: list[str | int] = [
        int(index) if index else name for name, index in _SEGMENT.findall(prefix)
    ]
    container = _container(body, steps)
    if isinstance(container, dict) and alias in container and last not in container:
        return f"{prefix}.{alias}" if prefix else alias
    return key


def details_as_sent(details: dict[str, list[str]] | None, raw_body: bytes) -> Any:
    """``details`` with each canonical field name replaced by the alias the body used."""
    if not details or not any(key.rpartition(".")[2] in ALIASES for key in details):
        return details
    try:
        body = json.loads(raw_body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return details
    renamed: dict[str, list[str]] = {}
    for key, messages in details.items():
        renamed.setdefault(_as_sent(key, body), []).extend(messages)
    return renamed
