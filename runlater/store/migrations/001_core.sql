-- Core schema: organizations, users, API keys, tasks, executions, leader lease.

-- UUID v7 (RFC 9562): 48-bit unix-ms timestamp, version and variant bits, random rest.
-- Postgres 15 has no generator; this keeps ids time-ordered and index-friendly.
create function uuid_generate_v7() returns uuid
language sql volatile parallel safe as $$
  select encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              placing substring(int8send(floor(extract(epoch from clock_timestamp()) * 1000)::bigint) from 3)
              from 1 for 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;

-- Claim order: Pro before Free, shorter cron interval first, one-time tasks last in a tier.
-- Stored on each execution so the claim sorts on one column.
create function execution_priority(tier text, interval_minutes integer) returns integer
language sql immutable parallel safe as $$
  select (case when tier = 'pro' then 0 else 1 end) * 100000000
       + coalesce(least(interval_minutes, 99999998), 99999999)
$$;

create table organizations (
    id uuid primary key default uuid_generate_v7(),
    name text not null unique check (length(name) between 1 and 200),
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    tier text not null default 'free' check (tier in ('free', 'pro')),
    webhook_secret text not null check (webhook_secret like 'whsec\_%'),
    previous_webhook_secret text,
    previous_webhook_secret_expires_at timestamptz,
    inserted_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check ((previous_webhook_secret is null) = (previous_webhook_secret_expires_at is null))
);

create table users (
    id uuid primary key default uuid_generate_v7(),
    email text not null unique check (position('@' in email) > 1),
    inserted_at timestamptz not null default now()
);

create table memberships (
    user_id uuid not null references users(id) on delete cascade,
    organization_id uuid not null references organizations(id) on delete cascade,
    role text not null default 'member' check (role in ('owner', 'admin', 'member')),
    inserted_at timestamptz not null default now(),
    primary key (organization_id, user_id)
);

create table api_keys (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    created_by_id uuid references users(id) on delete set null,
    key_id text not null unique check (key_id ~ '^pk_live_[A-Za-z0-9]{24}$'),
    key_hash text not null check (length(key_hash) = 64),
    name text,
    last_used_at timestamptz,
    revoked_at timestamptz,
    inserted_at timestamptz not null default now()
);
create index api_keys_organization_idx on api_keys (organization_id);

create table tasks (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    name text not null check (length(name) between 1 and 200),
    url text not null check (length(url) <= 2048 and url ~* '^https?://'),
    method text not null check (method in ('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS')),
    headers jsonb not null default '{}' check (jsonb_typeof(headers) = 'object'),
    body text,
    schedule_type text not null check (schedule_type in ('cron', 'once')),
    cron_expression text,
    timezone text not null default 'UTC',
    interval_minutes integer check (interval_minutes >= 1),
    scheduled_at timestamptz,
    next_run_at timestamptz,
    enabled boolean not null default true,
    timeout_ms integer not null default 30000 check (timeout_ms between 1000 and 300000),
    retry_attempts integer not null default 5 check (retry_attempts between 0 and 10),
    callback_url text check (callback_url is null or length(callback_url) <= 2048),
    expected_status_codes text,
    expected_body_pattern text,
    queue text check (queue is null or length(queue) between 1 and 200),
    notify_on_failure boolean,
    notify_on_recovery boolean,
    on_failure_url text,
    on_recovery_url text,
    deleted_at timestamptz,
    inserted_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    check (
        (schedule_type = 'cron' and cron_expression is not null and interval_minutes is not null
            and scheduled_at is null)
        or (schedule_type = 'once' and cron_expression is null and scheduled_at is not null
            and next_run_at is null)
    )
);
create index tasks_organization_idx on tasks (organization_id, inserted_at desc) where deleted_at is null;
-- The scheduler's due scan: enabled live cron tasks by next run.
create index tasks_due_idx on tasks (next_run_at)
    where schedule_type = 'cron' and enabled and deleted_at is null;

create table executions (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    task_id uuid not null references tasks(id) on delete cascade,
    root_execution_id uuid,
    source text not null check (source in ('schedule', 'trigger', 'retry')),
    status text not null default 'pending'
        check (status in ('pending', 'running', 'success', 'failed', 'timeout', 'cancelled', 'missed')),
    attempt integer not null default 1 check (attempt between 1 and 11),
    priority integer not null,
    scheduled_for timestamptz not null,
    started_at timestamptz,
    finished_at timestamptz,
    status_code integer check (status_code between 100 and 999),
    duration_ms integer check (duration_ms >= 0),
    request_method text,
    request_url text,
    request_headers jsonb,
    request_body text,
    response_headers jsonb,
    response_body text,
    error_message text,
    lease_token uuid,
    lease_expires_at timestamptz,
    leased_by text,
    rescue_count integer not null default 0 check (rescue_count >= 0),
    inserted_at timestamptz not null default now(),
    -- A running execution holds a lease; nothing else does.
    check ((status = 'running') = (lease_token is not null and lease_expires_at is not null)),
    check (status <> 'running' or started_at is not null),
    -- A finished execution has finished_at, an unfinished one has none.
    check ((status in ('success', 'failed', 'timeout', 'cancelled', 'missed')) = (finished_at is not null)),
    check (attempt = 1 or root_execution_id is not null)
);
-- Each scheduled run of a task exists once, whichever node creates it.
create unique index executions_scheduled_once_idx on executions (task_id, scheduled_for)
    where source = 'schedule';
-- The claim: due pending rows (few) found by time, then ordered by priority.
create index executions_pending_idx on executions (scheduled_for) where status = 'pending';
create index executions_lease_idx on executions (lease_expires_at) where status = 'running';
create index executions_task_idx on executions (task_id, scheduled_for desc);
create index executions_organization_idx on executions (organization_id, inserted_at desc);

-- Queue tables churn: vacuum them early and without throttling (see stack-notes.md).
alter table executions set (
    autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 20000,
    autovacuum_vacuum_cost_delay = 0, autovacuum_analyze_scale_factor = 0.02,
    fillfactor = 90
);

-- One row per lease name; the holder renews it with expiry from the database clock.
create table leader_leases (
    name text primary key,
    holder text not null,
    expires_at timestamptz not null
);

-- Tasks as the API shows them: last execution derived from executions, never stored twice.
create view task_view as
select t.*, le.last_execution_at, le.last_execution_status
from tasks t
left join lateral (
    select coalesce(e.finished_at, e.started_at) as last_execution_at,
           e.status as last_execution_status
    from executions e
    where e.task_id = t.id and e.status not in ('pending', 'cancelled')
    order by e.scheduled_for desc
    limit 1
) le on true
where t.deleted_at is null;
