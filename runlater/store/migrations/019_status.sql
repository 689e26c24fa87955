-- Status pages, badges and Runlater's own status.
--
-- status_pages: one per organization, off by default, public at /s/{slug} when on.
-- resource_days: per task and heartbeat monitor and UTC day, good and bad outcomes (final
--   task runs; success and failure pings, and the Monitor's marks): the 90-day bars of
--   status pages (uptime checks have uptime_days). Kept 90 days.
-- lateness_days: how late executions started (started_at - scheduled_for) per UTC day, as a
--   histogram, in 8 shards so concurrent claims do not queue on one row: /status's 90 days.
-- tasks.badge_token: each task's public badge (monitors and uptime checks have theirs).

alter table tasks add column badge_token text not null unique
    default replace(gen_random_uuid()::text, '-', '');
-- task_view's `t.*` was expanded when it was made: made again, it shows badge_token too.
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

create table status_pages (
    organization_id uuid primary key references organizations(id) on delete cascade,
    enabled boolean not null default false,
    slug text not null unique check (slug ~ '^[a-z0-9][a-z0-9-]{0,62}$'),
    title text not null check (length(title) between 1 and 200),
    items jsonb not null default '[]',
    updated_at timestamptz not null default now()
);

create table resource_days (
    resource_type text not null check (resource_type in ('task', 'monitor')),
    resource_id uuid not null,
    day date not null,
    good integer not null default 0,
    bad integer not null default 0,
    primary key (resource_type, resource_id, day)
);
create index resource_days_day_idx on resource_days (day);

create table lateness_days (
    day date not null,
    shard smallint not null check (shard between 0 and 7),
    started bigint not null default 0,
    -- started within (ms): l0 <= 100, l1 <= 500, l2 <= 1000, l3 <= 5000, l4 <= 30000,
    -- l5 <= 60000, l6 more
    l0 bigint not null default 0, l1 bigint not null default 0, l2 bigint not null default 0,
    l3 bigint not null default 0, l4 bigint not null default 0, l5 bigint not null default 0,
    l6 bigint not null default 0,
    max_ms bigint not null default 0,
    primary key (day, shard)
);

create function executions_lateness() returns trigger
language plpgsql set enable_nestloop = off as $$
begin
    insert into lateness_days as d (day, shard, started, l0, l1, l2, l3, l4, l5, l6, max_ms)
    select (now() at time zone 'UTC')::date, pg_backend_pid() % 8, count(*),
           count(*) filter (where x.ms <= 100),
           count(*) filter (where x.ms > 100 and x.ms <= 500),
           count(*) filter (where x.ms > 500 and x.ms <= 1000),
           count(*) filter (where x.ms > 1000 and x.ms <= 5000),
           count(*) filter (where x.ms > 5000 and x.ms <= 30000),
           count(*) filter (where x.ms > 30000 and x.ms <= 60000),
           count(*) filter (where x.ms > 60000),
           coalesce(max(x.ms), 0)
    from (
        select greatest(0, extract(epoch from (n.started_at - n.scheduled_for)) * 1000)::bigint
                   as ms
        from new_rows n
        join old_rows o on o.id = n.id
        where n.status = 'running' and o.status = 'pending' and n.started_at is not null
    ) x
    having count(*) > 0
    on conflict (day, shard) do update
        set started = d.started + excluded.started, l0 = d.l0 + excluded.l0,
            l1 = d.l1 + excluded.l1, l2 = d.l2 + excluded.l2, l3 = d.l3 + excluded.l3,
            l4 = d.l4 + excluded.l4, l5 = d.l5 + excluded.l5, l6 = d.l6 + excluded.l6,
            max_ms = greatest(d.max_ms, excluded.max_ms);
    return null;
end
$$;
create trigger executions_lateness
    after update on executions
    referencing old table as old_rows new table as new_rows
    for each statement execute function executions_lateness();

create or replace function executions_task_outcomes() returns trigger
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
    ), daily as (
        -- Each final outcome counts for its task's day (status pages' 90-day bars).
        insert into resource_days as d (resource_type, resource_id, day, good, bad)
        select 'task', f.task_id, (now() at time zone 'UTC')::date,
               count(*) filter (where f.status = 'success'),
               count(*) filter (where f.status <> 'success')
        from final f
        group by f.task_id
        order by f.task_id
        on conflict (resource_type, resource_id, day) do update
            set good = d.good + excluded.good, bad = d.bad + excluded.bad
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
