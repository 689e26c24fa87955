-- The dead-letter queue (migration 022): executions that failed for good, one row each.
-- Filters, in every query that takes them: $2 task id, $3 queue, $4 a piece of the URL
-- (case-insensitive), $5 status code, $6 failed at or after, $7 failed before; null = any.

-- name: list_dead_letters
-- Newest first; $8 a cursor (only letters older than that id), $9 limit, $10 offset. The
-- response body is cut to 1,024 characters here (get_dead_letter has it whole).
select d.id, d.execution_id, d.task_id, t.name as task_name, d.queue, d.url,
       coalesce(e.request_method, t.method) as method, d.status, d.status_code,
       coalesce(e.error_message, 'HTTP ' || d.status_code, d.status) as error_message,
       e.attempt, left(e.response_body, 1024) as response_body, d.failed_at, d.inserted_at,
       count(*) over () as total
from dead_letters d
join executions e on e.id = d.execution_id
join tasks t on t.id = d.task_id
where d.organization_id = $1
  and ($2::uuid is null or d.task_id = $2)
  and ($3::text is null or d.queue = $3)
  and ($4::text is null or strpos(lower(d.url), lower($4)) > 0)
  and ($5::int is null or d.status_code = $5)
  and ($6::timestamptz is null or d.failed_at >= $6)
  and ($7::timestamptz is null or d.failed_at < $7)
  and ($8::uuid is null or d.id < $8)
order by d.id desc
limit $9 offset $10

-- name: get_dead_letter
select d.id, d.execution_id, d.task_id, t.name as task_name, d.queue, d.url,
       coalesce(e.request_method, t.method) as method, d.status, d.status_code,
       coalesce(e.error_message, 'HTTP ' || d.status_code, d.status) as error_message,
       e.attempt, e.response_body, d.failed_at, d.inserted_at
from dead_letters d
join executions e on e.id = d.execution_id
join tasks t on t.id = d.task_id
where d.organization_id = $1 and d.id = $2

-- name: pick_dead_letters
-- A bulk action's letters, locked until its transaction ends: $8 ids (null: every letter the
-- filters match), oldest first, at most $9.
select d.id
from dead_letters d
where d.organization_id = $1
  and ($2::uuid is null or d.task_id = $2)
  and ($3::text is null or d.queue = $3)
  and ($4::text is null or strpos(lower(d.url), lower($4)) > 0)
  and ($5::int is null or d.status_code = $5)
  and ($6::timestamptz is null or d.failed_at >= $6)
  and ($7::timestamptz is null or d.failed_at < $7)
  and ($8::uuid[] is null or d.id = any($8::uuid[]))
order by d.id
limit $9
for update of d

-- name: delete_dead_letters
delete from dead_letters
where organization_id = $1 and id = any($2::uuid[])
returning id

-- name: retry_dead_letters
-- One more attempt of each letter's chain, now, as a manual retry of the chain (same
-- webhook-id; it runs once, more if the task's retry_attempts allow), and the letters leave
-- the queue. A chain at its last possible attempt ($3) starts afresh: attempt 1 of a new
-- chain. A letter whose task was deleted meanwhile is left alone.
with picked as (
    select d.id, d.execution_id
    from dead_letters d
    where d.organization_id = $1 and d.id = any($2::uuid[])
    for update of d
), source as (
    select p.id as dead_letter_id, uuid_generate_v7() as new_id, e.organization_id,
           e.task_id, e.attempt, coalesce(e.root_execution_id, e.id) as root_id, e.priority,
           t.host
    from picked p
    join executions e on e.id = p.execution_id
    join tasks t on t.id = e.task_id and t.deleted_at is null
), made as (
    insert into executions (id, organization_id, task_id, root_execution_id, source, attempt,
                            priority, scheduled_for, host)
    select s.new_id, s.organization_id, s.task_id,
           case when s.attempt < $3 then s.root_id end, 'retry',
           case when s.attempt < $3 then s.attempt + 1 else 1 end,
           s.priority, clock_timestamp(), s.host
    from source s
    order by s.dead_letter_id
    returning id, status, attempt, scheduled_for
), gone as (
    delete from dead_letters d
    using source s
    where d.id = s.dead_letter_id
    returning d.id
)
select s.dead_letter_id, m.id as execution_id, m.status, m.attempt, m.scheduled_for,
       (select count(*) from gone) as removed
from source s
join made m on m.id = s.new_id
order by s.dead_letter_id
