-- Notifications: channels, maintenance windows, the events that cause notifications (an
-- outbox written in the same statement or transaction as the change), and the notifications
-- made of them (an outbox of their own: sent with retries, or recorded as suppressed).
--
-- An event row is written with what caused it: a monitor's ping or the Monitor's tick (their
-- statements, sql/monitors.sql), an execution finishing (the trigger below), usage crossing
-- 80 % or 100 % of the plan (the trigger below). The Notifier turns each event into one
-- notification per channel and extra URL, in one transaction that also marks the event done
-- (runlater/actors/notifier.py): a crash between the two loses nothing and doubles nothing.

alter table tasks add column alert_after integer not null default 1
    check (alert_after between 1 and 100);

-- task_view's `t.*` was expanded when it was made: made again, it shows alert_after too.
drop view task_view;
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

alter table monitors add column consecutive_failures integer not null default 0;
alter table monitors add column failure_notified boolean not null default false;

-- Failure streaks of tasks, kept apart from the tasks table: the trigger that keeps them runs
-- inside the statements that finish executions, and must not take the locks task edits take.
create table task_alert_states (
    task_id uuid primary key references tasks(id) on delete cascade,
    organization_id uuid not null references organizations(id) on delete cascade,
    consecutive_failures integer not null default 0,
    failure_notified boolean not null default false
);

create table notification_channels (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    name text not null check (length(name) between 1 and 200),
    type text not null check (type in ('email', 'slack', 'discord', 'teams', 'webhook')),
    target text not null check (length(target) between 1 and 2048),
    events text[] not null,
    enabled boolean not null default true,
    inserted_at timestamptz not null default now(),
    updated_at timestamptz not null default now()
);
create index notification_channels_org_idx on notification_channels (organization_id);

create table maintenance_windows (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    resource_type text check (resource_type in ('task', 'monitor', 'uptime_check', 'endpoint')),
    resource_id uuid,
    starts_at timestamptz,
    ends_at timestamptz,
    cron text,
    timezone text not null default 'UTC',
    duration_minutes integer check (duration_minutes between 1 and 10080),
    reason text check (length(reason) <= 500),
    inserted_at timestamptz not null default now(),
    check ((resource_type is null) = (resource_id is null)),
    -- one-off (starts_at, ends_at) or recurring (cron, duration_minutes)
    check ((cron is null) = (duration_minutes is null)),
    check ((cron is null) = (ends_at is not null)),
    check (ends_at is null or starts_at is null or ends_at > starts_at)
);
create index maintenance_windows_org_idx on maintenance_windows (organization_id);

create table notification_events (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    event text not null check (event in ('task.failed', 'task.recovered', 'monitor.down',
                                         'monitor.up', 'endpoint.failed', 'usage.warning',
                                         'usage.exhausted')),
    resource_type text check (resource_type in ('task', 'monitor', 'uptime_check', 'endpoint',
                                                'organization')),
    resource_id uuid,
    resource_name text,
    details jsonb not null default '{}',
    -- At most one event per key (usage alerts: once per organization, kind and month).
    dedupe_key text unique,
    occurred_at timestamptz not null default now(),
    processed_at timestamptz
);
create index notification_events_pending_idx on notification_events (occurred_at)
    where processed_at is null;

create table notifications (
    id uuid primary key default uuid_generate_v7(),
    seq bigint generated always as identity,  -- the order of rows written at the same instant
    organization_id uuid not null references organizations(id) on delete cascade,
    event_id uuid references notification_events(id) on delete set null,
    channel_id uuid references notification_channels(id) on delete set null,
    event text not null,
    resource_type text,
    resource_id uuid,
    channel_type text not null check (channel_type in ('email', 'slack', 'discord', 'teams',
                                                       'webhook')),
    target text not null,
    payload jsonb not null,
    status text not null default 'pending'
        check (status in ('pending', 'sending', 'sent', 'failed', 'suppressed')),
    reason text,
    attempts integer not null default 0,
    next_attempt_at timestamptz not null default now(),
    lease_token uuid,
    lease_expires_at timestamptz,
    last_status_code integer,
    summary_of timestamptz,  -- a throttle summary: the start of the hour it sums up
    inserted_at timestamptz not null default now(),
    sent_at timestamptz
);
create index notifications_org_idx on notifications (organization_id, inserted_at desc, seq desc);
create index notifications_due_idx on notifications (next_attempt_at) where status = 'pending';
create index notifications_lease_idx on notifications (lease_expires_at) where status = 'sending';
-- The throttle counts an organization's failure mails of the last hour.
create index notifications_failure_mails_idx on notifications (organization_id, inserted_at)
    where channel_type = 'email' and status <> 'suppressed' and summary_of is null
      and event in ('task.failed', 'monitor.down', 'endpoint.failed');
create unique index notifications_one_summary_idx on notifications (organization_id, summary_of)
    where summary_of is not null;

-- The Notifier wakes when events are written (once per statement, on commit).
create function notification_events_wake() returns trigger
language plpgsql as $$
begin
    perform pg_notify('runlater_notifications', '');
    return null;
end
$$;
create trigger notification_events_wake
    after insert on notification_events
    for each statement execute function notification_events_wake();

-- A task's final outcomes, from every statement that finishes executions (the recorder, the
-- rescuer's third interruption): a failure ends a success streak, a success ends a failure
-- streak. Per task and statement, the streak counts the statement's final failures; the
-- failure event is written when the streak reaches the task's alert_after, the recovery
-- event when a streak that was notified ends. A failed attempt with a retry to come is not
-- final. Planned without nested loops over the transition tables (migration 013's reason).
create function executions_task_outcomes() returns trigger
language plpgsql set enable_nestloop = off as $$
declare
    finished jsonb;
begin
    -- The transition tables joined by id: a hash join (no statistics; migration 013).
    select jsonb_agg(jsonb_build_object(
               'id', n.id, 'organization_id', n.organization_id, 'task_id', n.task_id,
               'status', n.status, 'attempt', n.attempt, 'scheduled_for', n.scheduled_for,
               'error', coalesce(n.error_message, 'HTTP ' || n.status_code::text),
               'root_id', coalesce(n.root_execution_id, n.id)))
    into finished
    from new_rows n
    join old_rows o on o.id = n.id
    where o.status = 'running' and n.status in ('success', 'failed', 'timeout');
    if finished is null then
        return null;  -- claims, cancels, ...: nothing finished
    end if;
    -- Each finished row's retry, if any, through executions_retry_chain_idx.
    perform set_config('enable_nestloop', 'on', true);
    with done as (
        select * from jsonb_to_recordset(finished) as f(
            id uuid, organization_id uuid, task_id uuid, status text, attempt integer,
            scheduled_for timestamptz, error text, root_id uuid)
    ), final as (
        select f.*
        from done f
        where f.status = 'success'
           or not exists (select 1 from executions r
                          where r.root_execution_id = f.root_id and r.attempt > f.attempt)
    ), per_task as (
        select f.task_id, f.organization_id,
               count(*) filter (where f.status <> 'success') as failures,
               (array_agg(f.status order by f.scheduled_for desc, f.id desc))[1] as last_status,
               (array_agg(f.id order by f.scheduled_for desc, f.id desc))[1] as last_id,
               (array_agg(f.error order by f.scheduled_for desc, f.id desc))[1] as last_error
        from final f
        group by f.task_id, f.organization_id
    ), before as (
        select p.*, coalesce(s.consecutive_failures, 0) as old_failures,
               coalesce(s.failure_notified, false) as old_notified, t.alert_after, t.name,
               coalesce(t.notify_on_failure, true) as on_failure,
               coalesce(t.notify_on_recovery, true) as on_recovery,
               t.on_failure_url, t.on_recovery_url
        from per_task p
        join tasks t on t.id = p.task_id
        left join task_alert_states s on s.task_id = p.task_id
    ), decided as (
        select b.*,
               case when b.last_status = 'success' then 0
                    else b.old_failures + b.failures end as new_failures,
               b.last_status <> 'success' and b.old_failures < b.alert_after
                   and b.old_failures + b.failures >= b.alert_after as fails_now,
               b.last_status = 'success' and b.old_notified as recovers_now
        from before b
    ), saved as (
        insert into task_alert_states as s (task_id, organization_id, consecutive_failures,
                                            failure_notified)
        select d.task_id, d.organization_id, d.new_failures,
               d.last_status <> 'success' and (d.old_notified or d.fails_now)
        from decided d
        order by d.task_id  -- one lock order for concurrent statements
        on conflict (task_id) do update
            set consecutive_failures = excluded.consecutive_failures,
                failure_notified = excluded.failure_notified
    )
    insert into notification_events (organization_id, event, resource_type, resource_id,
                                     resource_name, details)
    select d.organization_id,
           case when d.fails_now then 'task.failed' else 'task.recovered' end,
           'task', d.task_id, d.name,
           jsonb_build_object('execution_id', d.last_id, 'error', d.last_error,
                              'consecutive_failures', d.new_failures,
                              'notify', case when d.fails_now then d.on_failure
                                             else d.on_recovery end,
                              'extra_url', case when d.fails_now then d.on_failure_url
                                                else d.on_recovery_url end)
    from decided d
    where d.fails_now or d.recovers_now;
    return null;
end
$$;
create trigger executions_task_outcomes
    after update on executions
    referencing old table as old_rows new table as new_rows
    for each statement execute function executions_task_outcomes();

-- Usage alerts: when an organization's executions this month reach 80 % and 100 % of its
-- plan, once each per month (the dedupe key). Runs after the counting trigger (names sort).
create function executions_usage_alerts() returns trigger
language plpgsql as $$
declare
    this_month constant date := usage_month(now());
begin
    with orgs as (
        select distinct i.organization_id from inserted i where i.status = 'pending'
    ), totals as (
        select o.organization_id, p.tier, p.monthly_executions,
               (select coalesce(sum(u.executions), 0) from usage_counters u
                where u.organization_id = o.organization_id and u.month = this_month) as used
        from orgs o
        join organizations org on org.id = o.organization_id
        join plans p on p.tier = org.tier
    ), crossed as (
        select t.*, k.event, k.threshold
        from totals t
        cross join (values ('usage.warning', 0.8), ('usage.exhausted', 1.0)) k(event, threshold)
        where t.used >= ceil(t.monthly_executions * k.threshold)
    )
    insert into notification_events (organization_id, event, resource_type, resource_id,
                                     resource_name, details, dedupe_key)
    select c.organization_id, c.event, 'organization', c.organization_id, null,
           jsonb_build_object('used', c.used, 'limit', c.monthly_executions, 'tier', c.tier,
                              'month', to_char(this_month, 'YYYY-MM'),
                              'notify', true, 'extra_url', null),
           c.event || ':' || c.organization_id || ':' || to_char(this_month, 'YYYY-MM')
    from crossed c
    on conflict (dedupe_key) do nothing;
    return null;
end
$$;
create trigger executions_usage_alerts
    after insert on executions
    referencing new table as inserted
    for each statement execute function executions_usage_alerts();
