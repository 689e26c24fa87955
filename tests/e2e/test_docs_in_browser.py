"""The API docs render in a real browser: headless Chromium loads ``/api/v1/docs`` from a real
``runlater serve`` and runs Swagger UI against the live spec.

The spec is OpenAPI 3.1; a Swagger UI before 5 answers it with "Unable to render this
definition", which only a browser shows (the page and the spec each answer 200)."""

from __future__ import annotations

import shutil
import subprocess
import tempfile

import pytest

from tests.helpers.process import Serve, base_env

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--virtual-time-budget=15000",  # let the scripts fetch the spec and render
    "--dump-dom",
]


def rendered(url: str) -> str:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    assert chromium, "Chromium is needed for the browser tests: scripts/test installs it"
    with tempfile.TemporaryDirectory() as profile:
        done = subprocess.run(
            [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", url],
            capture_output=True,
            text=True,
            timeout=90,
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.mark.slow
def test_swagger_ui_renders_every_route_of_the_live_spec(database_url: str) -> None:
    node = Serve(base_env(RUNLATER_DATABASE_URL=database_url)).start()
    try:
        for path in ("/api/v1/docs", "/api/v1/docs/"):
            dom = rendered(node.url + path)
            assert "Unable to render this definition" not in dom, path
            assert "Runlater API" in dom, path
            assert 'class="opblock ' in dom, path  # operations are drawn
            for route in ("/api/v1/tasks", "/api/v1/sync", "/api/v1/tasks/batch"):
                assert route in dom, (path, route)
    finally:
        node.stop()
