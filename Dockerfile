# One container: Runlater with its embedded PostgreSQL (or set RUNLATER_DATABASE_URL).
#   docker build -t runlater . && docker run -p 8000:8000 -v runlater:/var/lib/runlater runlater
# .ci/run builds and runs this image with podman (scripts/container-check).

# --- build: a virtualenv with Runlater and its dependencies (wheels only, nothing compiles) ---
FROM debian:bookworm-slim AS build
ENV DEBIAN_FRONTEND=noninteractive PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN python3 -m venv /opt/venv
# Dependencies first, in their own layer: a change to the code alone reuses it.
COPY pyproject.toml README.md /src/
RUN mkdir -p /src/runlater && touch /src/runlater/__init__.py \
    && /opt/venv/bin/pip install --no-cache-dir /src \
    && /opt/venv/bin/pip uninstall -y -q runlater \
    && rm -rf /src/build /src/runlater /src/runlater.egg-info
COPY runlater /src/runlater
RUN /opt/venv/bin/pip install --no-cache-dir --no-deps /src

# --- runtime: Python, the PostgreSQL server binaries, the virtualenv; runs as "runlater" ---
FROM debian:bookworm-slim
ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 \
    RUNLATER_HOST=0.0.0.0 RUNLATER_PORT=8000 RUNLATER_DATA_DIR=/var/lib/runlater \
    PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
# Debian's package creates a cluster of its own in /var/lib/postgresql; Runlater runs its own
# in the data dir, so that one is dropped. tini is PID 1: it forwards SIGTERM to Runlater (which
# stops Postgres cleanly) and reaps what exits.
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 postgresql ca-certificates tini \
    && (pg_dropcluster 15 main 2>/dev/null || true) \
    && apt-get clean && rm -rf /var/lib/apt/lists/* /var/cache/apt/* \
    && useradd --system --uid 10001 --user-group --home-dir /var/lib/runlater \
        --shell /usr/sbin/nologin runlater \
    && mkdir -p /var/lib/runlater && chown runlater:runlater /var/lib/runlater \
    && chmod 0700 /var/lib/runlater
COPY --from=build /opt/venv /opt/venv

USER runlater
WORKDIR /var/lib/runlater
VOLUME /var/lib/runlater
EXPOSE 8000
# Liveness on the configured port (RUNLATER_PORT may be changed at `docker run`).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python3", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('RUNLATER_PORT', '8000'), timeout=4)"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/bin/tini", "--", "runlater"]
CMD ["serve"]
