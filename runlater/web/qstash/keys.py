"""``/v2/keys``: the organization's QStash signing keys (``Upstash-Signature`` on deliveries of
/v2 messages is signed with ``current``; receivers accept ``current`` and ``next``)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify

from runlater.web.auth import org_id
from runlater.web.qstash.common import store

bp = Blueprint("keys", __name__)


def _keys(row: dict[str, Any]) -> dict[str, str]:
    return {"current": row["current"], "next": row["next"]}


@bp.get("/keys")
async def signing_keys() -> Any:
    """The current and next signing keys."""
    return jsonify(_keys(await store().qstash_signing_keys(org_id())))


@bp.post("/keys/rotate")
async def rotate_signing_keys() -> Any:
    """The next key becomes current, and a new next key is made."""
    return jsonify(_keys(await store().rotate_qstash_signing_keys(org_id())))
