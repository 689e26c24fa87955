-- name: insert_monitor
-- A new monitor of organization $1 from the row $2 (jsonb; runlater.domain.monitors).
insert into monitors (organization_id, name, ping_token, badge_token, schedule_type,
                      interval_seconds, cron_expression, timezone, cron_upcoming,
                      cron_refresh_at, grace_period_seconds, status, enabled, notify_on_failure,
                      notify_on_recovery, on_failure_url, on_recovery_url, alert_after)
select $1, r.name, r.ping_token, r.badge_token, r.schedule_type, r.interval_seconds,
       r.cron_expression, r.timezone, r.cron_upcoming, r.cron_refresh_at,
       r.grace_period_seconds, r.status, r.enabled, r.notify_on_failure, r.notify_on_recovery,
       r.on_failure_url, r.on_recovery_url, r.alert_after
from jsonb_populate_record(null::monitors, $2::jsonb) r
returning *

-- name: get_monitor
select * from monitors where organization_id = $1 and id = $2

-- name: get_monitor_for_update
select * from monitors where organization_id = $1 and id = $2 for update

-- name: list_monitors
-- The organization's monitors by name, with the total for paging.
select m.*, count(*) over () as total
from monitors m
where m.organization_id = $1
order by m.name, m.id
limit $2 offset $3

-- name: update_monitor
-- Write every editable column of monitor $2 from $3 (jsonb; the plan decided them all).
update monitors m set
    name = r.name,
    schedule_type = r.schedule_type,
    interval_seconds = r.interval_seconds,
    cron_expression = r.cron_expression,
    timezone = r.timezone,
    cron_upcoming = r.cron_upcoming,
    cron_refresh_at = r.cron_refresh_at,
    grace_period_seconds = r.grace_period_seconds,
    last_status_change_at = case when r.status <> m.status then now()
                                 else m.last_status_change_at end,
    status = r.status,
    enabled = r.enabled,
    notify_on_failure = r.notify_on_failure,
    notify_on_recovery = r.notify_on_recovery,
    on_failure_url = r.on_failure_url,
    on_recovery_url = r.on_recovery_url,
    alert_after = r.alert_after,
    next_expected_at = r.next_expected_at,
    started_at = r.started_at,
    started_rid = r.started_rid,
    down_at = r.down_at,
    updated_at = now()
from jsonb_populate_record(null::monitors, $3::jsonb) r
where m.organization_id = $1 and m.id = $2
returning m.*

-- name: delete_monitor
delete from monitors where organization_id = $1 and id = $2 returning id

-- name: list_monitor_pings
-- Pings of monitor $2 (of organization $1), newest first, with the total for paging.
select p.id, p.kind, p.exit_status, p.rid, p.method, p.source_ip, p.user_agent, p.body,
       p.body_truncated, p.duration_ms, p.received_at, count(*) over () as total
from monitor_pings p
where p.organization_id = $1 and p.monitor_id = $2
order by p.received_at desc, p.id desc
limit $3 offset $4

-- name: ping_monitor
-- One ping, one statement: record it and move the monitor's state as
-- runlater.domain.heartbeat.on_ping does ($1 token, $2 kind, $3 exit status, $4 rid, $5 the
-- time received, $6 method, $7 source address, $8 user agent, $9 body, $10 body truncated).
-- The `old` CTE locks the row, so the values it reads are the ones the update replaces; the
-- Monitor's marking (mark_overdue_monitors) skips a row a ping holds, and a ping waits for a
-- row the Monitor holds and then sees it down (a recovery). A disabled monitor is answered
-- 410 and nothing is written. A cron monitor whose upcoming instants have all passed gets no
-- next_expected_at here (`expected_missing`): the caller computes it (fix_monitor_expected).
with old as (
    select m.* from monitors m where m.ping_token = $1 for update
), calc as (
    select o.id, o.status as old_status,
           $2 in ('success', 'fail') and o.started_at is not null
               and ($4::uuid is null or $4::uuid is not distinct from o.started_rid) as finishes_run,
           -- The start a finish measures from: the open run's, or (runs overlapping, each
           -- with its rid) the latest start of the same rid in the ping log.
           case when $2 not in ('success', 'fail') then null
                when o.started_at is not null
                     and ($4::uuid is null or $4::uuid is not distinct from o.started_rid) then o.started_at
                when $4::uuid is not null then (
                    select p.received_at from monitor_pings p
                    where p.monitor_id = o.id and p.kind = 'start' and p.rid = $4::uuid
                      and p.received_at <= $5::timestamptz
                    order by p.received_at desc limit 1)
           end as run_start,
           case when o.schedule_type = 'interval'
                then $5::timestamptz + make_interval(secs => o.interval_seconds)
                else (select min(u) from unnest(o.cron_upcoming) u where u > $5::timestamptz)
           end as expected,
           make_interval(secs => o.grace_period_seconds) as grace,
           case when $2 = 'start' then
                    case when o.status = 'paused'
                         then case when o.next_expected_at is not null then 'up' else 'new' end
                         else o.status end
                when $2 = 'success' then 'up'
                else 'down' end as new_status
    from old o
    where o.enabled and $2 <> 'log'
), changed as (
    update monitors m set
        status = c.new_status,
        last_ping_at = $5,
        last_ping_kind = $2,
        last_status_change_at = case when c.new_status <> m.status then $5
                                     else m.last_status_change_at end,
        consecutive_failures = case when $2 = 'fail' then m.consecutive_failures + 1
                                    when $2 = 'success' then 0
                                    else m.consecutive_failures end,
        failure_notified = case when $2 = 'success' then false
                                when $2 = 'fail' then m.failure_notified
                                     or m.consecutive_failures + 1 >= m.alert_after
                                else m.failure_notified end,
        last_duration_ms = case when c.run_start is not null
                                then (extract(epoch from ($5::timestamptz - c.run_start))
                                      * 1000)::bigint
                                else m.last_duration_ms end,
        started_at = case when $2 = 'start' then $5
                          when c.finishes_run then null else m.started_at end,
        started_rid = case when $2 = 'start' then $4::uuid
                           when c.finishes_run then null else m.started_rid end,
        next_expected_at = case when $2 = 'start'
                                then case when m.status = 'paused' then null
                                          else m.next_expected_at end
                                else c.expected end,
        down_at = case
            when $2 = 'start' then case when c.new_status in ('new', 'up')
                                        then $5::timestamptz + c.grace end
            when $2 = 'fail' then null
            -- success: an open run of another rid keeps its own deadline
            when m.started_at is not null and not c.finishes_run then m.started_at + c.grace
            else c.expected + c.grace end,
        updated_at = now()
    from calc c
    where m.id = c.id
    returning m.id, m.status, m.next_expected_at, m.down_at, c.old_status, c.run_start,
              m.last_duration_ms
), evented as (
    -- A failure streak reaching alert_after, or the end of one that was notified: the event
    -- is written with the ping (the Notifier makes notifications of it).
    insert into notification_events (organization_id, event, resource_type, resource_id,
                                     resource_name, details)
    select o.organization_id,
           case when $2 = 'fail' then 'monitor.down' else 'monitor.up' end,
           'monitor', o.id, o.name,
           jsonb_build_object(
               'reason', case when $2 = 'success' then 'a success ping arrived'
                              when $3::smallint is not null
                              then 'the job exited with status ' || $3::smallint::text
                              else 'the job reported a failure' end,
               'consecutive_failures', case when $2 = 'fail' then o.consecutive_failures + 1
                                            else 0 end,
               'notify', case when $2 = 'fail' then o.notify_on_failure
                              else o.notify_on_recovery end,
               'extra_url', case when $2 = 'fail' then o.on_failure_url
                                 else o.on_recovery_url end)
    from old o
    join changed ch on ch.id = o.id
    where ($2 = 'fail' and o.consecutive_failures + 1 = o.alert_after)
       or ($2 = 'success' and o.failure_notified)
), daily as (
    -- A finish counts for the monitor's day (status pages' 90-day bars).
    insert into resource_days as d (resource_type, resource_id, day, good, bad)
    select 'monitor', ch.id, ($5::timestamptz at time zone 'UTC')::date,
           case when $2 = 'success' then 1 else 0 end, case when $2 = 'fail' then 1 else 0 end
    from changed ch
    where $2 in ('success', 'fail')
    on conflict (resource_type, resource_id, day) do update
        set good = d.good + excluded.good, bad = d.bad + excluded.bad
), recorded as (
    insert into monitor_pings (monitor_id, organization_id, kind, exit_status, rid, method,
                               source_ip, user_agent, body, body_truncated, duration_ms,
                               received_at)
    select o.id, o.organization_id, $2, $3::smallint, $4::uuid, $6, $7, $8, $9, $10,
           case when ch.run_start is not null then ch.last_duration_ms end, $5
    from old o left join changed ch on ch.id = o.id
    where o.enabled
    returning id
)
select o.id, o.organization_id, o.enabled, o.schedule_type, o.cron_expression, o.timezone,
       o.grace_period_seconds,
       ch.old_status, ch.status as new_status, ch.next_expected_at,
       ($2 in ('success', 'fail') and o.schedule_type = 'cron' and ch.id is not null
        and ch.next_expected_at is null) as expected_missing,
       (select count(*) from recorded) as recorded
from old o left join changed ch on ch.id = o.id

-- name: fix_monitor_expected
-- A cron monitor pinged at $2 after its upcoming instants ran out: its new instants ($3, $4)
-- and the watch from the next one ($5) — unless another ping came since (fenced on $2).
update monitors m set
    cron_upcoming = $3::timestamptz[],
    cron_refresh_at = $4,
    next_expected_at = $5,
    down_at = case when m.status = 'up' and m.enabled
                   then coalesce(m.started_at, $5::timestamptz)
                        + make_interval(secs => m.grace_period_seconds) end,
    updated_at = now()
where m.id = $1 and m.last_ping_at = $2 and m.next_expected_at is null
returning m.id

-- name: mark_overdue_monitors
-- The Monitor's tick: every watched monitor whose deadline is at or before $1 goes down, in
-- one range scan of monitors_down_at_idx. A row a ping holds is skipped (the ping moves its
-- deadline; the next tick sees the outcome); the deadline is checked again on the locked row.
-- A failure streak that reaches alert_after writes its event in the same statement.
with due as (
    select id from monitors
    where down_at <= $1
    order by down_at
    limit $2
    for update skip locked
), marked as (
    update monitors m set status = 'down', down_at = null, last_status_change_at = $1,
                          consecutive_failures = m.consecutive_failures + 1,
                          failure_notified = m.failure_notified
                                             or m.consecutive_failures + 1 >= m.alert_after,
                          updated_at = now()
    from due
    where m.id = due.id and m.down_at <= $1
    returning m.id, m.organization_id, m.name, m.started_at, m.next_expected_at,
              m.consecutive_failures, m.alert_after, m.notify_on_failure, m.on_failure_url
), evented as (
    insert into notification_events (organization_id, event, resource_type, resource_id,
                                     resource_name, details)
    select k.organization_id, 'monitor.down', 'monitor', k.id, k.name,
           jsonb_build_object(
               'reason', case when k.started_at is not null
                              then 'a run started at ' || api_timestamp(k.started_at)
                                   || ' did not finish within the grace period'
                              else 'no ping arrived by ' || api_timestamp(k.next_expected_at)
                                   || ' and the grace period' end,
               'consecutive_failures', k.consecutive_failures,
               'notify', k.notify_on_failure, 'extra_url', k.on_failure_url)
    from marked k
    where k.consecutive_failures = k.alert_after
), daily as (
    insert into resource_days as d (resource_type, resource_id, day, good, bad)
    select 'monitor', k.id, ($1::timestamptz at time zone 'UTC')::date, 0, 1
    from marked k
    order by k.id
    on conflict (resource_type, resource_id, day) do update set bad = d.bad + 1
)
select * from marked

-- name: next_monitor_deadline
select min(down_at) from monitors where down_at is not null

-- name: cron_monitors_to_refresh
-- Cron monitors whose upcoming instants are half used up, at most $2.
select id, cron_expression, timezone
from monitors
where schedule_type = 'cron' and cron_refresh_at <= $1
order by cron_refresh_at
limit $2

-- name: refresh_cron_upcoming
-- New upcoming instants of one cron monitor, unless its schedule changed meanwhile.
update monitors set cron_upcoming = $4::timestamptz[], cron_refresh_at = $5
where id = $1 and cron_expression = $2 and timezone = $3

-- name: delete_old_monitor_pings
-- Up to $2 pings older than their organization's plan retention, counted back from $1.
with doomed as (
    select old.id
    from organizations o
    join plans p on p.tier = o.tier
    cross join lateral (
        select mp.id from monitor_pings mp
        where mp.organization_id = o.id
          and mp.received_at < $1::timestamptz - make_interval(days => p.retention_days)
        limit $2
    ) old
    limit $2
)
delete from monitor_pings where id in (select id from doomed)

-- name: lock_named_monitors
-- PUT /sync: the organization's monitors with one of the names $2, locked.
select * from monitors where organization_id = $1 and name = any($2::text[]) for update

-- name: delete_unlisted_synced_monitors
-- PUT /sync with delete_removed: monitors sync manages that $2 does not name (monitors sync
-- never created nor named are left alone).
delete from monitors
where organization_id = $1 and managed_by_sync and not (name = any($2::text[]))
returning name

-- name: mark_synced_monitors
update monitors set managed_by_sync = true
where organization_id = $1 and name = any($2::text[]) and not managed_by_sync
