"""The public status page and badges in a real headless Chromium against a real server: a
monitor that goes down shows as down on the open page without a reload; a badge renders as
SVG. Screenshots go to test-artifacts/screenshots/."""

from __future__ import annotations

import httpx
from playwright.sync_api import Browser, expect

from tests.e2e.test_dashboard_in_browser import browser, node_env, shot  # noqa: F401
from tests.helpers.process import Serve, api, bootstrap, free_port

# The page polls every 10 s and the server caches its answer 5 s.
POLL_TIMEOUT_MS = 30_000


def test_a_monitor_going_down_shows_on_the_public_page_without_a_reload(
    browser: Browser,  # noqa: F811
    database_url: str,
) -> None:
    port = free_port()
    env = node_env(database_url, port)
    serve = Serve(env, port=port).start()
    try:
        key = bootstrap(env, "Acme")
        made = [
            api(
                serve, key, "POST", "/monitors", json={"name": name, "interval_seconds": 3600}
            ).json()["data"]
            for name in ("Nightly backup", "Invoice run")
        ]
        for monitor in made:
            assert httpx.post(monitor["ping_url"], timeout=10).status_code == 200
        saved = api(
            serve,
            key,
            "PUT",
            "/status-page",
            json={
                "enabled": True,
                "slug": "acme",
                "title": "Acme status",
                "items": [{"type": "monitor", "id": m["id"]} for m in made],
            },
        )
        assert saved.status_code == 200, saved.text
        page = browser.new_page()
        page.goto(serve.url + "/s/acme")
        expect(page.get_by_role("status")).to_have_text("All systems operational")
        backup = page.locator(".status-item", has_text="Nightly backup")
        expect(backup.locator("[data-role=state]")).to_have_text("Up")
        shot(page, "40-status-page-up")
        assert httpx.post(made[0]["ping_url"] + "/fail", timeout=10).status_code == 200
        expect(backup.locator("[data-role=state]")).to_have_text("Down", timeout=POLL_TIMEOUT_MS)
        expect(page.get_by_role("status")).to_have_text("Some systems are down")
        invoices = page.locator(".status-item", has_text="Invoice run")
        expect(invoices.locator("[data-role=state]")).to_have_text("Up")
        shot(page, "41-status-page-down")

        badge = browser.new_page()
        response = badge.goto(f"{serve.url}/badge/{made[0]['badge_token']}/status.svg")
        assert response is not None and response.status == 200
        assert badge.evaluate("document.documentElement.tagName") == "svg"
        assert badge.evaluate("document.documentElement.getBBox().width") > 50
        expect(badge.locator("text").nth(1)).to_have_text("down")
        badge.goto(f"{serve.url}/badge/{made[1]['badge_token']}/uptime.svg")
        expect(badge.locator("text").nth(1)).to_have_text("100.00%")
        # As people embed them: <img> tags in a README or a page.
        readme = browser.new_page()
        readme.goto(serve.url + "/s/acme")  # any page of the server's origin
        readme.set_content(
            "<p>"
            f"<img id=status src='{serve.url}/badge/{made[0]['badge_token']}/status.svg'> "
            f"<img id=uptime src='{serve.url}/badge/{made[1]['badge_token']}/uptime.svg'>"
            "</p>"
        )
        for image in ("status", "uptime"):
            readme.wait_for_function(f"document.getElementById('{image}').complete")
            width = readme.evaluate(f"document.getElementById('{image}').naturalWidth")
            assert width > 50, (image, width)
        shot(readme, "42-badges")
        system = browser.new_page()
        system.goto(serve.url + "/status")
        expect(system.get_by_role("heading", name="Runlater status")).to_be_visible()
        shot(system, "44-runlater-status")
    finally:
        serve.stop()
