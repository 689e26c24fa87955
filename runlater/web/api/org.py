"""``/api/v1/org``: the caller's organization, its plan and usage; webhook secret rotation."""

from __future__ import annotations

from typing import Any

from quart import Blueprint, jsonify
from quart_schema import document_response

from runlater.apikeys import new_webhook_secret
from runlater.schemas.common import Data
from runlater.schemas.org import Organization, RotatedSecret
from runlater.web import serialize
from runlater.web.auth import org_id
from runlater.web.context import services

bp = Blueprint("org", __name__)


def _organization(row: dict[str, Any]) -> dict[str, Any]:
    used, limit = row["executions_this_month"], row["monthly_executions"]
    return {
        **serialize.pick(row, ("id", "name", "slug", "tier", "webhook_secret")),
        "usage": {
            "executions_this_month": used,
            "limit": limit,
            "hard_limit": row["hard_stop"],
            "warning": used >= limit,
            "period_start": serialize.ts(row["period_start"]),
            "resets_at": serialize.ts(row["resets_at"]),
        },
        "limits": {
            "min_cron_interval_minutes": row["min_cron_interval_minutes"],
            "retention_days": row["retention_days"],
        },
    }


@bp.get("/org")
@document_response(Data[Organization], 200)
async def get_org() -> Any:
    """The caller's organization: plan, limits, webhook secret and this month's usage."""
    row = await services().store.get_organization_usage(org_id())
    return jsonify({"data": _organization(row)})


@bp.post("/org/webhook-secret/rotate")
@document_response(Data[RotatedSecret], 200)
async def rotate_webhook_secret() -> Any:
    """A new signing secret; the previous one keeps signing alongside it for 24 h."""
    row = await services().store.rotate_webhook_secret(org_id(), new_webhook_secret())
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
