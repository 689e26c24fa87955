-- Heartbeat monitors (dead man's switches) and the pings they receive.
--
-- A ping is one statement (store/sql/monitors.sql, ping_monitor): it records the ping and
-- moves the monitor's state as runlater/domain/heartbeat.py describes. For that one statement
-- to know a cron monitor's next expected ping without Python, the next instants of its
-- schedule are kept in the row (cron_upcoming), computed by runlater.cron (time zone, DST) at
-- create/edit and topped up by the leader's Monitor when half of them have passed
-- (cron_refresh_at).
--
-- down_at is when the Monitor marks the monitor down; it is set only while the monitor is
-- watched (status new or up, enabled), so monitors_down_at_idx holds exactly the rows one
-- tick may mark, and the tick is one index range scan however many monitors exist.

create table monitors (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    name text not null check (length(name) between 1 and 200),
    ping_token uuid not null unique,
    badge_token text not null unique check (length(badge_token) >= 20),
    schedule_type text not null check (schedule_type in ('interval', 'cron')),
    interval_seconds integer check (interval_seconds between 60 and 604800),
    cron_expression text,
    timezone text not null default 'UTC',
    cron_upcoming timestamptz[],
    cron_refresh_at timestamptz,
    grace_period_seconds integer not null default 300 check (grace_period_seconds between 0 and 3600),
    status text not null default 'new' check (status in ('new', 'up', 'down', 'paused')),
    enabled boolean not null default true,
    notify_on_failure boolean not null default true,
    notify_on_recovery boolean not null default true,
    on_failure_url text,
    on_recovery_url text,
    alert_after integer not null default 1 check (alert_after between 1 and 100),
    last_ping_at timestamptz,
    last_ping_kind text check (last_ping_kind in ('success', 'fail', 'start', 'log')),
    last_duration_ms bigint,
    next_expected_at timestamptz,
    started_at timestamptz,
    started_rid uuid,
    down_at timestamptz,
    last_status_change_at timestamptz,
    managed_by_sync boolean not null default false,  -- created or once named by PUT /sync
    inserted_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (organization_id, name),
    check ((schedule_type = 'interval') = (interval_seconds is not null)),
    check ((schedule_type = 'cron') = (cron_expression is not null)),
    check ((schedule_type = 'cron') = (cron_upcoming is not null)),
    check (down_at is null or (status in ('new', 'up') and enabled))
);

create index monitors_down_at_idx on monitors (down_at) where down_at is not null;
create index monitors_cron_refresh_idx on monitors (cron_refresh_at)
    where schedule_type = 'cron';

create table monitor_pings (
    id uuid primary key default uuid_generate_v7(),
    monitor_id uuid not null references monitors(id) on delete cascade,
    organization_id uuid not null references organizations(id) on delete cascade,
    kind text not null check (kind in ('success', 'fail', 'start', 'log')),
    exit_status smallint check (exit_status between 0 and 255),
    rid uuid,
    method text not null,
    source_ip text,
    user_agent text,
    body bytea not null default '',
    body_truncated boolean not null default false,
    duration_ms bigint,
    received_at timestamptz not null
);

create index monitor_pings_monitor_idx on monitor_pings (monitor_id, received_at desc, id desc);
-- The janitor's retention reads pings oldest first per organization.
create index monitor_pings_organization_idx on monitor_pings (organization_id, received_at);
