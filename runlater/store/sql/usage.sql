-- name: upsert_plans
-- The limits of runlater/plans.py, one row per tier (arrays in the same order; max_members
-- null = no limit).
insert into plans as p (tier, min_cron_interval_minutes, monthly_executions, hard_stop,
                        retention_days, max_members)
select * from unnest($1::text[], $2::int[], $3::bigint[], $4::bool[], $5::int[], $6::int[])
on conflict (tier) do update
    set min_cron_interval_minutes = excluded.min_cron_interval_minutes,
        monthly_executions = excluded.monthly_executions,
        hard_stop = excluded.hard_stop,
        retention_days = excluded.retention_days,
        max_members = excluded.max_members
    where (p.min_cron_interval_minutes, p.monthly_executions, p.hard_stop, p.retention_days,
           p.max_members)
          is distinct from (excluded.min_cron_interval_minutes, excluded.monthly_executions,
                            excluded.hard_stop, excluded.retention_days, excluded.max_members)

-- name: get_organization_usage
-- The organization with its plan and this UTC month's execution count (database clock; the
-- sum of the month's counter shards).
select o.id, o.name, o.slug, o.tier, o.webhook_secret,
       p.min_cron_interval_minutes, p.monthly_executions, p.hard_stop, p.retention_days,
       (select coalesce(sum(c.executions), 0)
        from usage_counters c
        where c.organization_id = o.id and c.month = m.month)::bigint as executions_this_month,
       m.month::timestamp at time zone 'UTC' as period_start,
       (m.month + interval '1 month')::timestamp at time zone 'UTC' as resets_at
from organizations o
join plans p on p.tier = o.tier
cross join (select usage_month(now()) as month) m
where o.id = $1

-- name: mark_new_work
-- Every execution this transaction inserts is new work a user asked for (a manual retry): over
-- a hard monthly limit it is refused like a first attempt (see executions_count_usage).
select set_config('runlater.new_work', 'on', true)

-- name: delete_expired_executions
-- Up to $2 finished executions older than their organization's plan retention, counted back
-- from $1; never a pending or running one, nor one whose callback is still being sent. Each
-- organization is read through executions_organization_idx: a row finishes after it is
-- inserted, so `inserted_at < cutoff` bounds the index range and `finished_at < cutoff` decides.
with doomed as (
    select old.id
    from organizations o
    join plans p on p.tier = o.tier
    cross join lateral (
        select e.id
        from executions e
        where e.organization_id = o.id
          and e.inserted_at < $1::timestamptz - make_interval(days => p.retention_days)
          and e.finished_at < $1::timestamptz - make_interval(days => p.retention_days)
          and e.status not in ('pending', 'running')
          and not exists (
              select 1 from callbacks c
              where c.execution_id = e.id and c.status in ('pending', 'sending'))
        limit $2
    ) old
    limit $2
), unheld as (
    -- A row another transaction holds (a retry being made of it) is left for the next pass.
    select e.id from executions e where e.id in (select id from doomed) for update skip locked
), deleted as (
    delete from executions e
    using unheld d
    where e.id = d.id
    returning e.id
)
select count(*) from deleted

-- name: delete_stale_host_backoffs
-- Per-host backoff rows whose backoff ended more than $1 seconds ago: the host was not called
-- since (a success deletes its row), so its failure count may start afresh. Up to $2 rows.
delete from host_backoffs
where ctid in (
    select ctid from host_backoffs
    where until < now() - make_interval(secs => $1)
    limit $2
    for update skip locked
)
