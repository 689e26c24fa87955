"""``/api/v1/org``: the caller's organization."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, current_app, jsonify

from runlater.apikeys import new_webhook_secret
from runlater.web import serialize
from runlater.web.auth import org_id

bp = Blueprint("org", __name__)


@bp.post("/org/webhook-secret/rotate")
async def rotate_webhook_secret() -> Any:
    """A new signing secret; the previous one keeps signing alongside it for 24 h."""
    row = await current_app.config["STORE"].rotate_webhook_secret(org_id(), new_webhook_secret())
    return jsonify(
        {
            "data": {
                "webhook_secret": row["webhook_secret"],
                "previous_secret_expires_at": serialize.ts(
                    row["previous_webhook_secret_expires_at"]
                ),
            }
        }
    )
