"""The API benchmark's baselines: the same web stack answering ``POST /api/v1/tasks`` without
Runlater's work and without a database.

``python -m bench.bare_api --mode quart|asgi --port 0`` prints ``PORT <n>`` once listening.

- ``quart``: a quart-trio app with one blueprint route that reads the JSON body and answers
  202 with a body shaped like Runlater's, served by ``runlater.web.server.WebServer`` (the
  same hypercorn config as a node) inside ``trio_asyncio.open_loop()`` like a node — the
  ceiling of the web framework on this machine;
- ``asgi``: a bare ASGI callable on the same hypercorn server — the ceiling of the server.
"""

from __future__ import annotations

import argparse
import json
import uuid
from typing import Any

import trio
import trio_asyncio
from quart import Blueprint, jsonify, request
from quart_trio import QuartTrio

from runlater.web.server import WebServer

_ANSWER = {
    "status": "pending",
    "scheduled_for": "2026-11-29T12:00:00Z",
}


def quart_app() -> QuartTrio:
    app = QuartTrio("bare")
    api = Blueprint("api", __name__, url_prefix="/api/v1")

    @api.post("/tasks")
    async def create_task() -> Any:
        payload = json.loads(await request.get_data())
        data = {"task_id": str(uuid.uuid4()), "execution_id": str(uuid.uuid4()), **_ANSWER}
        data["url"] = payload.get("url")
        return jsonify({"data": data, "message": "Task queued for execution"}), 202

    app.register_blueprint(api)

    @app.route("/ping/<token>", methods=["GET", "POST", "HEAD"])
    async def ping(token: str) -> Any:
        """The ping route's baseline (bench.monitors): read the body, answer "OK"."""
        await request.get_data()
        return "OK", 200, {"Content-Type": "text/plain; charset=utf-8"}

    @app.route("/in/<slug>", methods=["GET", "POST", "PUT", "PATCH", "DELETE"])
    async def inbound(slug: str) -> Any:
        """The inbound route's baseline (bench.inbound): read the body, answer like /in."""
        await request.get_data()
        return jsonify({"id": str(uuid.uuid4()), "status": "received"}), 200

    return app


async def asgi_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    payload = json.loads(body)
    data = {"task_id": str(uuid.uuid4()), "execution_id": str(uuid.uuid4()), **_ANSWER}
    data["url"] = payload.get("url")
    out = json.dumps({"data": data, "message": "Task queued for execution"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 202,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(out)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": out})


async def serve(mode: str, port: int) -> None:
    app = quart_app() if mode == "quart" else asgi_app
    server = WebServer(app, host="127.0.0.1", port=port)
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        bound = await nursery.start(server.run)
        print(f"PORT {bound[0].rsplit(':', 1)[1]}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", choices=("quart", "asgi"), default="quart")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    trio.run(serve, args.mode, args.port)


if __name__ == "__main__":
    main()
