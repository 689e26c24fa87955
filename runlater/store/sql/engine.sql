-- name: claim_executions
-- Claim up to $1 due executions for node $2; lease = task timeout + $3 seconds (database clock).
-- Hosts in backoff for the organization are skipped: their executions wait, no worker does.
-- Unqueued rows as always. Of a named queue only its head can run (queue_heads(): first by
-- place, queue not paused, nothing of it running), through a compare-and-set on the queue row:
-- it is locked with the head (SKIP LOCKED: a queue being claimed right now is skipped), and
-- the lock rechecks `claims` against the value this statement's snapshot read, so a claimer
-- whose snapshot predates another claim of the queue skips it too. A claim bumps `claims`.
with unqueued as (
    select e.id, e.priority, e.scheduled_for
    from executions e
    where e.status = 'pending' and e.queue is null and e.scheduled_for <= now()
      and not exists (
          select 1 from host_backoffs b
          where b.organization_id = e.organization_id and b.host = e.host and b.until > now())
    order by e.priority, e.scheduled_for
    limit $1
    for update skip locked
), queued as (
    select e.id, e.priority, e.scheduled_for, q.organization_id, q.name
    from queue_heads() h
    join queues q on q.organization_id = h.organization_id and q.name = h.queue
    join executions e on e.id = h.id
    where h.scheduled_for <= now() and q.claims = h.claims and not q.paused
      and e.status = 'pending' and e.organization_id = q.organization_id and e.queue = q.name
    order by h.priority, h.scheduled_for
    limit $1
    for update of q, e skip locked
), picked as (
    select c.id
    from (select id, priority, scheduled_for from unqueued
          union all
          select id, priority, scheduled_for from queued) c
    order by c.priority, c.scheduled_for
    limit $1
), bumped as (
    update queues q
    set claims = q.claims + 1
    from queued h
    join picked p on p.id = h.id
    where q.organization_id = h.organization_id and q.name = h.name
)
update executions e
set status = 'running',
    started_at = now(),
    lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => t.timeout_ms / 1000.0 + $3),
    leased_by = $2
from picked p, tasks t, organizations o
where e.id = p.id and t.id = e.task_id and o.id = e.organization_id
returning e.id, e.lease_token, e.task_id, e.organization_id, e.attempt,
          coalesce(e.root_execution_id, e.id) as root_execution_id, e.scheduled_for,
          t.schedule_type, t.url, t.method, t.headers, t.body, t.body_bytes, t.origin,
          case when t.origin = 'qstash' then o.qstash_current_signing_key end
              as qstash_signing_key,
          t.timeout_ms,
          t.retry_attempts, t.expected_status_codes, t.expected_body_pattern,
          t.next_run_at,
          array_remove(array[o.webhook_secret,
                             case when o.previous_webhook_secret_expires_at > now()
                                  then o.previous_webhook_secret end], null) as signing_secrets

-- name: next_due_in_s
-- Seconds until something may be claimable: the earliest pending unqueued execution whose host
-- is not in backoff, the earliest head a queue could run now (never a row waiting behind its
-- head, in a paused queue or behind a running one: reporting those would make the pool spin),
-- or the end of the earliest backoff (negative: overdue; null: nothing pending).
select extract(epoch from (least(
    (select e.scheduled_for
     from executions e
     where e.status = 'pending' and e.queue is null
       and not exists (
           select 1 from host_backoffs b
           where b.organization_id = e.organization_id and b.host = e.host and b.until > now())
     order by e.scheduled_for
     limit 1),
    (select min(h.scheduled_for) from queue_heads() h),
    (select min(until) from host_backoffs where until > now())
) - now()))::float8 as due_in

-- name: count_claimable
-- What a claim with no limit would take now: due unqueued rows whose host is not in backoff,
-- plus at most one head per queue.
select (select count(*)
        from executions e
        where e.status = 'pending' and e.queue is null and e.scheduled_for <= now()
          and not exists (
              select 1 from host_backoffs b
              where b.organization_id = e.organization_id and b.host = e.host
                and b.until > now()))
     + (select count(*) from queue_heads() h where h.scheduled_for <= now())

-- name: complete_executions
-- Fenced batch completion: a row changes only while its lease token still matches. In the same
-- statement: the next attempt of rows with a retry delay, the callback outbox row of tasks with
-- a callback_url, and the per-host backoff bookkeeping.
with outcome as (
    select *
    from unnest($1::uuid[], $2::uuid[], $3::text[], $4::int[], $5::int[], $6::text[],
                $7::text[], $8::jsonb[], $9::jsonb[], $10::float8[], $11::text[], $12::text[],
                $13::text[], $14::float8[])
         as o(id, lease_token, status, status_code, duration_ms, response_body,
              error_message, request_headers, response_headers, retry_in_s, request_method,
              request_url, request_body, retry_after_s)
), done as (
    update executions e
    set status = o.status,
        finished_at = now(),
        status_code = o.status_code,
        duration_ms = o.duration_ms,
        response_body = o.response_body,
        error_message = o.error_message,
        request_method = o.request_method,
        request_url = o.request_url,
        request_headers = o.request_headers,
        request_body = o.request_body,
        response_headers = o.response_headers,
        lease_token = null,
        lease_expires_at = null
    from outcome o
    where e.id = o.id and e.lease_token = o.lease_token and e.status = 'running'
    returning e.id, e.organization_id, e.task_id, e.attempt, e.priority, e.status,
              e.status_code, e.duration_ms, e.response_body, e.error_message,
              e.scheduled_for, e.finished_at,
              coalesce(e.root_execution_id, e.id) as root_id, o.retry_in_s, o.retry_after_s
), retried as (
    insert into executions (organization_id, task_id, root_execution_id, source, attempt,
                            priority, scheduled_for, host)
    select d.organization_id, d.task_id, d.root_id, 'retry', d.attempt + 1, d.priority,
           now() + make_interval(secs => d.retry_in_s), t.host
    from done d
    join tasks t on t.id = d.task_id and t.deleted_at is null
    where d.retry_in_s is not null
    returning id
), called as (
    insert into callbacks (organization_id, execution_id, url, payload)
    select d.organization_id, d.id, t.callback_url, jsonb_build_object(
        'event', 'execution.completed', 'task_id', d.task_id, 'execution_id', d.id,
        'status', d.status, 'status_code', d.status_code, 'duration_ms', d.duration_ms,
        'response_body', d.response_body, 'error_message', d.error_message,
        'attempt', d.attempt, 'scheduled_for', api_timestamp(d.scheduled_for),
        'finished_at', api_timestamp(d.finished_at))
    from done d
    join tasks t on t.id = d.task_id
    where t.callback_url is not null
    on conflict (execution_id, kind) do nothing
    returning id
), hosts as (
    select d.organization_id, t.host,
           bool_or(d.status = 'success') as recovered,
           max(case when d.status_code = 429 then coalesce(d.retry_after_s, 10) end)
               as throttled_s,
           count(*) filter (where d.status <> 'success'
                            and (d.status_code is null or d.status_code >= 500)) as failures
    from done d
    join tasks t on t.id = d.task_id
    where t.host is not null
    group by d.organization_id, t.host
), backed_off as (
    insert into host_backoffs as b (organization_id, host, failures, until)
    select h.organization_id, h.host, h.failures,
           now() + make_interval(secs => greatest(coalesce(h.throttled_s, 0),
                                                  host_backoff_s(h.failures)))
    from hosts h
    where not h.recovered and (h.throttled_s is not null or h.failures > 0)
    order by h.organization_id, h.host  -- one lock order for concurrent batches
    on conflict (organization_id, host) do update
        set failures = b.failures + excluded.failures,
            until = greatest(b.until, excluded.until,
                             now() + make_interval(
                                 secs => host_backoff_s(b.failures + excluded.failures))),
            updated_at = now()
    returning 1
), cleared as (
    delete from host_backoffs b
    using hosts h
    where h.recovered and b.organization_id = h.organization_id and b.host = h.host
    returning 1
)
select (select count(*) from done) as completed, (select count(*) from retried) as retried,
       (select count(*) from called) as callbacks,
       (select count(*) from backed_off) + (select count(*) from cleared) as hosts_changed,
       (select count(*) from (select pg_notify('runlater_callbacks', '')
                              from called limit 1) n) as notified

-- name: rescue_expired_leases
-- Expired leases go back to pending; the third interruption fails the execution for good; an
-- execution whose task was deleted meanwhile is cancelled instead of run again.
with expired as (
    select e.id, (t.deleted_at is not null) as task_gone
    from executions e
    join tasks t on t.id = e.task_id
    where e.status = 'running' and e.lease_expires_at < now()
    order by e.lease_expires_at
    limit $1
    for update of e skip locked
), decided as (
    select x.id,
           case when x.task_gone then 'cancelled'
                when e.rescue_count + 1 >= $2 then 'failed'
                else 'pending' end as status
    from expired x join executions e on e.id = x.id
)
update executions e
set status = d.status,
    finished_at = case when d.status = 'pending' then null else now() end,
    error_message = case
        when d.status = 'cancelled' then 'task deleted'
        when d.status = 'failed'
            then 'interrupted ' || (e.rescue_count + 1) || ' times: the node running it stopped'
        else e.error_message end,
    started_at = case when d.status = 'pending' then null else e.started_at end,
    rescue_count = e.rescue_count + 1,
    lease_token = null,
    lease_expires_at = null
from decided d
where e.id = d.id
returning e.id, e.status

-- name: release_leases
-- A node shutting down hands its unfinished executions straight back (fenced by token).
update executions e
set status = 'pending', started_at = null, lease_token = null, lease_expires_at = null
from unnest($1::uuid[], $2::uuid[]) as r(id, lease_token)
where e.id = r.id and e.lease_token = r.lease_token and e.status = 'running'
returning e.id

-- name: acquire_leader_lease
-- Take or renew lease $1 for holder $2 for $3 seconds; returns a row only when we hold it.
insert into leader_leases as l (name, holder, expires_at)
values ($1, $2, now() + make_interval(secs => $3))
on conflict (name) do update
    set holder = excluded.holder, expires_at = excluded.expires_at
    where l.holder = excluded.holder or l.expires_at < now()
returning holder, extract(epoch from (expires_at - now()))::float8 as valid_for_s

-- name: release_leader_lease
delete from leader_leases where name = $1 and holder = $2

-- name: due_cron_tasks
select t.id, t.organization_id, t.cron_expression, t.timezone, t.next_run_at, t.interval_minutes
from tasks t
where t.schedule_type = 'cron' and t.enabled and t.deleted_at is null
  and t.next_run_at <= $1
order by t.next_run_at
limit $2

-- name: next_cron_due
-- Leaving out $1, the tasks skipped in the last pass because their rows were locked.
select min(next_run_at) from tasks
where schedule_type = 'cron' and enabled and deleted_at is null and id <> all($1::uuid[])

-- name: advance_cron_tasks
-- Compare-and-set next_run_at, and insert the runs of the tasks whose CAS won, in one
-- statement. The unique (task_id, scheduled_for) index makes a repeat a no-op. A task row that
-- another transaction holds (an API request changing it, maybe on a node that is partitioned
-- right now) is skipped, not waited for: the leader's pass over every organization's tasks
-- never queues behind one session; the skipped ones come back in the next pass.
with due as (
    select a.id, a.old_next, a.new_next
    from unnest($1::uuid[], $2::timestamptz[], $3::timestamptz[]) as a(id, old_next, new_next)
    join tasks t on t.id = a.id and t.next_run_at = a.old_next
    where t.enabled and t.deleted_at is null
), locked as (
    select t.id
    from tasks t
    where t.id in (select id from due)
    for update of t skip locked
), moved as (
    update tasks t
    set next_run_at = d.new_next
    from due d, locked l, organizations o
    where t.id = d.id and l.id = d.id and t.next_run_at = d.old_next
      and o.id = t.organization_id and t.enabled and t.deleted_at is null
    returning t.id, t.organization_id, t.host,
              execution_priority(o.tier, t.interval_minutes) as priority
), inserted as (
    insert into executions (organization_id, task_id, source, status, priority, scheduled_for,
                            finished_at, error_message, host)
    select m.organization_id, m.id, 'schedule', r.status, m.priority, r.scheduled_for,
           case when r.status = 'missed' then now() end,
           case when r.status = 'missed'
                then 'missed: the scheduler was not running at this time' end,
           m.host
    from unnest($4::uuid[], $5::timestamptz[], $6::text[]) as r(task_id, scheduled_for, status)
    join moved m on m.id = r.task_id
    on conflict (task_id, scheduled_for) where source = 'schedule' do nothing
    returning status
)
select (select count(*) from moved) as advanced,
       (select count(*) from inserted where status = 'pending') as created,
       (select count(*) from inserted where status = 'missed') as missed,
       array(select d.id from due d where d.id not in (select id from locked)) as skipped,
       (select count(*) from (select pg_notify('runlater_executions', '')
                              from inserted where status = 'pending' limit 1) n) as notified

-- name: notify_executions
select pg_notify('runlater_executions', $1)

-- name: notify_tasks
select pg_notify('runlater_tasks', $1)

-- name: ping
select 1
