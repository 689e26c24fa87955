"""``runlater serve | migrate | bootstrap``.

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
from collections.abc import Iterator
from typing import Any

import trio
import trio_asyncio

from runlater import __version__, apikeys
from runlater.config import Settings, load_settings
from runlater.errors import RunlaterError, SupervisorGaveUp
from runlater.node import run_node
from runlater.store.embedded import EmbeddedPostgres, default_data_dir
from runlater.store.postgres import Store

log = logging.getLogger("runlater.cli")

EXIT_GAVE_UP = 1
EXIT_USAGE = 2


def setup_logging(level: str = "INFO") -> None:
    logging.basicConfig(
        level=level,
        format="%(asctime)s level=%(levelname)s logger=%(name)s %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("hypercorn.error").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)


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


async def _serve(settings: Settings, dsn: str) -> None:
    async with trio_asyncio.open_loop(), trio.open_nursery() as nursery:
        nursery.start_soon(_stop_on_signal, nursery.cancel_scope)
        await nursery.start(run_node, settings, dsn)
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
    async with trio_asyncio.open_loop():
        store = await Store.open(dsn, pool_size=2)
        try:
            return await action(store)
        finally:
            await store.close()


def slugify(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63]
    return slug or "org"


async def _bootstrap(store: Store, org: str, email: str, tier: str) -> tuple[dict, bool, str]:
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
    return row, created, key.full


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="runlater", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"runlater {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the engine and the web app")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    commands.add_parser("migrate", help="apply database migrations")
    boot = commands.add_parser("bootstrap", help="create an organization and print an API key")
    boot.add_argument("--org", required=True, help="organization name")
    boot.add_argument("--email", required=True, help="owner's e-mail")
    boot.add_argument("--tier", choices=("free", "pro"), default="free")
    args = parser.parse_args(argv)
    setup_logging()

    try:
        overrides = {"host": getattr(args, "host", None), "port": getattr(args, "port", None)}
        settings = load_settings(**overrides)
        with database(settings) as dsn:
            if args.command == "serve":
                trio.run(_serve, settings, dsn)
            elif args.command == "migrate":
                applied = trio.run(_with_store, dsn, lambda s: s.migrate())
                print(f"migrations applied: {applied or 'none (up to date)'}")
            else:
                if "@" not in args.email:
                    parser.error("--email must be an e-mail address")
                row, created, key = trio.run(
                    _with_store, dsn, lambda s: _bootstrap(s, args.org, args.email, args.tier)
                )
                verb = "created" if created else "exists"
                print(f"organization {verb}: {row['name']} (id {row['id']}, tier {row['tier']})")
                print("API key (shown once):")
                print(key)
    except BaseException as exc:  # trio wraps errors of nested nurseries in groups
        return exit_code_for(exc)
    return 0


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
