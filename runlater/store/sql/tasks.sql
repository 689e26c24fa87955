-- name: insert_task
-- $1 organization, $2 the task as JSON (all writable fields present), $3 delay seconds for a
-- one-time task (null when scheduled_at is given). A one-time task gets its first execution in
-- the same statement; both notify channels fire on commit.
with org as (
    select id, tier from organizations where id = $1
), r as (
    select * from jsonb_populate_record(null::tasks, $2::jsonb)
), t as (
    insert into tasks (organization_id, name, url, method, headers, body, schedule_type,
                       cron_expression, timezone, interval_minutes, scheduled_at, next_run_at,
                       enabled, timeout_ms, retry_attempts, callback_url, expected_status_codes,
                       expected_body_pattern, queue, notify_on_failure, notify_on_recovery,
                       on_failure_url, on_recovery_url, alert_after, body_bytes, origin,
                       failure_callback_url)
    select org.id, r.name, r.url, r.method, coalesce(r.headers, '{}'), r.body, r.schedule_type,
           r.cron_expression, coalesce(r.timezone, 'UTC'), r.interval_minutes,
           case when r.schedule_type = 'once'
                then coalesce(r.scheduled_at, now() + make_interval(secs => coalesce($3, 0))) end,
           r.next_run_at, coalesce(r.enabled, true), r.timeout_ms, r.retry_attempts,
           r.callback_url, r.expected_status_codes, r.expected_body_pattern, r.queue,
           r.notify_on_failure, r.notify_on_recovery, r.on_failure_url, r.on_recovery_url,
           coalesce(r.alert_after, 1), r.body_bytes, coalesce(r.origin, 'api'),
           r.failure_callback_url
    from org, r
    returning *
), e as (
    insert into executions (organization_id, task_id, source, priority, scheduled_for, host)
    select t.organization_id, t.id, 'schedule', execution_priority(org.tier, null), t.scheduled_at,
           t.host
    from t, org
    where t.schedule_type = 'once'
    returning id, scheduled_for
), n1 as (
    select pg_notify('runlater_executions', '') from e
), n2 as (
    select pg_notify('runlater_tasks', t.id::text) from t where t.schedule_type = 'cron'
)
select t.*, null::timestamptz as last_execution_at, null::text as last_execution_status,
       e.id as execution_id, e.scheduled_for as execution_scheduled_for,
       (select count(*) from n1) + (select count(*) from n2) as notified
from t left join e on true

-- name: get_task
select * from task_view where organization_id = $1 and id = $2

-- name: list_tasks
-- $2 schedule_type or null, $3 queue filter: null = any, '' = no queue, else that queue;
-- $4 last execution status or null; $7 origin: null = every task but inbound endpoints'
-- forwards (one per event and URL: the endpoint's pages list them), 'all', or that origin.
select *, count(*) over () as total
from task_view
where organization_id = $1
  and ($2::text is null or schedule_type = $2)
  and ($3::text is null or ($3 = '' and queue is null) or queue = $3)
  and ($4::text is null or last_execution_status = $4)
  and (case when $7::text is null then origin <> 'inbound'
            when $7 = 'all' then true
            else origin = $7 end)
order by coalesce(last_execution_at, updated_at) desc, id desc
limit $5 offset $6

-- name: update_task
-- $3: JSON of the fields to change (only keys present change). next_run_at/interval_minutes
-- are recomputed by the caller when the schedule changes.
with r as (
    select * from jsonb_populate_record(null::tasks, $3::jsonb)
), updated as (
    update tasks t
    set name = case when $3 ? 'name' then r.name else t.name end,
        url = case when $3 ? 'url' then r.url else t.url end,
        method = case when $3 ? 'method' then r.method else t.method end,
        headers = case when $3 ? 'headers' then coalesce(r.headers, '{}') else t.headers end,
        body = case when $3 ? 'body' then r.body else t.body end,
        body_bytes = case when $3 ? 'body' then null else t.body_bytes end,
        cron_expression = case when $3 ? 'cron_expression' then r.cron_expression
                               else t.cron_expression end,
        timezone = case when $3 ? 'timezone' then r.timezone else t.timezone end,
        interval_minutes = case when $3 ? 'interval_minutes' then r.interval_minutes
                                else t.interval_minutes end,
        next_run_at = case when $3 ? 'next_run_at' then r.next_run_at else t.next_run_at end,
        scheduled_at = case when $3 ? 'scheduled_at' then r.scheduled_at else t.scheduled_at end,
        enabled = case when $3 ? 'enabled' then r.enabled else t.enabled end,
        timeout_ms = case when $3 ? 'timeout_ms' then r.timeout_ms else t.timeout_ms end,
        retry_attempts = case when $3 ? 'retry_attempts' then r.retry_attempts
                              else t.retry_attempts end,
        callback_url = case when $3 ? 'callback_url' then r.callback_url else t.callback_url end,
        failure_callback_url = case when $3 ? 'failure_callback_url' then r.failure_callback_url
                                    else t.failure_callback_url end,
        expected_status_codes = case when $3 ? 'expected_status_codes'
                                     then r.expected_status_codes else t.expected_status_codes end,
        expected_body_pattern = case when $3 ? 'expected_body_pattern'
                                     then r.expected_body_pattern else t.expected_body_pattern end,
        queue = case when $3 ? 'queue' then r.queue else t.queue end,
        notify_on_failure = case when $3 ? 'notify_on_failure' then r.notify_on_failure
                                 else t.notify_on_failure end,
        notify_on_recovery = case when $3 ? 'notify_on_recovery' then r.notify_on_recovery
                                  else t.notify_on_recovery end,
        on_failure_url = case when $3 ? 'on_failure_url' then r.on_failure_url
                              else t.on_failure_url end,
        on_recovery_url = case when $3 ? 'on_recovery_url' then r.on_recovery_url
                               else t.on_recovery_url end,
        alert_after = case when $3 ? 'alert_after' then coalesce(r.alert_after, 1)
                           else t.alert_after end,
        updated_at = now()
    from r
    where t.organization_id = $1 and t.id = $2 and t.deleted_at is null
    returning t.id, t.schedule_type
), n as (
    select pg_notify('runlater_tasks', u.id::text) from updated u where u.schedule_type = 'cron'
)
select u.id, (select count(*) from n) as notified from updated u

-- name: get_task_for_update
select id, schedule_type, cron_expression, timezone, next_run_at, enabled
from tasks
where organization_id = $1 and id = $2 and deleted_at is null
for no key update

-- name: delete_tasks
-- Soft-delete the organization's live tasks with ids $2 and cancel their pending executions
-- (history kept until retention): DELETE /tasks/{id} and PUT /sync's delete_removed.
with gone as (
    update tasks
    set deleted_at = now(), enabled = false, next_run_at = null, updated_at = now()
    where organization_id = $1 and id = any($2::uuid[]) and deleted_at is null
    returning id, name
), cancelled as (
    update executions e
    set status = 'cancelled', finished_at = now(), error_message = 'task deleted'
    from gone g
    where e.task_id = g.id and e.status = 'pending'
    returning e.id
)
select coalesce(array_agg(g.name order by g.name), '{}') as names, count(*) as deleted,
       (select count(*) from cancelled) as cancelled
from gone g

-- name: trigger_task
with t as (
    select t.id, t.organization_id, t.host,
           execution_priority(o.tier, t.interval_minutes) as priority
    from tasks t join organizations o on o.id = t.organization_id
    where t.organization_id = $1 and t.id = $2 and t.deleted_at is null
), e as (
    insert into executions (organization_id, task_id, source, priority, scheduled_for, host)
    select t.organization_id, t.id, 'trigger', t.priority, clock_timestamp(), t.host from t
    returning id, status, scheduled_for
), n as (
    select pg_notify('runlater_executions', '') from e
)
select e.*, (select count(*) from n) as notified from e

-- name: list_task_executions
select id, task_id, status, attempt, scheduled_for, started_at, finished_at, status_code,
       duration_ms, error_message, count(*) over () as total
from executions
where organization_id = $1 and task_id = $2 and ($3::text is null or status = $3)
order by scheduled_for desc, id desc
limit $4 offset $5

-- name: get_execution
-- The request as sent; before it is sent, the request the task will send.
select e.*, coalesce(e.request_method, t.method) as request_method,
       coalesce(e.request_url, t.url) as request_url,
       case when e.request_method is null then t.body else e.request_body end as request_body
from executions e join tasks t on t.id = e.task_id
where e.organization_id = $1 and e.id = $2

-- name: move_pending_once_execution
-- A one-time task's new run_at moves its first execution while it is still pending.
update executions
set scheduled_for = $3::text::timestamptz
where organization_id = $1 and task_id = $2 and status = 'pending' and source = 'schedule'
returning id

-- name: refresh_pending_hosts
-- A task's URL changed: its pending executions now go to the new host.
update executions e
set host = t.host
from tasks t
where t.id = $2 and t.organization_id = $1 and e.task_id = t.id and e.status = 'pending'

-- name: get_execution_for_retry
select e.id, e.status, e.attempt, e.organization_id, e.task_id, e.priority, e.host,
       coalesce(e.root_execution_id, e.id) as root_id
from executions e
join tasks t on t.id = e.task_id and t.deleted_at is null
where e.organization_id = $1 and e.id = $2

-- name: insert_manual_retry
insert into executions (organization_id, task_id, root_execution_id, source, attempt, priority,
                        scheduled_for, host)
values ($1, $2, $3, 'retry', $4, $5, clock_timestamp(), $6)
returning id, status, attempt, scheduled_for

-- name: cancel_queue
-- Every pending execution of the organization's tasks in queue $2 is cancelled.
with cancelled as (
    update executions e
    set status = 'cancelled', finished_at = now(), error_message = 'queue cancelled'
    from tasks t
    where t.organization_id = $1 and t.queue = $2 and e.task_id = t.id and e.status = 'pending'
    returning e.id
)
select count(*) from cancelled

-- name: search_tasks
-- The dashboard's task list: $2 a piece of the name or URL (case-insensitive) or null,
-- $3 schedule_type, $4 queue ('' = none), $5 last execution status, $6 enabled; null = any; $9 origin as in list_tasks.
select *, count(*) over () as total
from task_view
where organization_id = $1
  and ($2::text is null or name ilike '%' || $2 || '%' or url ilike '%' || $2 || '%')
  and ($3::text is null or schedule_type = $3)
  and ($4::text is null or ($4 = '' and queue is null) or queue = $4)
  and ($5::text is null or last_execution_status = $5)
  and ($6::bool is null or enabled = $6)
  and (case when $9::text is null then origin <> 'inbound'
            when $9 = 'all' then true
            else origin = $9 end)
order by coalesce(last_execution_at, updated_at) desc, id desc
limit $7 offset $8

-- name: list_failures
-- The dashboard's failures: failed and timed-out executions that are the last attempt of their
-- retry chain (a chain retried since is not a failure any more), newest first. A later attempt
-- always has a root_execution_id (attempt 2 and later); both reads use the partial indexes of
-- migration 014.
select e.id, e.task_id, t.name as task_name, t.method, t.url, e.status, e.status_code,
       e.error_message, e.finished_at, e.attempt
from executions e
join tasks t on t.id = e.task_id
where e.organization_id = $1 and e.status in ('failed', 'timeout')
  and not exists (
      select 1 from executions n
      where n.root_execution_id = coalesce(e.root_execution_id, e.id)
        and n.attempt > e.attempt)
order by e.finished_at desc, e.id desc
limit $2

-- name: count_retries_in_flight
-- Retries (attempt 2 or later) of the organization not finished yet (the partial index of
-- migration 015 holds exactly these).
select count(*) from executions
where organization_id = $1 and attempt > 1 and status in ('pending', 'running')

-- name: execution_chain
-- Every attempt of an execution's retry chain, first to last: the root and the executions
-- whose root it is (the primary key and the retry index of migration 014, not a scan of the
-- task's executions).
select c.id, c.attempt, c.status, c.status_code, c.scheduled_for, c.finished_at
from executions e
join executions c
  on c.organization_id = e.organization_id
 and (c.id = coalesce(e.root_execution_id, e.id)
      or c.root_execution_id = coalesce(e.root_execution_id, e.id))
where e.organization_id = $1 and e.id = $2
order by c.attempt, c.id
