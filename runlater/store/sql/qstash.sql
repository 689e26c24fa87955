-- Queries of the QStash-compatible API (/v2): signing keys, deduplication ids, the reads of
-- messages, schedules and queues in QStash's terms. Every one is scoped by organization ($1).

-- name: qstash_signing_keys
select qstash_current_signing_key as current, qstash_next_signing_key as next
from organizations where id = $1

-- name: rotate_qstash_signing_keys
-- The next key becomes the current one and a new next key is made: a receiver that accepts
-- both (QStash's Receiver does) keeps verifying across the rotation.
update organizations
set qstash_current_signing_key = qstash_next_signing_key,
    qstash_next_signing_key = qstash_signing_key(),
    updated_at = now()
where id = $1
returning qstash_current_signing_key as current, qstash_next_signing_key as next

-- name: lock_qstash_dedup
-- Hold deduplication key $2 of organization $1 until this transaction ends, waiting for a
-- request that holds it (the same lock an Idempotency-Key takes: same table, same keys).
select pg_advisory_xact_lock(hashtextextended($1::uuid::text || ':' || $2::text, $3::bigint))

-- name: find_qstash_dedup
-- The answer recorded for the key within the last 24 hours (run after lock_qstash_dedup, in a
-- statement of its own: its snapshot then sees what the lock's last holder committed).
select response_body from idempotency_keys
where organization_id = $1 and key = $2 and status = 'done'
  and created_at >= now() - interval '24 hours'

-- name: qstash_schedules
-- The organization's schedules made through /v2 (cron tasks of origin 'qstash'), oldest first.
select * from task_view
where organization_id = $1 and origin = 'qstash' and schedule_type = 'cron'
order by inserted_at, id
limit $2

-- name: qstash_queues
-- Queues of organization $1 (only queue $2 when given), with their waiting messages.
select q.name, q.paused, q.inserted_at, q.updated_at,
       (select count(*) from executions e
        where e.organization_id = q.organization_id and e.queue = q.name
          and e.status = 'pending') as lag
from queues q
where q.organization_id = $1 and ($2::text is null or q.name = $2)
order by q.name

-- name: delete_qstash_queue
-- Delete queue $2 unless a live task still names it (its row is where the claim keeps the
-- queue's order and pause switch: a task's next execution needs it).
with users as (
    select count(*) as n from tasks
    where organization_id = $1 and queue = $2 and deleted_at is null
), gone as (
    delete from queues q
    where q.organization_id = $1 and q.name = $2 and (select n from users) = 0
    returning q.name
)
select exists (select 1 from queues where organization_id = $1 and name = $2) as existed,
       (select n from users) as tasks,
       (select count(*) from gone) as deleted

-- name: qstash_tasks_by_id
-- Tasks $2 of organization $1, deleted ones too (a dead letter outlives its task).
select * from tasks where organization_id = $1 and id = any($2::uuid[])
