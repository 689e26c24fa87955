-- name: event_executions
-- The executions of a runlater_events notification (migration 011), with their task's queue.
select e.id as execution_id, e.organization_id, e.task_id, e.status, e.status_code,
       e.duration_ms, e.attempt, e.scheduled_for, e.started_at, e.finished_at, e.queue,
       now() as read_at
from executions e
where e.id = any($1::uuid[])

-- name: event_tasks
-- The tasks of a notification, as the API shows them.
select t.*, now() as read_at
from task_view t
where t.id = any($1::uuid[])

-- name: event_deleted_tasks
select id, organization_id, now() as read_at from tasks where id = any($1::uuid[])

-- name: event_queues
-- Queues of a notification ([organization id, name] pairs) with their pending and running.
select q.organization_id, q.name, q.paused,
       (select count(*) from executions e
        where e.organization_id = q.organization_id and e.queue = q.name
          and e.status = 'pending') as pending,
       (select count(*) from executions e
        where e.organization_id = q.organization_id and e.queue = q.name
          and e.status = 'running') as running,
       now() as read_at
from queues q
join unnest($1::uuid[], $2::text[]) as k(org, name)
  on q.organization_id = k.org and q.name = k.name

-- name: event_monitors
-- Heartbeat monitors of a notification: their state now.
select m.id, m.organization_id, m.name, m.status, m.last_ping_at, m.next_expected_at,
       m.started_at, m.last_duration_ms, m.enabled, m.updated_at, now() as read_at
from monitors m
where m.id = any($1::uuid[])

-- name: event_uptime_checks
select c.id, c.organization_id, c.name, c.status, c.last_checked_at, c.last_response_ms,
       c.last_status_code, c.last_error, c.enabled, c.updated_at, now() as read_at
from uptime_checks c
where c.id = any($1::uuid[])
