"""A node SIGKILLed while sending a mail: the mail is sent by the next node, once, with the
Message-ID it was written with.

Node A's SMTP server accepts the connection and never answers, so A dies in the middle of
the send with the mail leased ('sending'). The lease then runs out (set back here, as the
database's clock would after a minute) and node B, started against a working SMTP server,
sends it. Without the lease (a claimed mail that nobody reclaims) it would stay 'sending'
for ever; without the fenced claim it could be sent more than once.
"""

from __future__ import annotations

import asyncio
import time
from uuid import UUID

import asyncpg
import pytest

from runlater.mail.compose import login_mail
from runlater.store.mail import enqueue_mail
from tests.helpers.process import Serve, base_env, sql, wait_until
from tests.helpers.smtp import HangingServer, smtp_server

pytestmark = pytest.mark.slow

LINK = "https://runlater.test/login/durable"


def enqueue_committed(dsn: str) -> UUID:
    """One mail written through the store's ``enqueue_mail`` in a committed transaction."""

    async def go() -> UUID:
        conn = await asyncpg.connect(dsn)
        try:
            async with conn.transaction():
                mail = login_mail(to="ada@example.test", link=LINK, minutes=15)
                return await enqueue_mail(conn, mail, organization_id=None, domain="runlater.test")
        finally:
            await conn.close()

    return asyncio.run(go())


def mail_row(dsn: str, mail_id: UUID) -> dict:
    [row] = sql(dsn, "select * from mails where id = $1", mail_id)
    return row


def test_a_mail_interrupted_by_sigkill_is_sent_once_by_the_next_node(database_url: str) -> None:
    hanging = HangingServer()
    env = base_env(RUNLATER_DATABASE_URL=database_url)
    node_a = Serve({**env, "RUNLATER_SMTP_URL": f"smtp://127.0.0.1:{hanging.port}"})
    node_b: Serve | None = None
    try:
        node_a.start()
        mail_id = enqueue_committed(database_url)
        wait_until(
            lambda: (
                mail_row(database_url, mail_id)["status"] == "sending" and hanging.connections >= 1
            ),
            15,
            "node A to be in the middle of sending the mail",
            0.02,
        )
        node_a.kill()
        row = mail_row(database_url, mail_id)
        assert (row["status"], row["attempts"], row["sent_at"]) == ("sending", 1, None)
        message_id = row["message_id"]
        assert message_id == f"<{mail_id}@runlater.test>"

        # The lease node A held runs out.
        sql(
            database_url,
            "update mails set lease_until = now() - interval '1 second' where id = $1",
            mail_id,
        )
        with smtp_server() as (inbox, port):
            node_b = Serve({**env, "RUNLATER_SMTP_URL": f"smtp://127.0.0.1:{port}"}).start()
            wait_until(lambda: inbox.count() >= 1, 20, "node B to send the mail", 0.05)
            wait_until(
                lambda: mail_row(database_url, mail_id)["status"] == "sent",
                10,
                "the mail to be recorded as sent",
                0.05,
            )
            # Nothing claims a sent mail again: no second copy within a few of B's polls.
            time.sleep(2.5)
            assert inbox.count() == 1
            assert inbox.recipients == [["ada@example.test"]]
            assert inbox.messages[0]["Message-ID"] == message_id
            body = inbox.messages[0].get_body(preferencelist=("plain",))
            assert body is not None and LINK in body.get_content()
        row = mail_row(database_url, mail_id)
        assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)
    finally:
        node_a.kill()
        if node_b is not None:
            node_b.stop()
        hanging.close()
