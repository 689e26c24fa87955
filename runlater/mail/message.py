"""The shape of one mail before it is written to the outbox."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Mail:
    """One mail to one address: ``kind`` names what it is for (``login``, ``invite``, ...;
    lower-case letters and ``_``), ``text`` and ``html`` are the two alternative bodies."""

    kind: str
    to: str
    subject: str
    text: str
    html: str
