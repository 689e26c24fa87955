"""The mail outbox and the mailer against real Postgres and a real SMTP server (aiosmtpd).

Mails are written with ``enqueue_mail`` inside a transaction of their own, as the code that
causes them does; the mailer is driven by ``run_once``. Time is moved by setting a mail's
``next_attempt_at`` (or lease) back, as another minute of the database's clock would.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote
from uuid import UUID

import asyncpg
import pytest
import trio
import trio_asyncio
import trustme

from runlater.actors.janitor import Janitor
from runlater.actors.listener import Listener
from runlater.actors.mailer import MAX_ATTEMPTS, RETRY_DELAYS_S, Mailer
from runlater.actors.messages import Wake
from runlater.clock import ManualClock
from runlater.errors import NotFound
from runlater.logs import fields_of
from runlater.mail import smtp
from runlater.mail.compose import login_mail
from runlater.mail.message import Mail
from runlater.store.mail import MailResult, enqueue_mail
from runlater.store.postgres import Store
from tests.helpers.db import raw_connection, sql
from tests.helpers.factories import make_org
from tests.helpers.process import free_port
from tests.helpers.smtp import BUSY_DOMAIN, REFUSED_DOMAIN, HangingServer, smtp_server

DOMAIN = "runlater.test"
SENDER = "Runlater <runlater@runlater.test>"
LINK = "https://runlater.test/login/tok-123"


class Rollback(Exception):
    pass


@pytest.fixture
async def db(store: Store) -> AsyncIterator[asyncpg.Connection]:
    """Another session on the test's database (as the code that writes mails has)."""
    async with raw_connection(store.dsn) as conn:
        yield conn


async def enqueue(
    conn: asyncpg.Connection,
    mail: Mail,
    *,
    organization_id: UUID | None = None,
    rollback: bool = False,
) -> UUID:
    """``enqueue_mail`` in a transaction that commits (or is rolled back)."""

    async def unit() -> UUID:
        async with conn.transaction():
            mail_id = await enqueue_mail(conn, mail, organization_id=organization_id, domain=DOMAIN)
            if rollback:
                raise Rollback
            return mail_id

    return await trio_asyncio.aio_as_trio(unit)()


def a_mail(to: str = "ada@example.test") -> Mail:
    return login_mail(to=to, link=LINK, minutes=15)


async def row(conn: asyncpg.Connection, mail_id: UUID) -> dict[str, Any]:
    found = await sql(
        conn,
        "select *, extract(epoch from (next_attempt_at - now()))::float8 as due_in_s "
        "from mails where id = $1",
        mail_id,
    )
    assert len(found) == 1
    return found[0]


async def make_due(conn: asyncpg.Connection, mail_id: UUID) -> None:
    """The retry's time has come (the database's clock moved on)."""
    await sql(conn, "update mails set next_attempt_at = now() where id = $1", mail_id)


def mailer(store: Store, url: str | None, **kwargs: Any) -> Mailer:
    return Mailer(store, smtp_url=url, sender=SENDER, **kwargs)


async def test_a_committed_mail_is_delivered_once_with_both_parts_and_its_message_id(
    store: Store, db: asyncpg.Connection
) -> None:
    org, _ = await make_org(store)
    mail_id = await enqueue(db, a_mail(), organization_id=org)
    with smtp_server() as (inbox, port):
        first = await mailer(store, f"smtp://127.0.0.1:{port}").run_once()
        again = await mailer(store, f"smtp://127.0.0.1:{port}").run_once()
        assert (first.claimed, first.sent, again.claimed) == (1, 1, 0)
        assert inbox.count() == 1
    stored = await row(db, mail_id)
    assert stored["message_id"] == f"<{mail_id}@{DOMAIN}>"
    assert (stored["status"], stored["attempts"], stored["last_error"]) == ("sent", 1, None)
    assert stored["sent_at"] is not None and stored["lease_until"] is None
    assert stored["organization_id"] == org

    msg = inbox.messages[0]
    assert inbox.recipients == [["ada@example.test"]]
    assert msg["Message-ID"] == stored["message_id"]
    assert msg["To"] == "ada@example.test"
    assert msg["From"] == SENDER
    assert msg["Subject"] == "Sign in to Runlater"
    assert msg["Date"] is not None
    assert msg.get_content_type() == "multipart/alternative"
    parts = {part.get_content_type(): part.get_content() for part in msg.iter_parts()}
    assert set(parts) == {"text/plain", "text/html"}
    assert LINK in parts["text/plain"] and LINK in parts["text/html"]
    assert parts["text/plain"].replace("\r\n", "\n") == stored["text_body"]


async def test_a_rolled_back_mail_is_never_sent(store: Store, db: asyncpg.Connection) -> None:
    with pytest.raises(Rollback):
        await enqueue(db, a_mail(), rollback=True)
    with smtp_server() as (inbox, port):
        result = await mailer(store, f"smtp://127.0.0.1:{port}").run_once()
    assert result.claimed == 0
    assert inbox.count() == 0
    assert await sql(db, "select id from mails") == []


class ObservedMailer(Mailer):
    """A mailer that tells when a pass is over (it waits for a wake-up or its poll next)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.passed = trio.Event()

    async def _pass(self) -> float:
        wait_s = await super()._pass()
        self.passed.set()
        return wait_s


async def test_a_commit_wakes_the_mailer_through_notify(
    store: Store, db: asyncpg.Connection
) -> None:
    """The mailer polls only every hour here, and is idle when the mail is written: it is
    sent because the commit's NOTIFY woke it (the first attempt follows the commit at once)."""
    send, recv = trio.open_memory_channel[Wake](16)
    listener = Listener(store.dsn, {"runlater_mail": [send]})
    with smtp_server() as (inbox, port):
        actor = ObservedMailer(
            store, smtp_url=f"smtp://127.0.0.1:{port}", sender=SENDER, poll_s=3600, mailbox=recv
        )
        async with trio.open_nursery() as nursery:
            nursery.start_soon(listener.run)
            with trio.fail_after(10):
                await listener.connected.wait()
            while True:  # the "listener connected" wake-up, sent with `connected`
                try:
                    recv.receive_nowait()
                except trio.WouldBlock:
                    break
            nursery.start_soon(actor.run)
            with trio.fail_after(10):
                await actor.passed.wait()  # found nothing; now waits an hour or a wake-up
            mail_id = await enqueue(db, a_mail())
            with trio.fail_after(10):
                while (await row(db, mail_id))["status"] != "sent":
                    await trio.sleep(0.02)
            nursery.cancel_scope.cancel()
        assert inbox.count() == 1


async def test_smtp_down_is_retried_with_backoff_then_delivered(
    store: Store, db: asyncpg.Connection
) -> None:
    port = free_port()  # nothing listens there yet
    actor = mailer(store, f"smtp://127.0.0.1:{port}")
    mail_id = await enqueue(db, a_mail())

    first = await actor.run_once()
    assert (first.claimed, first.retrying) == (1, 1)
    stored = await row(db, mail_id)
    assert (stored["status"], stored["attempts"]) == ("pending", 1)
    assert "connect" in stored["last_error"]
    assert RETRY_DELAYS_S[0] - 1 < stored["due_in_s"] <= RETRY_DELAYS_S[0]
    assert (await actor.run_once()).claimed == 0  # not due yet
    due_in = await store.next_mail_due_in()
    assert due_in is not None and 0 < due_in <= RETRY_DELAYS_S[0]

    await make_due(db, mail_id)
    assert (await actor.run_once()).retrying == 1
    stored = await row(db, mail_id)
    assert (stored["status"], stored["attempts"]) == ("pending", 2)
    assert RETRY_DELAYS_S[1] - 1 < stored["due_in_s"] <= RETRY_DELAYS_S[1]  # longer each time

    with smtp_server(port) as (inbox, _):
        await make_due(db, mail_id)
        assert (await actor.run_once()).sent == 1
        assert (await actor.run_once()).claimed == 0
        assert inbox.count() == 1
    stored = await row(db, mail_id)
    assert (stored["status"], stored["attempts"]) == ("sent", 3)
    assert inbox.messages[0]["Message-ID"] == stored["message_id"]


async def test_a_server_that_never_answers_is_a_bounded_transient_failure(
    store: Store, db: asyncpg.Connection
) -> None:
    hanging = HangingServer()
    try:
        mail_id = await enqueue(db, a_mail())
        actor = mailer(store, f"smtp://127.0.0.1:{hanging.port}", send_timeout_s=0.5)
        with trio.fail_after(10):
            result = await actor.run_once()
    finally:
        hanging.close()
    assert (result.claimed, result.retrying) == (1, 1)
    stored = await row(db, mail_id)
    assert stored["status"] == "pending"
    assert "timed out" in stored["last_error"] or "no answer" in stored["last_error"]


async def test_a_permanent_refusal_fails_the_mail_with_its_error(
    store: Store, db: asyncpg.Connection
) -> None:
    """550 is for good; 451 (try later) is retried."""
    refused = await enqueue(db, a_mail(f"nobody@{REFUSED_DOMAIN}"))
    busy = await enqueue(db, a_mail(f"later@{BUSY_DOMAIN}"))
    fine = await enqueue(db, a_mail("ada@example.test"))
    with smtp_server() as (inbox, port):
        actor = mailer(store, f"smtp://127.0.0.1:{port}")
        result = await actor.run_once()
        assert (result.claimed, result.sent, result.failed, result.retrying) == (3, 1, 1, 1)
        await make_due(db, refused)
        await make_due(db, busy)
        assert (await actor.run_once()).claimed == 1  # the busy one only
        assert inbox.recipients == [["ada@example.test"]]
    stored = await row(db, refused)
    assert (stored["status"], stored["attempts"]) == ("failed", 1)
    assert "550" in stored["last_error"] and stored["sent_at"] is None
    stored = await row(db, busy)
    assert (stored["status"], stored["attempts"]) == ("pending", 2)
    assert "451" in stored["last_error"]
    assert (await row(db, fine))["status"] == "sent"


async def test_transient_failures_end_in_failed_after_the_last_attempt(
    store: Store, db: asyncpg.Connection
) -> None:
    actor = mailer(store, f"smtp://127.0.0.1:{free_port()}")
    mail_id = await enqueue(db, a_mail())
    for attempt in range(1, MAX_ATTEMPTS + 1):
        await make_due(db, mail_id)
        assert (await actor.run_once()).claimed == 1
        assert (await row(db, mail_id))["attempts"] == attempt
    stored = await row(db, mail_id)
    assert (stored["status"], stored["attempts"]) == ("failed", MAX_ATTEMPTS)
    await make_due(db, mail_id)
    assert (await actor.run_once()).claimed == 0


async def test_without_an_smtp_url_the_mail_is_logged_with_its_link(
    store: Store, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    mail_id = await enqueue(db, a_mail())
    with caplog.at_level(logging.INFO, logger="runlater.actors.mailer"):
        result = await mailer(store, None).run_once()
    assert (result.claimed, result.logged) == (1, 1)
    logged = [
        (r.levelno, fields_of(r)) for r in caplog.records if r.name == "runlater.actors.mailer"
    ]
    assert len(logged) == 1
    level, fields = logged[0]
    assert level == logging.INFO
    assert fields["to"] == "ada@example.test"
    assert fields["subject"] == "Sign in to Runlater"
    assert LINK in fields["text"]
    assert fields["text"] == a_mail().text  # the whole text part
    stored = await row(db, mail_id)
    assert (stored["status"], stored["attempts"]) == ("logged", 1)
    assert stored["sent_at"] is not None
    assert (await mailer(store, None).run_once()).claimed == 0


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
async def test_auth_with_user_and_password(store: Store, db: asyncpg.Connection) -> None:
    """User and password come URL-decoded from the URL; a refused login is retried (it is the
    operator's configuration, not the mail, that is wrong)."""
    user, password = "mailer@runlater.test", "p@ss:w/rd %"
    with smtp_server(user=user, password=password) as (inbox, port):
        wrong = await enqueue(db, a_mail("wrong@example.test"))
        bad_url = f"smtp://{quote(user, safe='')}:nope@127.0.0.1:{port}"
        assert (await mailer(store, bad_url).run_once()).retrying == 1
        stored = await row(db, wrong)
        assert stored["status"] == "pending" and "535" in stored["last_error"]
        assert inbox.count() == 0

        await make_due(db, wrong)
        url = f"smtp://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}"
        assert (await mailer(store, url).run_once()).sent == 1
        assert inbox.logins == [(user, password)]
        assert inbox.recipients == [["wrong@example.test"]]


async def test_two_mailers_send_each_mail_once(store: Store, db: asyncpg.Connection) -> None:
    ids = [await enqueue(db, a_mail(f"person{i}@example.test")) for i in range(12)]
    with smtp_server() as (inbox, port):
        url = f"smtp://127.0.0.1:{port}"
        a, b = mailer(store, url, batch=4), mailer(store, url, batch=4)
        for _ in range(4):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(a.run_once)
                nursery.start_soon(b.run_once)
        assert sorted(r[0] for r in inbox.recipients) == sorted(
            f"person{i}@example.test" for i in range(12)
        )
    statuses = await sql(db, "select status from mails where id = any($1::uuid[])", ids)
    assert {r["status"] for r in statuses} == {"sent"}


async def test_an_expired_lease_is_claimed_again_and_the_late_outcome_is_fenced(
    store: Store, db: asyncpg.Connection
) -> None:
    mail_id = await enqueue(db, a_mail())
    [first] = await store.claim_mails(5, 60)
    assert (first["id"], first["attempts"]) == (mail_id, 1)
    assert await store.claim_mails(5, 60) == []  # leased
    due_in = await store.next_mail_due_in()
    assert due_in is not None and 55 < due_in <= 60  # when the lease runs out

    await sql(
        db, "update mails set lease_until = now() - interval '1 second' where id = $1", mail_id
    )
    [second] = await store.claim_mails(5, 60)
    assert (second["id"], second["attempts"], second["message_id"]) == (
        mail_id,
        2,
        first["message_id"],
    )
    # The first claimer comes back late: its outcome changes nothing.
    assert await store.finish_mails([MailResult(mail_id, 1, "failed", "late")]) == 0
    assert (await row(db, mail_id))["status"] == "sending"
    assert await store.finish_mails([MailResult(mail_id, 2, "sent")]) == 1
    assert (await row(db, mail_id))["status"] == "sent"
    assert await store.next_mail_due_in() is None


async def test_the_log_lists_mails_newest_first_without_bodies(
    store: Store, db: asyncpg.Connection
) -> None:
    ids = [await enqueue(db, a_mail(f"p{i}@example.test")) for i in range(3)]
    listed = await store.list_mails(limit=2, offset=0)
    assert [r["id"] for r in listed] == [ids[2], ids[1]]
    assert "text_body" not in listed[0] and "html_body" not in listed[0]
    assert [r["id"] for r in await store.list_mails(limit=2, offset=2)] == [ids[0]]
    full = await store.get_mail(ids[0])
    assert full["to_address"] == "p0@example.test" and LINK in full["text_body"]
    with pytest.raises(NotFound):
        await store.get_mail(UUID(int=1))


async def test_the_janitor_purges_only_finished_mails_older_than_30_days(
    store: Store, db: asyncpg.Connection
) -> None:
    names = ["sent_31", "logged_31", "failed_31", "sent_29", "pending_31", "sent_new"]
    ids = {name: await enqueue(db, a_mail(f"{name}@example.test")) for name in names}
    for name, mail_id in ids.items():
        status, _, days = name.partition("_")
        await sql(
            db,
            "update mails set status = $2, inserted_at = now() - make_interval(days => $3) "
            "where id = $1",
            mail_id,
            status,
            0 if days == "new" else int(days),
        )
    janitor = Janitor(store, ManualClock(datetime.now(UTC)), interval_s=300)
    result = await janitor.run_once()
    assert result.mails_deleted == 3
    left = {r["to_address"].split("@")[0] for r in await sql(db, "select to_address from mails")}
    assert left == {"sent_29", "pending_31", "sent_new"}
    assert (await janitor.run_once()).mails_deleted == 0


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def trusting(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    return context


@pytest.mark.parametrize("scheme", ["smtp", "smtps"])
async def test_tls_starttls_when_offered_and_smtps_verify_the_certificate(
    store: Store, db: asyncpg.Connection, ca: trustme.CA, scheme: str
) -> None:
    """smtp:// upgrades with STARTTLS when offered, smtps:// speaks TLS at once; both check
    the server's certificate: with the system's CAs this test certificate is refused (a
    transient failure: the operator's to fix), with the test CA the mail goes out."""
    context = server_tls(ca)
    starttls, implicit_tls = (context, None) if scheme == "smtp" else (None, context)
    with smtp_server(starttls=starttls, implicit_tls=implicit_tls) as (inbox, port):
        url = f"{scheme}://127.0.0.1:{port}"
        mail_id = await enqueue(db, a_mail())
        assert (await mailer(store, url).run_once()).retrying == 1
        assert "certificate" in (await row(db, mail_id))["last_error"].lower()
        assert inbox.count() == 0

        await make_due(db, mail_id)
        send = functools.partial(smtp.send, tls_context=trusting(ca))
        assert (await mailer(store, url, send=send).run_once()).sent == 1
        assert inbox.count() == 1
        assert inbox.tls == [True]
