-- name: list_queues
-- The organization's queues by name, with how many executions wait in each and run now.
select q.name, q.paused,
       count(e.id) filter (where e.status = 'pending') as pending,
       count(e.id) filter (where e.status = 'running') as running
from queues q
left join executions e
    on e.organization_id = q.organization_id and e.queue = q.name
   and e.status in ('pending', 'running') and e.queue is not null
where q.organization_id = $1
group by q.name, q.paused
order by q.name

-- name: set_queue_paused
-- Pause ($3 true) or resume ($3 false) queue $2 of organization $1; no row when it has no such
-- queue. A resume wakes the pools (on commit): the queue's head may be due already.
with changed as (
    update queues
    set paused = $3, updated_at = now()
    where organization_id = $1 and name = $2
    returning name, paused
), woken as (
    select pg_notify('runlater_executions', '') from changed where not changed.paused
)
select c.name, c.paused, (select count(*) from woken) as notified
from changed c
