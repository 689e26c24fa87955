-- name: insert_batch_tasks
-- POST /tasks/batch in one statement: $1 organization, $2 the fields every task shares as JSON
-- (as for insert_task: a one-time task, body left out), $3 delay seconds (null when
-- scheduled_at is given), $4 the bodies, one task each, in the request's order. Inserts the N
-- tasks and their N first executions (in item order, so a queue keeps the items' order), with
-- the same columns, priority and host as insert_task; one NOTIFY fires on commit. Returns the
-- task and execution ids in item order.
with org as (
    select id, tier from organizations where id = $1
), r as (
    select * from jsonb_populate_record(null::tasks, $2::jsonb)
), run as (
    select coalesce(r.scheduled_at, now() + make_interval(secs => coalesce($3, 0))) as at from r
), items as materialized (
    -- Ids chosen up front so each execution is tied to its item (and its order) below.
    select uuid_generate_v7() as id, i.body, i.ord
    from unnest($4::text[]) with ordinality as i(body, ord)
), t as (
    insert into tasks (id, organization_id, name, url, method, headers, body, schedule_type,
                       timezone, scheduled_at, enabled, timeout_ms, retry_attempts, callback_url,
                       expected_status_codes, expected_body_pattern, queue, notify_on_failure,
                       notify_on_recovery, on_failure_url, on_recovery_url, alert_after,
                       origin, failure_callback_url)
    select items.id, org.id, r.name, r.url, r.method, coalesce(r.headers, '{}'), items.body,
           'once', coalesce(r.timezone, 'UTC'), run.at, coalesce(r.enabled, true), r.timeout_ms,
           r.retry_attempts, r.callback_url, r.expected_status_codes, r.expected_body_pattern,
           r.queue, r.notify_on_failure, r.notify_on_recovery, r.on_failure_url,
           r.on_recovery_url, coalesce(r.alert_after, 1), coalesce(r.origin, 'api'),
           r.failure_callback_url
    from org, r, run, items
    order by items.ord
    returning id, organization_id, host
), e as (
    insert into executions (organization_id, task_id, source, priority, scheduled_for, host)
    select t.organization_id, t.id, 'schedule', execution_priority(org.tier, null), run.at, t.host
    from items join t on t.id = items.id cross join org cross join run
    order by items.ord
    returning id, task_id, scheduled_for
), n as (
    select pg_notify('runlater_executions', '') where exists (select from e)
)
select (select count(*) from e) as created, (select min(scheduled_for) from e) as scheduled_for,
       (select array_agg(e.task_id order by items.ord) from e join items on items.id = e.task_id)
           as task_ids,
       (select array_agg(e.id order by items.ord) from e join items on items.id = e.task_id)
           as execution_ids,
       (select count(*) from n) as notified

-- name: lock_org_sync
-- One sync per organization at a time (released at commit/rollback), so two concurrent syncs
-- cannot both create the same new name.
select pg_advisory_xact_lock(hashtextextended('runlater:sync:' || $1::uuid::text, 0))

-- name: lock_named_tasks
-- The organization's live tasks with one of the names $2, locked for the sync's transaction.
select *
from tasks
where organization_id = $1 and deleted_at is null and name = any($2::text[])
order by id
for update

-- name: mark_synced_tasks
-- The organization's live tasks named in $2 are managed by sync from now on (written only when
-- the mark is new, so a repeated sync still writes nothing).
update tasks
set managed_by_sync = true
where organization_id = $1 and deleted_at is null and name = any($2::text[])
  and not managed_by_sync

-- name: unlisted_synced_task_ids
-- PUT /sync with delete_removed: the live tasks that sync manages and that $2 does not name
-- (tasks sync never created nor named are left alone); deleted with delete_tasks.
select id
from tasks
where organization_id = $1 and deleted_at is null and managed_by_sync
  and not (name = any($2::text[]))
