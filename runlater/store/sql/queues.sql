-- name: list_queues
-- The organization's queues by name, with how many executions wait in each and run now, and
-- since when the oldest due one waits (the dashboard shows its age).
select q.name, q.paused,
       count(e.id) filter (where e.status = 'pending') as pending,
       count(e.id) filter (where e.status = 'running') as running,
       min(e.scheduled_for) filter (where e.status = 'pending' and e.scheduled_for <= now())
           as oldest_due
from queues q
left join executions e
    on e.organization_id = q.organization_id and e.queue = q.name
   and e.status in ('pending', 'running') and e.queue is not null
where q.organization_id = $1
group by q.name, q.paused
order by q.name

-- name: set_queue_paused
-- Pause ($3 true) or resume ($3 false) queue $2 of organization $1. A queue is a name: pausing
-- one that no task has used yet creates it paused, and its first items wait. A resume wakes the
-- pools (on commit): the queue's head may be due already.
with changed as (
    insert into queues (organization_id, name, paused)
    values ($1, $2, $3)
    on conflict (organization_id, name) do update
        set paused = excluded.paused, updated_at = now()
    returning name, paused
), woken as (
    select pg_notify('runlater_executions', '') from changed where not changed.paused
)
select c.name, c.paused, (select count(*) from woken) as notified
from changed c

-- name: count_executions_by_status
-- Executions pending and running in the whole cluster (every organization): /metrics only.
select status, count(*) as n
from executions
where status in ('pending', 'running')
group by status
