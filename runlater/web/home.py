"""``/``: a small page for whoever opens the server's address in a browser.

The startup banner points here. Until the dashboard exists it says what this is and links to
what a new user looks for first: the API docs, the spec, and the health and metrics endpoints.
"""

from __future__ import annotations

from html import escape
from typing import Any

from quart import Quart, Response
from quart_schema import hide

from runlater.web.openapi import DOCS_PATH, SPEC_PATH

LINKS = (
    (DOCS_PATH, "API documentation", "every route, tried from the browser (Swagger UI)"),
    (SPEC_PATH, "OpenAPI spec", "generate a client from it"),
    ("/health", "/health", "liveness: the process answers"),
    ("/health/ready", "/health/ready", "readiness: the database answers"),
    ("/metrics", "/metrics", "Prometheus metrics of this node"),
)


def page(version: str, links: tuple[tuple[str, str, str], ...] = LINKS) -> str:
    items = "\n".join(
        f'    <li><a href="{escape(href)}">{escape(title)}</a> — {escape(what)}</li>'
        for href, title, what in links
    )
    return f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Runlater</title>
  <style>
    body {{ font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto;
           padding: 0 1rem; color: #1f2328; }}
    code {{ background: #f3f4f6; padding: 0 .25rem; border-radius: 4px; }}
    a {{ color: #0b5cad; }}
  </style>
</head>
<body>
  <h1>Runlater <small>{escape(version)}</small></h1>
  <p>Delayed HTTP tasks, cron jobs and queues. This server is running.</p>
  <ul>
{items}
  </ul>
  <p>Create an API key with <code>runlater bootstrap</code>, then send
     <code>Authorization: Bearer &lt;key&gt;</code> with every API request.</p>
</body>
</html>
"""


def install(app: Quart, version: str) -> None:
    html = page(version)

    @hide
    async def home() -> Any:
        return Response(html, content_type="text/html; charset=utf-8")

    app.add_url_rule("/", "home", home)
