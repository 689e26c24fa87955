-- Delivery path: per-host backoff, durable callbacks.

-- The host a task calls, for per-host backoff (lower-cased; IPv6 literals keep brackets).
alter table tasks add column host text generated always as (
    lower(substring(url from '^[A-Za-z][A-Za-z0-9+.-]*://(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)'))
) stored;

-- Copied onto each execution when it is created, so the claim can skip hosts in backoff
-- without joining every due row to its task (measured: that join made each claim O(backlog)).
alter table executions add column host text;

-- A host that answered 429 or failed repeatedly is left alone until `until`, per organization.
-- Executions to it stay pending (no worker waits on them).
create table host_backoffs (
    organization_id uuid not null references organizations(id) on delete cascade,
    host text not null,
    failures bigint not null default 0 check (failures >= 0),
    until timestamptz not null,
    updated_at timestamptz not null default now(),
    primary key (organization_id, host)
);

-- The callback of every finished attempt, written in the same statement that records the
-- attempt (an outbox), then sent by the Callbacker with its own small retry budget.
create table callbacks (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    execution_id uuid not null references executions(id) on delete cascade,
    url text not null,
    payload jsonb not null,
    status text not null default 'pending'
        check (status in ('pending', 'sending', 'delivered', 'failed')),
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    lease_token uuid,
    lease_expires_at timestamptz,
    last_status_code integer,
    last_error text,
    inserted_at timestamptz not null default now(),
    finished_at timestamptz,
    unique (execution_id),
    check ((status = 'sending') = (lease_token is not null and lease_expires_at is not null)),
    check ((status in ('delivered', 'failed')) = (finished_at is not null))
);
create index callbacks_due_idx on callbacks (next_attempt_at) where status = 'pending';
create index callbacks_lease_idx on callbacks (lease_expires_at) where status = 'sending';
alter table callbacks set (
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 5000,
    autovacuum_vacuum_cost_delay = 0
);

-- Timestamps in JSON the way the API writes them: ISO-8601 UTC with milliseconds and Z.
create function api_timestamp(ts timestamptz) returns text
language sql immutable parallel safe as $$
  select to_char(ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')
$$;

-- Backoff of a host after `failures` consecutive failures (5xx, timeouts, connection errors):
-- none for the first two, then 5 s doubling, capped at 5 minutes.
create function host_backoff_s(failures bigint) returns float8
language sql immutable parallel safe as $$
  select case when failures < 3 then 0
              else least(300.0, 5.0 * power(2, least(failures - 3, 10))) end
$$;

-- The claim's order as an index: with a large due backlog (a drain after downtime) the claim
-- reads the first rows in order instead of sorting every due row (measured: 48 ms -> ~1 ms per
-- claim at 100k pending). The (scheduled_for) index stays for when most pending rows are in
-- the future; the planner picks between them from the statistics.
create index executions_pending_priority_idx on executions (priority, scheduled_for)
    where status = 'pending';
