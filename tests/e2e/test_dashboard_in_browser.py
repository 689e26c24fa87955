"""The dashboard in a real headless Chromium (Playwright, Debian's ``chromium``) against a real
``runlater serve``: sign in by the bootstrap link, make an API key and see it once, invite a
member whose mail is found in the server log (no SMTP) or at a real SMTP server, the member's
role enforced in the page and on a direct POST, switch organization, sign out.

Each page is saved as a screenshot in ``test-artifacts/screenshots/`` (git-ignored).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.helpers.process import ROOT, Serve, base_env, free_port, wait_until
from tests.helpers.smtp import smtp_server

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
LINK = re.compile(r"(http://127\.0\.0\.1:\d+/(?:login|invite)/[A-Za-z0-9_-]{43})")


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # Playwright's sync API runs its own asyncio loop. The suite imports trio-asyncio, whose
    # event-loop policy makes loops only inside trio; these tests are synchronous (no trio
    # runs meanwhile), so the standard policy is put back while the browser lives.
    trio_policy = asyncio.get_event_loop_policy()
    asyncio.set_event_loop_policy(asyncio.DefaultEventLoopPolicy())
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(executable_path=CHROMIUM)
            try:
                yield chromium
            finally:
                chromium.close()
    finally:
        asyncio.set_event_loop_policy(trio_policy)


def shot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def bootstrap_link(env: dict[str, str], org: str, email: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "runlater", "bootstrap", "--org", org, "--email", email],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("pk_live_")  # the key stays the last line
    [line] = [x for x in lines if x.startswith("Sign in to the dashboard")]
    found = LINK.search(line)
    assert found, line
    return found.group(1)


def node_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    return base_env(
        RUNLATER_DATABASE_URL=database_url,
        RUNLATER_BASE_URL=f"http://127.0.0.1:{port}",
        **extra,
    )


def sign_in_by_link(page: Page, link: str) -> None:
    page.goto(link)
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("status")).to_contain_text("You are signed in.")


def invite(page: Page, email: str, role: str) -> None:
    page.get_by_role("link", name="Members").click()
    page.get_by_label("E-mail address").fill(email)
    page.get_by_label("Role", exact=True).select_option(role)
    page.get_by_role("button", name="Send invitation").click()
    expect(page.get_by_role("status")).to_contain_text("The invitation is on its way.")


def test_owner_signs_in_makes_a_key_invites_a_member_whose_role_holds(
    browser: Browser, database_url: str
) -> None:
    port = free_port()
    env = node_env(database_url, port)
    link = bootstrap_link(env, "Acme", "owner@acme.test")
    bootstrap_link(env, "Globex", "owner@acme.test")  # a second organization, same person
    node = Serve(env, port=port).start()
    try:
        owner = browser.new_context()
        page = owner.new_page()
        page.goto(node.url + "/")
        expect(page.get_by_role("heading", name="Sign in to Runlater")).to_be_visible()
        shot(page, "01-sign-in")
        page.get_by_label("E-mail address").fill("not an address")
        page.get_by_role("button", name="E-mail me a sign-in link").click()
        expect(page.get_by_text("enter an address like name@example.com")).to_be_visible()
        shot(page, "02-sign-in-error")

        page.goto(link)
        shot(page, "03-confirm")
        page.get_by_role("button", name="Sign in").click()
        expect(page.get_by_role("heading", name="Acme")).to_be_visible()
        shot(page, "04-home")

        # An API key, shown once.
        page.get_by_role("link", name="API keys").click()
        page.get_by_label("Name (optional)").fill("production app")
        page.get_by_role("button", name="Create API key").click()
        secret = page.locator("#new-key").inner_text()
        assert secret.startswith("pk_live_") and len(secret) > 40
        shot(page, "05-key-created")
        page.get_by_role("link", name="API keys").click()  # the list never shows a secret
        expect(page.locator("#new-key")).to_have_count(0)
        expect(page.get_by_role("cell", name="production app", exact=True)).to_be_visible()
        assert secret not in page.content()
        shot(page, "06-keys")

        # Invite a member: no SMTP here, so the mail is in the server log.
        invite(page, "mia@acme.test", "member")
        shot(page, "07-members")
        invite_link = wait_until(
            lambda: next((m for m in LINK.findall(node.output()) if "/invite/" in m), None),
            15,
            "the invitation's link in the server log",
        )
        member = browser.new_context()
        mia = member.new_page()
        mia.goto(invite_link)
        expect(mia.get_by_role("heading", name="Join Acme")).to_be_visible()
        shot(mia, "08-accept-invitation")
        mia.get_by_role("button", name="Accept and sign in").click()
        expect(mia.get_by_role("status")).to_contain_text("You joined the organization")
        # The page offers a member no management ...
        mia.get_by_role("link", name="API keys").click()
        expect(mia.get_by_role("button", name="Create API key")).to_have_count(0)
        expect(mia.get_by_role("button", name=re.compile("^Revoke"))).to_have_count(0)
        shot(mia, "09-member-keys")
        # ... and the server refuses a direct POST with the member's own valid session.
        csrf = mia.locator('input[name="csrf_token"]').first.get_attribute("value")
        answer = member.request.post(
            node.url + "/keys",
            form={"name": "sneaky", "csrf_token": csrf or ""},
            headers={"Origin": node.url},
        )
        assert answer.status == 403 and "does not allow this" in answer.text()
        mia.goto(node.url + "/settings")
        expect(mia.get_by_text("Only owners and admins see the signing secret.")).to_be_visible()
        shot(mia, "10-member-settings")

        # The owner: settings, the audit log, switching organization, signing out.
        page.get_by_role("link", name="Settings").click()
        expect(page.get_by_text("whsec_")).to_be_visible()
        shot(page, "11-settings")
        dark = browser.new_context(color_scheme="dark", storage_state=owner.storage_state())
        dark_page = dark.new_page()
        dark_page.goto(node.url + "/members")
        expect(dark_page.get_by_role("heading", name="Members")).to_be_visible()
        background = dark_page.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(11, 17, 32)", background  # the dark palette follows the system
        shot(dark_page, "11b-members-dark")
        dark.close()
        page.get_by_role("link", name="Audit log").click()
        expect(page.get_by_text("POST /api/v1/api-keys")).to_be_visible()
        shot(page, "12-audit-log")
        page.get_by_label("Organization").select_option(label="Globex")
        page.get_by_role("button", name="Switch").click()
        expect(page.get_by_role("heading", name="Globex")).to_be_visible()
        shot(page, "13-switched")
        page.get_by_role("button", name="Sign out").click()
        expect(page.get_by_role("status")).to_contain_text("You are signed out.")
        page.goto(node.url + "/keys")
        expect(page.get_by_role("heading", name="Sign in to Runlater")).to_be_visible()
        shot(page, "14-signed-out")
        owner.close()
        member.close()
    finally:
        node.stop()


def test_an_invitation_reaches_a_real_smtp_server(browser: Browser, database_url: str) -> None:
    with smtp_server() as (inbox, smtp_port):
        port = free_port()
        env = node_env(database_url, port, RUNLATER_SMTP_URL=f"smtp://127.0.0.1:{smtp_port}")
        link = bootstrap_link(env, "Acme", "owner@acme.test")
        node = Serve(env, port=port).start()
        try:
            context = browser.new_context()
            page = context.new_page()
            sign_in_by_link(page, link)
            invite(page, "sam@acme.test", "admin")
            wait_until(inbox.count, 15, "the mail at the SMTP server")
            [message] = inbox.messages
            assert inbox.recipients == [["sam@acme.test"]]
            assert message["Subject"] and "Acme" in message["Subject"]
            plain = message.get_body(preferencelist=("plain",))
            assert plain is not None, message
            text = plain.get_content()
            invite_link = LINK.search(text)
            assert invite_link, text
            guest = browser.new_context()
            sam = guest.new_page()
            sam.goto(invite_link.group(1))
            sam.get_by_role("button", name="Accept and sign in").click()
            expect(sam.get_by_role("status")).to_contain_text("You joined the organization")
            expect(sam.get_by_text("sam@acme.test · admin")).to_be_visible()
            shot(sam, "15-joined-by-smtp-mail")
            context.close()
            guest.close()
        finally:
            node.stop()
    assert Path(SCREENSHOTS / "15-joined-by-smtp-mail.png").exists()
