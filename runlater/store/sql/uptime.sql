-- name: insert_uptime_check
-- A new check of organization $1 from the row $2 (jsonb; runlater.domain.uptime).
insert into uptime_checks (organization_id, name, url, method, interval_seconds, timeout_ms,
                           expected_status_codes, keyword, failure_threshold, status, enabled,
                           badge_token, notify_on_failure, notify_on_recovery, on_failure_url,
                           on_recovery_url, alert_after, next_check_at)
select $1, r.name, r.url, r.method, r.interval_seconds, r.timeout_ms, r.expected_status_codes,
       r.keyword, r.failure_threshold, r.status, r.enabled, r.badge_token, r.notify_on_failure,
       r.notify_on_recovery, r.on_failure_url, r.on_recovery_url, r.alert_after,
       r.next_check_at
from jsonb_populate_record(null::uptime_checks, $2::jsonb) r
returning *

-- name: get_uptime_check
select * from uptime_checks where organization_id = $1 and id = $2

-- name: get_uptime_check_with_uptime
select c.*, uptime_of(c.id, $3) as uptime
from uptime_checks c where c.organization_id = $1 and c.id = $2

-- name: get_uptime_check_for_update
select * from uptime_checks where organization_id = $1 and id = $2 for update

-- name: list_uptime_checks
select c.*, uptime_of(c.id, $4) as uptime, count(*) over () as total
from uptime_checks c
where c.organization_id = $1
order by c.name, c.id
limit $2 offset $3

-- name: update_uptime_check
-- Write every editable column of check $2 from $3 (jsonb; the plan decided them all).
update uptime_checks c set
    name = r.name, url = r.url, method = r.method, interval_seconds = r.interval_seconds,
    timeout_ms = r.timeout_ms, expected_status_codes = r.expected_status_codes,
    keyword = r.keyword, failure_threshold = r.failure_threshold, status = r.status,
    enabled = r.enabled, notify_on_failure = r.notify_on_failure,
    notify_on_recovery = r.notify_on_recovery, on_failure_url = r.on_failure_url,
    on_recovery_url = r.on_recovery_url, alert_after = r.alert_after,
    next_check_at = r.next_check_at, consecutive_failures = r.consecutive_failures,
    updated_at = now()
from jsonb_populate_record(null::uptime_checks, $3::jsonb) r
where c.organization_id = $1 and c.id = $2
returning c.*

-- name: delete_uptime_check
delete from uptime_checks where organization_id = $1 and id = $2 returning id

-- name: list_uptime_results
select r.checked_at, r.ok, r.status_code, r.response_ms, r.error, count(*) over () as total
from uptime_results r
where r.organization_id = $1 and r.check_id = $2
order by r.checked_at desc, r.id desc
limit $3 offset $4

-- name: uptime_days_of
-- The daily aggregate of check $1 for the 90 days up to $2 (status pages' bars).
select day, checks, successes,
       case when checks > 0 then response_ms_total / checks end as avg_response_ms
from uptime_days
where check_id = $1 and day > ($2::timestamptz at time zone 'UTC')::date - 90
order by day

-- name: claim_due_uptime_checks
-- Checks due at $1 (at most $2): each moves on to its next instant in phase with its interval
-- (never run twice, never piling up after downtime); the instant it was due comes back.
with due as (
    select id from uptime_checks
    where enabled and status <> 'paused' and next_check_at <= $1
    order by next_check_at
    limit $2
    for update skip locked
)
update uptime_checks c
set next_check_at = c.next_check_at + make_interval(
        secs => c.interval_seconds
                * (floor(extract(epoch from ($1::timestamptz - c.next_check_at))
                         / c.interval_seconds) + 1))
from due
where c.id = due.id
returning c.id, c.organization_id, c.url, c.method, c.timeout_ms, c.expected_status_codes,
          c.keyword

-- name: next_uptime_check_at
select min(next_check_at) from uptime_checks where enabled and status <> 'paused'

-- name: record_uptime_result
-- One check's result ($1 check, $2 when, $3 ok, $4 status code, $5 response ms, $6 error), in
-- one statement: the raw result, the day's aggregate, the check's state (down after
-- failure_threshold failures in a row, up at the first success) and, when a failure streak
-- reaches the threshold or a notified one ends, the notification event.
with old as (
    select * from uptime_checks where id = $1 for update
), changed as (
    update uptime_checks c set
        last_checked_at = $2, last_response_ms = $5, last_status_code = $4, last_error = $6,
        consecutive_failures = case when $3 then 0 else c.consecutive_failures + 1 end,
        status = case when c.status = 'paused' or not c.enabled then c.status
                      when $3 then 'up'
                      when c.consecutive_failures + 1 >= c.failure_threshold then 'down'
                      else c.status end,
        failure_notified = case
            when $3 then false
            else c.failure_notified
                 or c.consecutive_failures + 1 >= greatest(c.failure_threshold, c.alert_after)
            end
    from old o
    where c.id = o.id
    returning c.id, c.status
), recorded as (
    insert into uptime_results (check_id, organization_id, checked_at, ok, status_code,
                                response_ms, error)
    select o.id, o.organization_id, $2, $3, $4, $5, $6 from old o
), counted as (
    insert into uptime_days as d (check_id, day, checks, successes, response_ms_total)
    select o.id, ($2::timestamptz at time zone 'UTC')::date, 1, case when $3 then 1 else 0 end,
           coalesce($5, 0)
    from old o
    on conflict (check_id, day) do update
        set checks = d.checks + 1, successes = d.successes + excluded.successes,
            response_ms_total = d.response_ms_total + excluded.response_ms_total
), evented as (
    insert into notification_events (organization_id, event, resource_type, resource_id,
                                     resource_name, details)
    select o.organization_id, case when $3 then 'monitor.up' else 'monitor.down' end,
           'uptime_check', o.id, o.name,
           jsonb_build_object(
               'reason', case when $3 then 'the URL answers as expected again'
                              else coalesce($6, 'the check failed') || ' (' || o.url || ')' end,
               'consecutive_failures', case when $3 then 0 else o.consecutive_failures + 1 end,
               'notify', case when $3 then o.notify_on_recovery else o.notify_on_failure end,
               'extra_url', case when $3 then o.on_recovery_url else o.on_failure_url end)
    from old o
    where (not $3 and o.consecutive_failures + 1
                      = greatest(o.failure_threshold, o.alert_after))
       or ($3 and o.failure_notified)
)
select o.status as old_status, ch.status as new_status from old o join changed ch on ch.id = o.id

-- name: delete_old_uptime_results
-- Up to $2 raw results older than their organization's plan retention, counted back from $1.
with doomed as (
    select old.id
    from organizations o
    join plans p on p.tier = o.tier
    cross join lateral (
        select r.id from uptime_results r
        where r.organization_id = o.id
          and r.checked_at < $1::timestamptz - make_interval(days => p.retention_days)
        limit $2
    ) old
    limit $2
)
delete from uptime_results where id in (select id from doomed)

-- name: delete_old_uptime_days
-- Daily aggregates older than 90 days (at most $2).
delete from uptime_days
where ctid in (select ctid from uptime_days
               where day < ($1::timestamptz at time zone 'UTC')::date - 90 limit $2)
