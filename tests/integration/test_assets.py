"""The dashboard's front-end assets come from the app itself (no CDN), each vendored package
with its license, and the files are the ones scripts/vendor-assets recorded."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from runlater.clock import SystemClock
from runlater.config import Settings
from runlater.store.postgres import Store
from runlater.web.app import create_app

VENDOR = Path(__file__).resolve().parents[2] / "runlater/web/pages/static/vendor"


async def test_every_vendored_file_is_served_with_its_license_and_recorded_hash(
    store: Store,
) -> None:
    client = create_app(store, Settings(), SystemClock()).test_client()
    sums: dict[str, str] = {}
    for line in (VENDOR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        sums[name] = digest
    assert set(sums) == {"htmx/htmx.min.js", "uplot/uPlot.iife.min.js", "uplot/uPlot.min.css"}
    for name, digest in sums.items():
        response = await client.get(f"/assets/vendor/{name}")
        assert response.status_code == 200, name
        body = await response.get_data(as_text=False)
        assert hashlib.sha256(body).hexdigest() == digest, name
        package = name.split("/")[0]
        license_text = await (await client.get(f"/assets/vendor/{package}/LICENSE")).get_data(
            as_text=True
        )
        assert "Permission" in license_text or "BSD" in license_text, package
        assert re.fullmatch(r"\S+ \d+\.\d+\.\d+\n", (VENDOR / package / "VERSION").read_text())


async def test_pages_load_nothing_from_another_host(store: Store) -> None:
    client = create_app(store, Settings(), SystemClock()).test_client()
    html = await (await client.get("/login")).get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert "/assets/vendor/htmx/htmx.min.js" in sources and "/assets/app.css" in sources
    assert not [s for s in sources if s.startswith(("http:", "https:", "//"))]
