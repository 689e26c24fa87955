"""What a new user opens first: ``/`` (the address the startup banner prints) and the API docs,
as typed, with or without a trailing slash."""

from __future__ import annotations

import re

from runlater import __version__
from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app


async def test_the_root_is_the_sign_in_page_and_links_to_docs_and_health(store: Store) -> None:
    client = create_app(store, Settings(), SystemClock()).test_client()
    response = await client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    html = await response.get_data(as_text=True)
    assert "Sign in to Runlater" in html and f"Runlater {__version__}" in html
    links = re.findall(r'href="(/[^"]*)"', html)
    expected = ["/api/v1/docs", "/api/v1/openapi.json", "/health", "/health/ready", "/metrics"]
    assert [link for link in links if link in expected] == expected
    for link in links:  # every link works without a key or a session
        assert (await client.get(link)).status_code == 200, link


async def test_the_docs_answer_with_and_without_a_trailing_slash(store: Store) -> None:
    client = create_app(store, Settings(), SystemClock()).test_client()
    pages = [await client.get(path) for path in ("/api/v1/docs", "/api/v1/docs/")]
    assert [p.status_code for p in pages] == [200, 200]
    texts = [await p.get_data(as_text=True) for p in pages]
    assert texts[0] == texts[1] and "swagger-ui-bundle.js" in texts[0]
