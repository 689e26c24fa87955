"""SQL baseline: the engine's claim + complete statements driven by pgbench (no Python between).

Each pgbench transaction claims a batch with the ``claim_executions`` statement of
runlater/store/sql/engine.sql and completes the same rows with ``complete_executions`` (its
arrays built in SQL: status 'success', 200, a request-headers object of the size a delivery
records). N already-due executions are drained by ``--clients`` pgbench clients; rows/s is the
ceiling the store puts on deliveries/s on this machine.
"""

from __future__ import annotations

import asyncio
import math
import re
import shutil
import time
from functools import partial
from typing import Any

import asyncpg

from bench import harness
from bench.harness import Cluster
from runlater.store.queries import Q

REQ_HEADERS = (
    '{"User-Agent": "Runlater/0.1.0", "Accept-Encoding": "identity", '
    '"X-Bench-Due": "1764370000.123456", "X-Bench-Run": "pgbench", '
    '"X-Runlater-Task-Id": "0192f5b4-0000-7000-8000-000000000000", '
    '"X-Runlater-Execution-Id": "0192f5b4-0000-7000-8000-000000000000", '
    '"X-Runlater-Attempt": "1", "webhook-id": "0192f5b4-0000-7000-8000-000000000000"}'
)
RESP_HEADERS = '{"content-length": "2", "content-type": "text/plain"}'
# What a successful delivery records, by outcome column (others: null).
COLUMN_VALUES = {
    "status": "'success'",
    "status_code": "200",
    "duration_ms": "3",
    "response_body": "'ok'",
    "request_headers": f"'{REQ_HEADERS}'",
    "response_headers": f"'{RESP_HEADERS}'",
    "request_method": "'POST'",
    "request_url": "'http://127.0.0.1/pgbench'",
}


def _strip_comments(sql: str) -> str:
    return "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))


def script(batch: int) -> str:
    claim = _strip_comments(Q.claim_executions)
    claim = claim.replace("$1", str(batch)).replace("$2", "'pgbench'").replace("$3", "15")
    # The claim is "with picked as (...) update ... returning ...": make the update a second
    # CTE so its rows can become arrays handed to the complete statement via pgbench variables.
    claim_sql = (
        claim.strip().replace("\nupdate executions e", "\n, claimed as (\nupdate executions e", 1)
        + "\n)\nselect coalesce(array_agg(id)::text, '{}') as ids, "
        "coalesce(array_agg(lease_token)::text, '{}') as toks, count(*) as n from claimed\n\\gset\n"
    )
    complete = _strip_comments(Q.complete_executions)
    # Parameters are read off the statement (it gains columns over time): "$N::type[]" in its
    # unnest(...) and the column names of "as o(...)"; each gets the value a successful
    # delivery records, or null for a column not known here.
    unnest = re.search(r"unnest\((.*?)\)\s*as o\((.*?)\)", complete, re.S)
    if unnest is None:
        raise RuntimeError("complete_executions no longer has the unnest(...) as o(...) shape")
    params = re.findall(r"\$(\d+)::([a-z0-9_]+)\[\]", unnest[1])
    names = [c.strip() for c in unnest[2].split(",")]
    n = "cast(:n as int)"
    for (number, typ), name in zip(params, names, strict=True):
        if name == "id":
            value = "cast(:ids as uuid[])"
        elif name == "lease_token":
            value = "cast(:toks as uuid[])"
        else:
            literal = COLUMN_VALUES.get(name)
            literal = f"null::{typ}" if literal is None else f"{literal}::{typ}"
            value = f"array_fill({literal}, array[{n}])"
        complete = re.sub(r"\$" + number + r"(?!\d)", value, complete)
    return claim_sql + complete.strip() + ";\n"


async def run_once(
    cluster: Cluster, *, n: int, batch: int, clients: int, tag: str
) -> dict[str, Any]:
    if shutil.which("pgbench") is None:
        return {"skipped": "pgbench not installed"}
    dsn = await cluster.new_database("pgb")
    org = harness.bootstrap(dsn)
    per_client = math.ceil(n / (batch * clients))
    total = per_client * batch * clients
    conn = await asyncpg.connect(dsn)
    with harness.workdir(tag) as work:
        path = work / "claim_complete.sql"
        path.write_text(script(batch))
        try:
            await harness.insert_tasks(
                conn,
                org.id,
                "http://127.0.0.1:9/none",
                [time.time() - 1] * total,
                tag,
                notify=False,
            )
            await conn.execute("vacuum analyze executions")
            ran = await asyncio.to_thread(
                partial(
                    harness.run_pgbench,
                    cluster,
                    dsn,
                    path,
                    clients=clients,
                    transactions=per_client,
                )
            )
            done = await conn.fetchval("select count(*) from executions where status = 'success'")
        finally:
            await conn.close()
    tps, elapsed, cpu = ran.tps(), ran.elapsed_s, ran.cpu
    return {
        "n": total,
        "batch": batch,
        "clients": clients,
        "completed": done,
        "elapsed_s": elapsed,
        "rows_per_s": done / elapsed,
        "pgbench_tps": tps,
        "rows_per_s_pgbench": tps * batch if tps else None,
        "latency_avg_ms": ran.latency_avg_ms(),
        "postgres_cpu_us_per_row": round(cpu.get("postgres", 0) / max(done, 1) * 1e6),
        "cpu_s": cpu,
    }
