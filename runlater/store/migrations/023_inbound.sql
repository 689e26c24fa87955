-- Inbound endpoints: a public URL /in/{slug} that records every request it gets (an event)
-- and forwards it to up to 10 URLs as one-time tasks (origin 'inbound'), with retries.
--
-- Receiving is one statement (store/sql/inbound.sql, receive_inbound_event): the event row,
-- its forward tasks and their first executions. A forward task points at its event
-- (tasks.inbound_event_id), so an event shows its forwards and their outcomes, and the event's
-- deletion (retention, or the endpoint's) takes its forwards and their history with it.

create table inbound_endpoints (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    name text not null check (length(name) between 1 and 200),
    -- The secret part of the public URL: global, since /in/{slug} names no organization.
    slug text not null unique check (slug ~ '^[A-Za-z0-9][A-Za-z0-9_-]{2,63}$'),
    forward_urls text[] not null default '{}' check (cardinality(forward_urls) <= 10),
    enabled boolean not null default true,
    retry_attempts integer not null default 5 check (retry_attempts between 0 and 10),
    use_queue boolean not null default false,
    -- Overrides of what is forwarded: null method/body = the received one; forward_headers
    -- are set over the received headers.
    forward_method text
        check (forward_method in ('GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD', 'OPTIONS')),
    forward_headers jsonb not null default '{}' check (jsonb_typeof(forward_headers) = 'object'),
    forward_body text,
    forward_authorization boolean not null default false,
    -- The sender's signature, checked when a scheme is set (runlater/domain/inbound_signatures.py).
    verify_scheme text check (verify_scheme in ('stripe', 'github', 'standard_webhooks', 'hmac')),
    verify_secret text check (length(verify_secret) between 1 and 500),
    verify_header text check (length(verify_header) between 1 and 200),
    verify_encoding text check (verify_encoding in ('hex', 'base64')),
    verify_tolerance_s integer not null default 300 check (verify_tolerance_s between 1 and 86400),
    notify_on_failure boolean not null default true,
    notify_on_recovery boolean not null default true,
    on_failure_url text check (length(on_failure_url) <= 2048),
    on_recovery_url text check (length(on_recovery_url) <= 2048),
    alert_after integer not null default 1 check (alert_after between 1 and 100),
    managed_by_sync boolean not null default false,  -- created or once named by PUT /sync
    inserted_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    unique (organization_id, name),
    check ((verify_scheme is null) = (verify_secret is null)),
    check ((verify_scheme = 'hmac') = (verify_header is not null and verify_encoding is not null))
);

create table inbound_events (
    id uuid primary key default uuid_generate_v7(),
    endpoint_id uuid not null references inbound_endpoints(id) on delete cascade,
    organization_id uuid not null references organizations(id) on delete cascade,
    status text not null check (status in ('received', 'rejected')),
    reason text,
    method text not null,
    path text not null default '',   -- what followed /in/{slug}, e.g. '/github/push'
    query text not null default '',  -- the raw query string, without '?'
    headers jsonb not null default '{}',
    body bytea not null default '',
    -- The body is UTF-8 text without NUL: forwarded as tasks.body, else as tasks.body_bytes.
    body_is_text boolean not null,
    source_ip text,
    received_at timestamptz not null,
    check ((status = 'rejected') = (reason is not null))
);
create index inbound_events_endpoint_idx on inbound_events (endpoint_id, received_at desc, id desc);
-- The janitor's retention reads events oldest first per organization.
create index inbound_events_organization_idx on inbound_events (organization_id, received_at);

alter table tasks add column inbound_event_id uuid references inbound_events(id) on delete cascade;
create index tasks_inbound_event_idx on tasks (inbound_event_id) where inbound_event_id is not null;

-- The headers a forward carries: the received ones without hop-by-hop headers, Cookie,
-- Authorization (unless the endpoint forwards it) and values an HTTP client cannot send
-- (non-ASCII), then the endpoint's own forward_headers over them (names compared without case).
create function inbound_forward_headers(received jsonb, overrides jsonb, keep_authorization boolean)
returns jsonb
language sql immutable parallel safe as $$
    select coalesce(
        (select jsonb_object_agg(h.key, h.value)
         from jsonb_each_text(received) h
         where lower(h.key) not in ('connection', 'keep-alive', 'te', 'trailer', 'trailers',
                                    'transfer-encoding', 'upgrade', 'host', 'content-length',
                                    'cookie', 'expect')
           and lower(h.key) not like 'proxy-%'
           and (keep_authorization or lower(h.key) <> 'authorization')
           and h.value ~ '^[\t\x20-\x7e]*$'
           and lower(h.key) not in (select lower(o) from jsonb_object_keys(overrides) o)),
        '{}'::jsonb) || overrides
$$;

-- Failure streaks of endpoints, apart from the endpoints table (the trigger that keeps them
-- runs inside the statements that finish executions and must not wait for endpoint edits).
create table endpoint_alert_states (
    endpoint_id uuid primary key references inbound_endpoints(id) on delete cascade,
    organization_id uuid not null references organizations(id) on delete cascade,
    consecutive_failures integer not null default 0,
    failure_notified boolean not null default false
);

alter table notification_events drop constraint notification_events_event_check;
alter table notification_events add constraint notification_events_event_check
    check (event in ('task.failed', 'task.recovered', 'monitor.down', 'monitor.up',
                     'endpoint.failed', 'endpoint.recovered', 'usage.warning',
                     'usage.exhausted'));

-- Finished executions' outcomes (migration 019's function, one pass for both kinds): a
-- forward (a task with inbound_event_id) counts for its endpoint, every other task for
-- itself. A final failure (no retry to come) adds to the streak, a success ends it; the
-- failure event is written when the streak reaches alert_after, the recovery event at the
-- first success after a notified failure. Forwards write no task streaks, no task events and
-- no status-page days of their own: the endpoint speaks for them.
create or replace function executions_task_outcomes() returns trigger
language plpgsql set enable_nestloop = off as $$
declare
    finished jsonb;
begin
    -- Claims (pending -> running) are most statements here: they return at this first check.
    perform 1 from new_rows n where n.status in ('success', 'failed', 'timeout') limit 1;
    if not found then
        return null;
    end if;
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
        return null;  -- rescues, cancels, ...: nothing finished
    end if;
    -- Each finished row's task, endpoint and retry (through their indexes).
    perform set_config('enable_nestloop', 'on', true);
    with done as (
        select f.*, ev.endpoint_id, t.url
        from jsonb_to_recordset(finished) as f(
            id uuid, organization_id uuid, task_id uuid, status text, attempt integer,
            scheduled_for timestamptz, error text, root_id uuid)
        join tasks t on t.id = f.task_id
        left join inbound_events ev on ev.id = t.inbound_event_id
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
        where f.endpoint_id is null
        group by f.task_id, f.organization_id
    ), task_before as (
        select p.*, coalesce(s.consecutive_failures, 0) as old_failures,
               coalesce(s.failure_notified, false) as old_notified, t.alert_after, t.name,
               coalesce(t.notify_on_failure, true) as on_failure,
               coalesce(t.notify_on_recovery, true) as on_recovery,
               t.on_failure_url, t.on_recovery_url
        from per_task p
        join tasks t on t.id = p.task_id
        left join task_alert_states s on s.task_id = p.task_id
    ), task_decided as (
        select b.*,
               case when b.last_status = 'success' then 0
                    else b.old_failures + b.failures end as new_failures,
               b.last_status <> 'success' and b.old_failures < b.alert_after
                   and b.old_failures + b.failures >= b.alert_after as fails_now,
               b.last_status = 'success' and b.old_notified as recovers_now
        from task_before b
    ), daily as (
        -- Each final outcome counts for its task's day (status pages' 90-day bars).
        insert into resource_days as d (resource_type, resource_id, day, good, bad)
        select 'task', f.task_id, (now() at time zone 'UTC')::date,
               count(*) filter (where f.status = 'success'),
               count(*) filter (where f.status <> 'success')
        from final f
        where f.endpoint_id is null
        group by f.task_id
        order by f.task_id
        on conflict (resource_type, resource_id, day) do update
            set good = d.good + excluded.good, bad = d.bad + excluded.bad
    ), task_saved as (
        insert into task_alert_states as s (task_id, organization_id, consecutive_failures,
                                            failure_notified)
        select d.task_id, d.organization_id, d.new_failures,
               d.last_status <> 'success' and (d.old_notified or d.fails_now)
        from task_decided d
        order by d.task_id  -- one lock order for concurrent statements
        on conflict (task_id) do update
            set consecutive_failures = excluded.consecutive_failures,
                failure_notified = excluded.failure_notified
    ), per_endpoint as (
        select f.endpoint_id,
               count(*) filter (where f.status <> 'success') as failures,
               (array_agg(f.status order by f.scheduled_for desc, f.id desc))[1] as last_status,
               (array_agg(f.id order by f.scheduled_for desc, f.id desc))[1] as last_id,
               (array_agg(f.error order by f.scheduled_for desc, f.id desc))[1] as last_error,
               (array_agg(f.url order by f.scheduled_for desc, f.id desc))[1] as last_url
        from final f
        where f.endpoint_id is not null
        group by f.endpoint_id
    ), endpoint_before as (
        select p.*, ep.organization_id, ep.name, ep.alert_after,
               ep.notify_on_failure as on_failure, ep.notify_on_recovery as on_recovery,
               ep.on_failure_url, ep.on_recovery_url,
               coalesce(s.consecutive_failures, 0) as old_failures,
               coalesce(s.failure_notified, false) as old_notified
        from per_endpoint p
        join inbound_endpoints ep on ep.id = p.endpoint_id
        left join endpoint_alert_states s on s.endpoint_id = p.endpoint_id
    ), endpoint_decided as (
        select b.*,
               case when b.last_status = 'success' then 0
                    else b.old_failures + b.failures end as new_failures,
               b.last_status <> 'success' and b.old_failures < b.alert_after
                   and b.old_failures + b.failures >= b.alert_after as fails_now,
               b.last_status = 'success' and b.old_notified as recovers_now
        from endpoint_before b
    ), endpoint_saved as (
        insert into endpoint_alert_states as s (endpoint_id, organization_id,
                                                consecutive_failures, failure_notified)
        select d.endpoint_id, d.organization_id, d.new_failures,
               d.last_status <> 'success' and (d.old_notified or d.fails_now)
        from endpoint_decided d
        order by d.endpoint_id  -- one lock order for concurrent statements
        on conflict (endpoint_id) do update
            set consecutive_failures = excluded.consecutive_failures,
                failure_notified = excluded.failure_notified
    ), changes as (
        select d.organization_id, d.fails_now, 'task' as kind, d.task_id as resource_id,
               d.name, d.last_id, d.last_error, null::text as url, d.new_failures,
               d.on_failure, d.on_recovery, d.on_failure_url, d.on_recovery_url
        from task_decided d
        where d.fails_now or d.recovers_now
        union all
        select d.organization_id, d.fails_now, 'endpoint', d.endpoint_id, d.name, d.last_id,
               d.last_error, d.last_url, d.new_failures, d.on_failure, d.on_recovery,
               d.on_failure_url, d.on_recovery_url
        from endpoint_decided d
        where d.fails_now or d.recovers_now
    )
    insert into notification_events (organization_id, event, resource_type, resource_id,
                                     resource_name, details)
    select c.organization_id,
           c.kind || case when c.fails_now then '.failed' else '.recovered' end,
           c.kind, c.resource_id, c.name,
           jsonb_strip_nulls(jsonb_build_object('url', c.url))
           || jsonb_build_object('execution_id', c.last_id,
                                 'error', c.last_error,
                                 'consecutive_failures', c.new_failures,
                                 'notify', case when c.fails_now then c.on_failure
                                                else c.on_recovery end,
                                 'extra_url', case when c.fails_now then c.on_failure_url
                                                   else c.on_recovery_url end)
    from changes c;
    return null;
end
$$;

-- Live events: 'endpoint.event_received' for each stored event (runlater/store/events.py),
-- one NOTIFY runlater_events per statement as migration 011 does for tasks.
create function inbound_events_notify_inserted() returns trigger
language plpgsql as $$
begin
    perform notify_events('ie', (select jsonb_agg(n.id) from inserted n));
    return null;
end
$$;
create trigger inbound_events_notify_inserted
    after insert on inbound_events
    referencing new table as inserted
    for each statement execute function inbound_events_notify_inserted();
