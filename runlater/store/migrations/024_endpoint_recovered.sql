-- Endpoints tell their recovery too: a successful forward after a notified 'endpoint.failed'
-- writes 'endpoint.recovered' (notify_on_recovery, on_recovery_url), as tasks and monitors do.

alter table notification_events drop constraint notification_events_event_check;
alter table notification_events add constraint notification_events_event_check
    check (event in ('task.failed', 'task.recovered', 'monitor.down', 'monitor.up',
                     'endpoint.failed', 'endpoint.recovered', 'usage.warning',
                     'usage.exhausted'));

-- Migration 023's function, with the recovery (recovers_now and the second insert), and an
-- early return for statements that finish nothing.
create or replace function executions_endpoint_outcomes() returns trigger
language plpgsql set enable_nestloop = off as $$
declare
    finished jsonb;
begin
    -- Claims (pending -> running) are most statements here: they return at this first check.
    perform 1 from new_rows n where n.status in ('success', 'failed', 'timeout') limit 1;
    if not found then
        return null;
    end if;
    select jsonb_agg(jsonb_build_object(
               'id', n.id, 'task_id', n.task_id, 'status', n.status, 'attempt', n.attempt,
               'scheduled_for', n.scheduled_for,
               'error', coalesce(n.error_message, 'HTTP ' || n.status_code::text),
               'root_id', coalesce(n.root_execution_id, n.id)))
    into finished
    from new_rows n
    join old_rows o on o.id = n.id
    where o.status = 'running' and n.status in ('success', 'failed', 'timeout');
    if finished is null then
        return null;
    end if;
    perform set_config('enable_nestloop', 'on', true);
    with done as (
        select f.*, ev.endpoint_id, t.url
        from jsonb_to_recordset(finished) as f(
            id uuid, task_id uuid, status text, attempt integer, scheduled_for timestamptz,
            error text, root_id uuid)
        join tasks t on t.id = f.task_id and t.inbound_event_id is not null
        join inbound_events ev on ev.id = t.inbound_event_id
    ), final as (
        select f.*
        from done f
        where f.status = 'success'
           or not exists (select 1 from executions r
                          where r.root_execution_id = f.root_id and r.attempt > f.attempt)
    ), per_endpoint as (
        select f.endpoint_id,
               count(*) filter (where f.status <> 'success') as failures,
               (array_agg(f.status order by f.scheduled_for desc, f.id desc))[1] as last_status,
               (array_agg(f.id order by f.scheduled_for desc, f.id desc))[1] as last_id,
               (array_agg(f.error order by f.scheduled_for desc, f.id desc))[1] as last_error,
               (array_agg(f.url order by f.scheduled_for desc, f.id desc))[1] as last_url
        from final f
        group by f.endpoint_id
    ), before as (
        select p.*, ep.organization_id, ep.name, ep.alert_after, ep.notify_on_failure,
               ep.on_failure_url, ep.notify_on_recovery, ep.on_recovery_url,
               coalesce(s.consecutive_failures, 0) as old_failures,
               coalesce(s.failure_notified, false) as old_notified
        from per_endpoint p
        join inbound_endpoints ep on ep.id = p.endpoint_id
        left join endpoint_alert_states s on s.endpoint_id = p.endpoint_id
    ), decided as (
        select b.*,
               case when b.last_status = 'success' then 0
                    else b.old_failures + b.failures end as new_failures,
               b.last_status <> 'success' and b.old_failures < b.alert_after
                   and b.old_failures + b.failures >= b.alert_after as fails_now,
               b.last_status = 'success' and b.old_notified as recovers_now
        from before b
    ), saved as (
        insert into endpoint_alert_states as s (endpoint_id, organization_id,
                                                consecutive_failures, failure_notified)
        select d.endpoint_id, d.organization_id, d.new_failures,
               d.last_status <> 'success' and (d.old_notified or d.fails_now)
        from decided d
        order by d.endpoint_id  -- one lock order for concurrent statements
        on conflict (endpoint_id) do update
            set consecutive_failures = excluded.consecutive_failures,
                failure_notified = excluded.failure_notified
    )
    insert into notification_events (organization_id, event, resource_type, resource_id,
                                     resource_name, details)
    select d.organization_id, 'endpoint.failed', 'endpoint', d.endpoint_id, d.name,
           jsonb_build_object('execution_id', d.last_id, 'error', d.last_error,
                              'url', d.last_url, 'consecutive_failures', d.new_failures,
                              'notify', d.notify_on_failure, 'extra_url', d.on_failure_url)
    from decided d
    where d.fails_now
    union all
    select d.organization_id, 'endpoint.recovered', 'endpoint', d.endpoint_id, d.name,
           jsonb_build_object('execution_id', d.last_id, 'url', d.last_url,
                              'notify', d.notify_on_recovery, 'extra_url', d.on_recovery_url)
    from decided d
    where d.recovers_now;
    return null;
end
$$;
