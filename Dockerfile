# One container: Runlater with its embedded PostgreSQL (or set RUNLATER_DATABASE_URL).
FROM debian:bookworm-slim

ENV DEBIAN_FRONTEND=noninteractive PYTHONUNBUFFERED=1 \
    RUNLATER_HOST=0.0.0.0 RUNLATER_PORT=8000 RUNLATER_DATA_DIR=/var/lib/runlater
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv postgresql ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && (pg_ctlcluster 15 main stop 2>/dev/null || true)

WORKDIR /opt/runlater
COPY pyproject.toml README.md ./
COPY runlater ./runlater
RUN python3 -m venv /opt/venv && /opt/venv/bin/pip install --no-cache-dir . \
    && mkdir -p /var/lib/runlater && chmod 0755 /var/lib/runlater

VOLUME /var/lib/runlater
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD python3 -c "import urllib.request,sys; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/health').status != 200)"
STOPSIGNAL SIGTERM
CMD ["/opt/venv/bin/runlater", "serve"]
