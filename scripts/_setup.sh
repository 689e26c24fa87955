# Shared by scripts/run and scripts/test: a project virtualenv and, when missing, the system
# PostgreSQL server binaries (used for the embedded database and the test cluster).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${RUNLATER_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"

have_postgres() {
    command -v initdb >/dev/null 2>&1 || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

ensure_postgres() {
    if have_postgres; then return; fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing PostgreSQL server binaries (apt-get)..." >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq postgresql >/dev/null
        # Debian starts a cluster of its own on 5432; Runlater runs its own, stop that one.
        if command -v pg_ctlcluster >/dev/null 2>&1; then
            for c in /etc/postgresql/*/main; do
                [ -d "$c" ] && pg_ctlcluster "$(basename "$(dirname "$c")")" main stop 2>/dev/null || true
            done
        fi
    else
        echo "PostgreSQL server binaries not found: install PostgreSQL (e.g. apt-get install postgresql) or set RUNLATER_DATABASE_URL" >&2
        exit 2
    fi
}

ensure_browser() {
    # Headless Chromium for the browser tests (Debian's package: the project never downloads
    # a browser of its own).
    if command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1; then
        return
    fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing Chromium for the browser tests (apt-get)..." >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq chromium >/dev/null
    else
        echo "Chromium not found: install it (e.g. apt-get install chromium) for the browser tests" >&2
        exit 2
    fi
}

ensure_curl() {
    # curl for the crontab-wrapper ping tests (what users run around their jobs).
    if command -v curl >/dev/null 2>&1; then return; fi
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "installing curl for the ping tests (apt-get)..." >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq curl >/dev/null
    else
        echo "curl not found: install it (e.g. apt-get install curl) for the ping tests" >&2
        exit 2
    fi
}

ensure_venv() {
    # One install serves both scripts: "test" installs the test extras on top of what "run"
    # needs, so after a test install scripts/run reuses it (no reinstall when switching). The
    # stamp records which extras are in; a newer pyproject.toml reinstalls.
    local want="$1"
    if [ ! -x "$VENV/bin/python" ]; then
        "$PYTHON" -m venv "$VENV"
    fi
    local stamp="$VENV/.runlater-installed"
    local have=""
    if [ -f "$stamp" ] && [ ! "$ROOT/pyproject.toml" -nt "$stamp" ]; then
        have="$(cat "$stamp")"
    fi
    if [ "$have" = "test" ] || [ "$have" = "$want" ]; then
        return
    fi
    "$VENV/bin/python" -m pip install -q --upgrade pip
    if [ "$want" = "test" ]; then
        "$VENV/bin/python" -m pip install -q -e "$ROOT[test]"
    else
        "$VENV/bin/python" -m pip install -q -e "$ROOT"
    fi
    echo "$want" > "$stamp"
}
