-- HTTP uptime checks: a URL called on an interval, up or down by its answers.
--
-- next_check_at spreads the checks over their interval (each starts at its own phase, kept
-- from one check to the next) instead of all at the top of the minute. The leader's
-- UptimeChecker claims due checks by moving next_check_at one interval on (SKIP LOCKED), so
-- no check is run twice; a result is recorded in one statement with the check's new state,
-- the day's aggregate and, when it goes down or recovers, the notification event.
--
-- Raw results are kept as long as the plan keeps history; uptime_days (per check and UTC
-- day: checks, successes, response time) is kept 90 days.

create table uptime_checks (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    name text not null check (length(name) between 1 and 200),
    url text not null check (length(url) between 1 and 2048),
    method text not null default 'GET' check (method in ('GET', 'HEAD', 'POST')),
    interval_seconds integer not null check (interval_seconds between 30 and 86400),
    timeout_ms integer not null default 10000 check (timeout_ms between 1000 and 60000),
    expected_status_codes text,
    keyword text check (length(keyword) between 1 and 500),
    failure_threshold integer not null default 2 check (failure_threshold between 1 and 10),
    status text not null default 'new' check (status in ('new', 'up', 'down', 'paused')),
    enabled boolean not null default true,
    badge_token text not null unique check (length(badge_token) >= 20),
    notify_on_failure boolean not null default true,
    notify_on_recovery boolean not null default true,
    on_failure_url text,
    on_recovery_url text,
    alert_after integer not null default 1 check (alert_after between 1 and 100),
    next_check_at timestamptz not null,
    last_checked_at timestamptz,
    last_response_ms integer,
    last_status_code integer,
    last_error text,
    consecutive_failures integer not null default 0,
    failure_notified boolean not null default false,
    inserted_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (organization_id, name)
);
create index uptime_checks_due_idx on uptime_checks (next_check_at)
    where enabled and status <> 'paused';

create table uptime_results (
    id bigint generated always as identity primary key,
    check_id uuid not null references uptime_checks(id) on delete cascade,
    organization_id uuid not null references organizations(id) on delete cascade,
    checked_at timestamptz not null,
    ok boolean not null,
    status_code integer,
    response_ms integer,
    error text
);
create index uptime_results_check_idx on uptime_results (check_id, checked_at desc);
create index uptime_results_organization_idx on uptime_results (organization_id, checked_at);

create table uptime_days (
    check_id uuid not null references uptime_checks(id) on delete cascade,
    day date not null,
    checks integer not null default 0,
    successes integer not null default 0,
    response_ms_total bigint not null default 0,
    primary key (check_id, day)
);

-- A check's uptime at `at`, in percent: the last 24 h from its results, 7/30/90 days from
-- the daily aggregate (whole UTC days, today included); null where it has no check yet.
create function uptime_of(check_id uuid, at timestamptz) returns jsonb
language sql stable as $$
    select jsonb_build_object(
        '24h', (select round(100.0 * count(*) filter (where r.ok) / nullif(count(*), 0), 3)
                from uptime_results r
                where r.check_id = uptime_of.check_id and r.checked_at > at - interval '24 hours'
                  and r.checked_at <= at),
        '7d', (select round(100.0 * sum(d.successes) / nullif(sum(d.checks), 0), 3)
               from uptime_days d
               where d.check_id = uptime_of.check_id and d.day > (at at time zone 'UTC')::date - 7),
        '30d', (select round(100.0 * sum(d.successes) / nullif(sum(d.checks), 0), 3)
                from uptime_days d
                where d.check_id = uptime_of.check_id
                  and d.day > (at at time zone 'UTC')::date - 30),
        '90d', (select round(100.0 * sum(d.successes) / nullif(sum(d.checks), 0), 3)
                from uptime_days d
                where d.check_id = uptime_of.check_id
                  and d.day > (at at time zone 'UTC')::date - 90))
$$;
