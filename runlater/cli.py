"""The ``runlater`` command: serve, migrate, bootstrap, receive.

Without ``RUNLATER_DATABASE_URL`` every command uses the embedded Postgres in
``RUNLATER_DATA_DIR``: the one a running ``serve`` started, or its own for the command's
duration.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import textwrap
from collections.abc import Iterator
from functools import partial
from typing import Any

import trio

from runlater import __version__, apikeys
from runlater.config import Settings, load_settings
from runlater.domain.people import PeopleService, clean_email, slugify
from runlater.errors import InvalidInput, RunlaterError, SupervisorGaveUp
from runlater.logs import setup_logging
from runlater.node import OutboundFactory, outbound_transport, run_node
from runlater.receive import check_secret, receive
from runlater.store import bridge
from runlater.store.embedded import EmbeddedPostgres, default_data_dir
from runlater.store.postgres import Store

log = logging.getLogger("runlater.cli")

EXIT_GAVE_UP = 1
EXIT_USAGE = 2


@contextlib.contextmanager
def database(settings: Settings) -> Iterator[str]:
    """The DSN to use: the configured URL, or the embedded Postgres (started if needed)."""
    if settings.database_url:
        yield settings.database_url
        return
    embedded = EmbeddedPostgres(settings.data_dir or default_data_dir())
    dsn = embedded.start()
    log.info(
        "embedded postgres data_dir=%s port=%s owned=%s",
        embedded.data_dir,
        embedded.port,
        embedded.owned,
    )
    try:
        yield dsn
    finally:
        embedded.stop()


async def _serve(settings: Settings, dsn: str, outbound: OutboundFactory) -> None:
    async with bridge.open_loop(), trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        await nursery.start(partial(run_node, settings, dsn, outbound=outbound))
        print(
            f"Runlater {__version__} serving on http://{settings.host}:{settings.port}", flush=True
        )


async def _stop_on_signal(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            log.info("stopping on signal=%s", signal.Signals(signum).name)
            scope.cancel()
            return


async def _with_store(dsn: str, action: Any) -> Any:
    async with bridge.open_loop():
        store = await Store.open(dsn, pool_size=2)
        try:
            return await action(store)
        finally:
            await store.close()


async def _bootstrap(
    store: Store, settings: Settings, org: str, email: str, tier: str
) -> tuple[dict, bool, str, str]:
    await store.migrate()
    key = apikeys.generate()
    row, created = await store.bootstrap(
        org_name=org,
        slug=slugify(org),
        tier=tier,
        secret=apikeys.new_webhook_secret(),
        email=email,
        key_id=key.key_id,
        key_hash=key.key_hash,
    )
    link = await PeopleService(store, settings).login_link(email)
    assert link is not None  # the owner was just written
    return row, created, link, key.full


async def _login_link(store: Store, settings: Settings, email: str) -> str | None:
    await store.migrate()
    return await PeopleService(store, settings).login_link(email)


DATABASE_ENV = """\
database:
  RUNLATER_DATABASE_URL  PostgreSQL URL (postgresql://user:pass@host:5432/db). Unset: the
                         embedded Postgres in RUNLATER_DATA_DIR is used (started if needed)
  RUNLATER_DATA_DIR      the embedded Postgres's directory (default: %s)
"""
SERVE_ENV = """\
server:
  RUNLATER_HOST, RUNLATER_PORT       where to listen (default 127.0.0.1:8000; flags win)
  RUNLATER_ALLOW_PRIVATE_TARGETS     let tasks call loopback/private addresses (development)
  RUNLATER_LOG_FORMAT                text (default) or json: one JSON object per line
  RUNLATER_LOG_LEVEL                 INFO (default), DEBUG, WARNING or ERROR

Every other setting (workers, leases, rate limits, database timeouts) is a RUNLATER_*
variable too: see docs/configuration.md.
"""


def describe_database(settings: Settings, dsn: str) -> str:
    """Which database a command uses, for the user to check (the password hidden)."""
    if settings.database_url:
        return f"database: {redact_dsn(dsn)} (RUNLATER_DATABASE_URL)"
    data_dir = settings.data_dir or default_data_dir()
    return f"database: embedded Postgres in {data_dir} (RUNLATER_DATA_DIR)"


def redact_dsn(dsn: str) -> str:
    return re.sub(r"^(\w+://[^:/@]+):[^@]*@", r"\1:***@", dsn)


def _wrap(text: str) -> str:
    return textwrap.fill(text, 88)


def build_parser() -> argparse.ArgumentParser:
    database_help = DATABASE_ENV % default_data_dir()
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(
        prog="runlater",
        description="Runlater: delayed HTTP tasks, cron jobs and queues.",
        epilog=f"{database_help}\nRun 'runlater COMMAND --help' for a command's options.",
        formatter_class=raw,
    )
    parser.add_argument("--version", action="version", version=f"runlater {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="run the engine, the API and the docs",
        description=_wrap(
            "Run the engine, the REST API and its docs until SIGINT/SIGTERM. Applies "
            "migrations first."
        ),
        epilog=f"{database_help}\n{SERVE_ENV}",
        formatter_class=raw,
    )
    serve.add_argument("--host", help="address to listen on (RUNLATER_HOST, default 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (RUNLATER_PORT, default 8000)")
    commands.add_parser(
        "migrate",
        help="apply database migrations",
        description=_wrap("Apply database migrations and exit (serve does this at start too)."),
        epilog=database_help,
        formatter_class=raw,
    )
    boot = commands.add_parser(
        "bootstrap",
        help="create an organization and print an API key",
        description=_wrap(
            "Create an organization (or find the one with this name) and print a new API key "
            "for it. Use the same database as the running server: the same "
            "RUNLATER_DATABASE_URL, or the same RUNLATER_DATA_DIR."
        ),
        epilog=database_help,
        formatter_class=raw,
    )
    recv = commands.add_parser(
        "receive",
        help="a local target that prints what it receives and checks signatures",
        description=_wrap(
            "Listen for HTTP requests and print each one (method, path, headers, body) with "
            "whether its signatures verify, then answer with --status. Point a task at it to "
            "watch deliveries arrive on one machine, offline. A task may call a target on "
            "this machine only when the server runs with RUNLATER_ALLOW_PRIVATE_TARGETS=true."
        ),
        epilog="The secret to check with is the organization's webhook_secret (GET /api/v1/org).",
        formatter_class=raw,
    )
    recv.add_argument("--host", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    recv.add_argument("--port", type=int, default=9000, help="port to listen on (9000)")
    recv.add_argument("--secret", help="whsec_... secret to verify signatures with")
    recv.add_argument("--status", type=int, default=200, help="HTTP status to answer with (200)")
    link = commands.add_parser(
        "login-link",
        help="print a sign-in link for a person who has an account",
        description=_wrap(
            "Print a fresh sign-in link (its last line) for the account with this e-mail "
            "address: it works once, for 15 minutes, built from RUNLATER_BASE_URL. Use the "
            "same database as the running server."
        ),
        epilog=database_help,
        formatter_class=raw,
    )
    link.add_argument("--email", required=True, help="the person's e-mail address")
    boot.add_argument("--org", required=True, help="organization name")
    boot.add_argument("--email", required=True, help="owner's e-mail")
    boot.add_argument("--tier", choices=("free", "pro"), default="free", help="plan (free)")
    return parser


def main(argv: list[str] | None = None, *, outbound: OutboundFactory = outbound_transport) -> int:
    """The ``runlater`` command. ``outbound`` builds the node's outbound transport (the
    benchmark's baseline node passes another)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "receive":
        return _receive(parser, args)
    try:
        overrides = {"host": getattr(args, "host", None), "port": getattr(args, "port", None)}
        settings = load_settings(**overrides)
        setup_logging(settings.log_level.upper(), settings.log_format)
        if args.command in ("bootstrap", "login-link"):
            try:
                args.email = clean_email(args.email)
            except InvalidInput as exc:
                parser.error(f"--email: {'; '.join(*(exc.details or {}).values())}")
        with database(settings) as dsn:
            if args.command == "serve":
                trio.run(_serve, settings, dsn, outbound)
            elif args.command == "migrate":
                print(describe_database(settings, dsn))
                applied = trio.run(_with_store, dsn, lambda s: s.migrate())
                print(f"migrations applied: {applied or 'none (up to date)'}")
            elif args.command == "login-link":
                found = trio.run(_with_store, dsn, lambda s: _login_link(s, settings, args.email))
                if found is None:
                    print(
                        f"runlater: no account with the address {args.email}; "
                        "create one with runlater bootstrap or invite it from the dashboard",
                        file=sys.stderr,
                    )
                    return 1
                print("Sign-in link (works once, for 15 minutes):")
                print(found)
            else:
                row, created, link, key = trio.run(
                    _with_store,
                    dsn,
                    lambda s: _bootstrap(s, settings, args.org, args.email, args.tier),
                )
                verb = "created" if created else "exists"
                print(describe_database(settings, dsn))
                print(f"organization {verb}: {row['name']} (id {row['id']}, tier {row['tier']})")
                print(f"Sign in to the dashboard (works once, for 15 minutes): {link}")
                print("API key (shown once):")
                print(key)
    except BaseException as exc:  # trio wraps errors of nested nurseries in groups
        return exit_code_for(exc)
    return 0


def _receive(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if not 100 <= args.status <= 599:
        parser.error("--status must be an HTTP status (100-599)")
    if not 0 <= args.port <= 65535:
        parser.error("--port must be a TCP port (0-65535)")
    try:
        secret = check_secret(args.secret)
    except ValueError as exc:
        parser.error(str(exc))
    try:
        trio.run(_receive_until_signal, args.host, args.port, secret, args.status)
    except KeyboardInterrupt:
        return 130
    except OSError as exc:
        print(f"runlater: cannot listen on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return EXIT_USAGE
    return 0


async def _receive_until_signal(host: str, port: int, secret: str | None, status: int) -> None:
    async with trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        await nursery.start(partial(receive, host, port, secret=secret, status=status))


def _leaf(exc: BaseException, kind: type[BaseException]) -> BaseException | None:
    if isinstance(exc, kind):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := _leaf(inner, kind)) is not None:
                return found
    return None


def exit_code_for(exc: BaseException) -> int:
    """Exit code (and one stderr line) for an error that ended a command."""
    if (gave_up := _leaf(exc, SupervisorGaveUp)) is not None:
        print(f"runlater: node stopped: {gave_up}", file=sys.stderr)
        return EXIT_GAVE_UP
    if (error := _leaf(exc, RunlaterError)) is not None:
        print(f"runlater: {error}", file=sys.stderr)
        return EXIT_USAGE
    if _leaf(exc, KeyboardInterrupt) is not None:
        return 130
    raise exc


if __name__ == "__main__":
    sys.exit(main())
