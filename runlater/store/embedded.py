"""Embedded PostgreSQL: a private cluster run from the system's server binaries.

When ``RUNLATER_DATABASE_URL`` is unset, ``runlater serve`` keeps its database in the data dir
and starts/stops it with :class:`EmbeddedPostgres`; other CLI commands given the same data dir
reuse the running server (or start and stop it themselves). The test suite uses
:func:`create_throwaway_cluster`. Layout of the data dir::

    pg/           the cluster (owned by the ``postgres`` OS user when running as root)
    pg-password   superuser password, mode 0600        pg-port   TCP port chosen at first start
    pg.log        server log                           pg.lock   flock serialising starters

The server listens on 127.0.0.1 only (no unix socket) with scram-sha-256 password auth.
"""

from __future__ import annotations

import fcntl
import os
import pwd
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

from runlater.errors import EmbeddedPostgresError, PostgresNotFound

SUPERUSER = "runlater"
SERVER_OS_USER = "postgres"  # runs the server when we are root (Postgres refuses to run as root)
HOST = "127.0.0.1"
_SERVER_BINARIES = ("initdb", "pg_ctl", "postgres")
_NOT_FOUND = (
    "PostgreSQL server binaries (initdb, pg_ctl) not found: install PostgreSQL (Debian/Ubuntu: "
    "apt-get install postgresql) or set RUNLATER_DATABASE_URL to an existing database"
)
# Appended to postgresql.conf after initdb: modest settings for a queue workload (many small
# transactions, rows updated and deleted quickly). fsync and synchronous_commit stay on.
_SETTINGS = """
# --- added by runlater ---
listen_addresses = '127.0.0.1'
unix_socket_directories = ''
max_connections = 100
wal_compression = on
checkpoint_timeout = 15min
random_page_cost = 1.1
jit = off
autovacuum_naptime = 10s
autovacuum_vacuum_scale_factor = 0.02
autovacuum_analyze_scale_factor = 0.05
timezone = 'UTC'
log_timezone = 'UTC'
"""
# Added for a throwaway cluster that nothing needs after a power loss (the test suite): no
# fsync and no full-page images. A killed server or process still loses nothing, because every
# commit is still written to the kernel before it is acknowledged (synchronous_commit stays
# on); only an operating-system crash could lose or tear data, and the cluster is deleted then
# anyway. Creating a database from a template (two checkpoints each) gets several times faster.
_EPHEMERAL_SETTINGS = """
fsync = off
full_page_writes = off
"""


def default_data_dir() -> Path:
    """``/var/lib/runlater`` as root, else ``$XDG_DATA_HOME/runlater`` (``~/.local/share``)."""
    if _is_root():
        return Path("/var/lib/runlater")
    xdg = os.environ.get("XDG_DATA_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else Path.home() / ".local" / "share"
    return base / "runlater"


def find_bindir(search_path: str | None = None) -> Path:
    """The directory holding initdb, pg_ctl and postgres.

    Looks on ``search_path`` (default: ``$PATH``), then at ``pg_config --bindir``, then at the
    highest-version ``/usr/lib/postgresql/*/bin``; ``search_path=""`` disables the fallbacks.
    """
    path = os.environ.get("PATH", os.defpath) if search_path is None else search_path
    found = _bindir_on_path(path)
    if found is None and search_path != "":
        found = _bindir_from_pg_config(path) or _bindir_debian()
    if found is None:
        raise PostgresNotFound(_NOT_FOUND)
    return found


def _has_server_binaries(directory: Path) -> bool:
    return all(os.access(directory / name, os.X_OK) for name in _SERVER_BINARIES)


def _bindir_on_path(path: str) -> Path | None:
    pg_ctl = shutil.which("pg_ctl", path=path) if path else None
    if pg_ctl is None:
        return None
    directory = Path(pg_ctl).resolve().parent
    return directory if _has_server_binaries(directory) else None


def _bindir_from_pg_config(path: str) -> Path | None:
    pg_config = shutil.which("pg_config", path=path) if path else None
    if pg_config is None:
        return None
    try:
        out = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return Path(out) if out and _has_server_binaries(Path(out)) else None


def _bindir_debian() -> Path | None:
    def version(bindir: Path) -> tuple[int, ...]:
        parts = bindir.parent.name.split(".")
        return tuple(int(p) for p in parts) if all(p.isdigit() for p in parts) else (-1,)

    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=version, reverse=True)
    return next((c for c in candidates if _has_server_binaries(c)), None)


def _is_root() -> bool:
    return os.geteuid() == 0


def _server_ids() -> tuple[int, int]:
    try:
        entry = pwd.getpwnam(SERVER_OS_USER)
    except KeyError:
        raise EmbeddedPostgresError(
            f"running as root needs the '{SERVER_OS_USER}' OS user to run PostgreSQL, "
            "but it does not exist (Debian/Ubuntu: apt-get install postgresql)"
        ) from None
    return entry.pw_uid, entry.pw_gid


def _chown_to_server(path: Path) -> None:
    if _is_root():
        os.chown(path, *_server_ids())


def _run(
    cmd: list[str],
    *,
    as_server: bool = False,
    timeout: float = 60,
    env: dict[str, str] | None = None,
    new_session: bool = False,
) -> subprocess.CompletedProcess[str]:
    """Run ``cmd`` (as the server OS user when root and ``as_server``), output captured.

    The child gets our environment without ``PG*`` variables, plus ``env``.
    """
    name = Path(cmd[0]).name
    if as_server and _is_root():
        cmd = [shutil.which("runuser") or "/usr/sbin/runuser", "-u", SERVER_OS_USER, "--", *cmd]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PG")} | (env or {})
    try:
        return subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd="/",
            env=full_env,
            start_new_session=new_session,
        )
    except subprocess.TimeoutExpired as exc:
        raise EmbeddedPostgresError(f"{name} timed out after {timeout:.0f}s") from exc
    except OSError as exc:
        raise EmbeddedPostgresError(f"cannot run {cmd[0]}: {exc.strerror or exc}") from exc


def _one_line(text: str, lines: int = 3) -> str:
    kept = [line.strip() for line in text.splitlines() if line.strip()]
    return " | ".join(kept[-lines:])


def _port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as Postgres does
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return int(sock.getsockname()[1])


def _c_locale() -> str:
    try:
        available = set(_run(["locale", "-a"], timeout=10).stdout.lower().split())
    except EmbeddedPostgresError:
        return "C"
    return "C.UTF-8" if {"c.utf8", "c.utf-8"} & available else "C"


class EmbeddedPostgres:
    """A Postgres cluster in ``data_dir / "pg"``; start() reuses it when already running."""

    def __init__(
        self,
        data_dir: Path,
        *,
        database: str = "runlater",
        port: int | None = None,
        bindir: Path | None = None,
        ephemeral: bool = False,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.pg_dir = self.data_dir / "pg"
        self.database = database
        self.bindir = bindir
        self._requested_port = port
        self.port: int = port or 0
        self.dsn: str = ""
        self.owned: bool = False
        self.ephemeral = ephemeral

    # -- public API -------------------------------------------------------------------------

    def start(self) -> str:
        """Ensure the server runs and the database exists; return the DSN."""
        if self.bindir is None:
            self.bindir = find_bindir()
        self._prepare_dirs()
        try:
            return self._start_locked()
        except OSError as exc:
            raise self._unusable(exc.strerror or str(exc)) from exc

    def _start_locked(self) -> str:
        with self._locked():
            password = self._password()
            if not (self.pg_dir / "PG_VERSION").exists():
                self._initdb(password)
            port = self._running_port()
            if port is None:
                port = self._start_server()
                self.owned = True
            self.port = port
            self.dsn = f"postgresql://{SUPERUSER}:{quote(password, safe='')}@{HOST}:{port}/"
            self.dsn += quote(self.database, safe="")
            self._ensure_database(password)
        return self.dsn

    def stop(self, mode: str = "fast") -> None:
        """Shut down (``fast``, or ``immediate``: no checkpoint), waiting for it; only when this
        instance started the server."""
        if not self.owned:
            return
        with self._locked():
            cmd = [self._bin("pg_ctl"), "stop", "-D", str(self.pg_dir), "-m", mode, "-w"]
            result = _run(cmd, as_server=True, timeout=90)
            if result.returncode != 0 and self._running_port() is not None:
                raise EmbeddedPostgresError(
                    f"could not stop PostgreSQL in {self.pg_dir}: {_one_line(result.stderr)}"
                )
        self.owned = False

    def destroy(self) -> None:
        """Stop the server (if owned) and delete the whole data dir. The server is stopped
        without its shutdown checkpoint: nothing of it is kept."""
        self.stop("immediate")
        if self._running_port() is not None:
            raise EmbeddedPostgresError(f"refusing to delete {self.data_dir}: its server runs")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    def server_pid(self) -> int | None:
        """PID of the running postmaster of this cluster, if any."""
        info = self._pid_file()
        return int(info[0]) if info else None

    def __enter__(self) -> EmbeddedPostgres:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    # -- helpers ----------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        assert self.bindir is not None
        return str(self.bindir / name)

    def _unusable(self, reason: str) -> EmbeddedPostgresError:
        return EmbeddedPostgresError(f"data dir {self.data_dir} is not usable: {reason}")

    def _prepare_dirs(self) -> None:
        try:
            if not self.data_dir.is_dir():
                self.data_dir.mkdir(parents=True)
                self.data_dir.chmod(0o755 if _is_root() else 0o700)
            if not self.pg_dir.exists():
                self.pg_dir.mkdir(mode=0o700)
                _chown_to_server(self.pg_dir)
            log = self.data_dir / "pg.log"
            log.touch(mode=0o600)
            _chown_to_server(log)
        except OSError as exc:
            raise self._unusable(exc.strerror or str(exc)) from exc
        if _is_root() and _run(["test", "-w", str(self.pg_dir)], as_server=True).returncode:
            raise self._unusable(
                f"the '{SERVER_OS_USER}' OS user cannot reach {self.pg_dir} "
                "(make the data dir and its parents traversable, e.g. chmod 755)"
            )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        try:
            fd = os.open(self.data_dir / "pg.lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise self._unusable(exc.strerror or str(exc)) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    def _password(self) -> str:
        path = self.data_dir / "pg-password"
        if path.exists():
            return path.read_text().strip()
        if (self.pg_dir / "PG_VERSION").exists():
            raise EmbeddedPostgresError(f"{path} is missing but the cluster {self.pg_dir} exists")
        password = secrets.token_urlsafe(24)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(password + "\n")
        return password

    def _initdb(self, password: str) -> None:
        with tempfile.NamedTemporaryFile("w", dir=self.data_dir, prefix=".pg-initpw-") as pwfile:
            pwfile.write(password + "\n")
            pwfile.flush()
            _chown_to_server(Path(pwfile.name))
            cmd = [self._bin("initdb"), "-D", str(self.pg_dir), "-U", SUPERUSER]
            cmd += [f"--pwfile={pwfile.name}", "--auth=scram-sha-256", "--encoding=UTF8"]
            cmd += [f"--locale={_c_locale()}"]
            result = _run(cmd, as_server=True, timeout=300)
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb failed for {self.pg_dir}: {_one_line(result.stderr or result.stdout)}"
            )
        with open(self.pg_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(_SETTINGS)
            if self.ephemeral:
                conf.write(_EPHEMERAL_SETTINGS)

    def _pid_file(self) -> list[str] | None:
        """Lines of postmaster.pid when its postmaster is alive, else None."""
        try:
            lines = (self.pg_dir / "postmaster.pid").read_text().splitlines()
            pid = int(lines[0])
            comm = Path(f"/proc/{pid}/comm")  # a stale pid file's pid may have been reused
            if comm.exists() and not comm.read_text().startswith(("postgres", "postmaster")):
                return None
            os.kill(pid, 0)
        except (FileNotFoundError, ProcessLookupError, ValueError, IndexError):
            return None
        except PermissionError:
            pass  # alive, owned by someone else
        return lines

    def _running_port(self, wait: float = 60) -> int | None:
        """Port of this cluster's live postmaster once it accepts connections, else None."""
        deadline = time.monotonic() + wait
        while (info := self._pid_file()) is not None:
            if len(info) >= 8 and info[7].strip() == "ready":
                return int(info[3])
            if time.monotonic() > deadline:
                raise EmbeddedPostgresError(f"PostgreSQL in {self.pg_dir} is not getting ready")
            time.sleep(0.1)
        return None

    def _pick_port(self) -> int:
        if self._requested_port:
            return self._requested_port
        remembered = self.data_dir / "pg-port"
        text = remembered.read_text().strip() if remembered.exists() else ""
        if text.isdigit() and _port_free(int(text)):
            return int(text)
        port = _free_port()
        remembered.write_text(f"{port}\n")
        return port

    def _log_tail(self, since: int = 0) -> str:
        """The last lines the server logged after byte offset ``since``, as one line."""
        try:
            with open(self.data_dir / "pg.log", "rb") as log:
                log.seek(max(since, log.seek(0, os.SEEK_END) - 4096))
                return _one_line(log.read().decode("utf-8", "replace"))
        except OSError:
            return ""

    def _start_server(self) -> int:
        port = self._pick_port()
        log_size = (self.data_dir / "pg.log").stat().st_size
        cmd = [self._bin("pg_ctl"), "start", "-w", "-t", "60", "-D", str(self.pg_dir)]
        cmd += ["-l", str(self.data_dir / "pg.log"), "-o", f"-p {port}"]
        # A new session: Ctrl-C in the terminal of `runlater serve` must not reach the server.
        result = _run(cmd, as_server=True, timeout=90, new_session=True)
        if result.returncode != 0 or self._running_port(wait=5) != port:
            detail = self._log_tail(since=log_size) or _one_line(result.stderr)
            raise EmbeddedPostgresError(f"could not start PostgreSQL in {self.pg_dir}: {detail}")
        return port

    def _ensure_database(self, password: str) -> None:
        psql = self._bin("psql")
        if not os.access(psql, os.X_OK):
            psql = shutil.which("psql") or "psql"

        cmd = [psql, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", HOST, "-p", str(self.port)]
        cmd += ["-U", SUPERUSER, "-d", "postgres", "-c"]
        env = {"PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}

        def sql(statement: str) -> str:
            result = _run([*cmd, statement], env=env)
            if result.returncode != 0:
                raise EmbeddedPostgresError(
                    f"PostgreSQL on {HOST}:{self.port}: {_one_line(result.stderr, 1)}"
                )
            return result.stdout.strip()

        literal = "'" + self.database.replace("'", "''") + "'"
        if sql(f"SELECT 1 FROM pg_database WHERE datname = {literal}") != "1":
            sql('CREATE DATABASE "' + self.database.replace('"', '""') + '"')


def create_throwaway_cluster(*, ephemeral: bool = False) -> EmbeddedPostgres:
    """A started cluster in a fresh temp dir on a free port; call ``destroy()`` when done.
    ``ephemeral`` trades durability across an operating-system crash for speed (the test
    suite's cluster; benchmarks keep the durable settings users run)."""
    data_dir = Path(tempfile.mkdtemp(prefix="runlater-pg-"))
    _chown_to_server(data_dir)
    cluster = EmbeddedPostgres(data_dir, ephemeral=ephemeral)
    try:
        cluster.start()
    except BaseException:
        cluster.owned = cluster.owned or cluster.server_pid() is not None
        cluster.destroy()
        raise
    return cluster
