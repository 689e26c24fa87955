-- name: insert_channel
insert into notification_channels (organization_id, name, type, target, events, enabled)
values ($1, $2, $3, $4, $5::text[], $6)
returning *

-- name: list_channels
-- The organization's channels by name, each with its last notifications' outcome counts.
select c.*,
       (select count(*) from notifications n
        where n.channel_id = c.id and n.status = 'sent') as sent,
       (select count(*) from notifications n
        where n.channel_id = c.id and n.status = 'failed') as failed
from notification_channels c
where c.organization_id = $1
order by c.name, c.id

-- name: get_channel
select * from notification_channels where organization_id = $1 and id = $2

-- name: get_channel_for_update
select * from notification_channels where organization_id = $1 and id = $2 for update

-- name: update_channel
update notification_channels
set name = $3, type = $4, target = $5, events = $6::text[], enabled = $7, updated_at = now()
where organization_id = $1 and id = $2
returning *

-- name: delete_channel
delete from notification_channels where organization_id = $1 and id = $2 returning id

-- name: list_notifications
-- What was sent, suppressed or failed, newest first; $4 filters by channel when given.
select n.id, n.channel_id, n.event, n.resource_type, n.resource_id, n.channel_type, n.target,
       n.status, n.reason, n.attempts, n.inserted_at, n.sent_at, n.payload,
       count(*) over () as total
from notifications n
where n.organization_id = $1 and ($4::uuid is null or n.channel_id = $4::uuid)
order by n.inserted_at desc, n.seq desc
limit $2 offset $3

-- name: insert_window
insert into maintenance_windows (organization_id, resource_type, resource_id, starts_at,
                                 ends_at, cron, timezone, duration_minutes, reason)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9)
returning *

-- name: list_windows
select * from maintenance_windows where organization_id = $1 order by inserted_at desc, id desc

-- name: delete_window
delete from maintenance_windows where organization_id = $1 and id = $2 returning id

-- name: resource_exists
-- Whether organization $1 has the resource ($2 type, $3 id) a maintenance window names.
select case $2
    when 'task' then exists (select 1 from tasks
                             where organization_id = $1 and id = $3 and deleted_at is null)
    when 'monitor' then exists (select 1 from monitors where organization_id = $1 and id = $3)
    else false end

-- name: lock_pending_events
-- The Notifier's events to expand, oldest first; another node's are skipped.
select * from notification_events
where processed_at is null
order by occurred_at
limit $1
for update skip locked

-- name: notify_contexts
-- Per organization of $1: its name, channels, owners, maintenance windows that may be open
-- at $2, failure mails since the hour's start $3, and whether that hour's summary exists.
select o.id, o.name,
       coalesce((select jsonb_agg(to_jsonb(c) order by c.name)
                 from notification_channels c where c.organization_id = o.id), '[]')
           as channels,
       coalesce((select array_agg(u.email order by u.email)
                 from memberships m join users u on u.id = m.user_id
                 where m.organization_id = o.id and m.role = 'owner'), '{}') as owners,
       coalesce((select jsonb_agg(to_jsonb(w))
                 from maintenance_windows w
                 where w.organization_id = o.id and (w.cron is not null or w.ends_at > $2)),
                '[]') as windows,
       (select count(*) from notifications n
        where n.organization_id = o.id and n.channel_type = 'email'
          and n.status <> 'suppressed' and n.summary_of is null
          and n.event in ('task.failed', 'monitor.down', 'endpoint.failed')
          and n.inserted_at >= $3) as failure_mails,
       exists (select 1 from notifications n
               where n.organization_id = o.id and n.summary_of = $3) as summary_planned
from organizations o
where o.id = any($1::uuid[])

-- name: insert_notification
-- One planned notification ($14: the Notifier's now; a summary's row is made once per hour).
insert into notifications (organization_id, event_id, channel_id, event, resource_type,
                           resource_id, channel_type, target, payload, status, reason,
                           next_attempt_at, summary_of, inserted_at, sent_at)
values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,
        coalesce($12::timestamptz, $14::timestamptz), $13::timestamptz, $14::timestamptz,
        case when $10 = 'sent' then $14::timestamptz end)
on conflict (organization_id, summary_of) where summary_of is not null do nothing

-- name: mark_events_processed
update notification_events set processed_at = $2 where id = any($1::uuid[])

-- name: rescue_notifications
-- A node that died while sending: its notifications are due again (the attempt counted).
update notifications
set status = 'pending', lease_token = null, lease_expires_at = null, next_attempt_at = $1,
    attempts = attempts + 1, reason = 'interrupted while sending'
where status = 'sending' and lease_expires_at < $1

-- name: claim_notifications
-- Due notifications to send (HTTP channels and hourly summaries), leased for $2 seconds.
with picked as (
    select id from notifications
    where status = 'pending' and next_attempt_at <= $3
    order by next_attempt_at
    limit $1
    for update skip locked
)
update notifications n
set status = 'sending', lease_token = gen_random_uuid(),
    lease_expires_at = $3::timestamptz + make_interval(secs => $2)
from picked p, organizations o
where n.id = p.id and o.id = n.organization_id
returning n.id, n.organization_id, n.lease_token, n.channel_type, n.target, n.payload,
          n.attempts, n.event, n.summary_of, o.name as organization_name,
          array_remove(array[o.webhook_secret,
                             case when o.previous_webhook_secret_expires_at > now()
                                  then o.previous_webhook_secret end], null) as signing_secrets

-- name: finish_notifications
-- Fenced by lease token: sent, or the next attempt after $6 seconds, or failed at $7 attempts.
update notifications n
set status = case when r.ok then 'sent'
                  when n.attempts + 1 >= $7 then 'failed'
                  else 'pending' end,
    attempts = n.attempts + 1,
    sent_at = case when r.ok then $8::timestamptz end,
    next_attempt_at = case when r.ok or n.attempts + 1 >= $7 then n.next_attempt_at
                           else $8::timestamptz + make_interval(secs => r.retry_in_s) end,
    last_status_code = r.status_code,
    reason = case when r.ok then null else r.error end,
    lease_token = null,
    lease_expires_at = null
from unnest($1::uuid[], $2::uuid[], $3::bool[], $4::int[], $5::text[], $6::float8[])
     as r(id, lease_token, ok, status_code, error, retry_in_s)
where n.id = r.id and n.lease_token = r.lease_token and n.status = 'sending'
returning n.id, n.status

-- name: throttled_in_hour
-- What the throttle held back in organization $1's hour starting $2 (for its summary).
select id, event, payload, inserted_at
from notifications
where organization_id = $1 and status = 'suppressed' and reason like 'throttled:%'
  and inserted_at >= $2 and inserted_at < $2::timestamptz + interval '1 hour'
order by inserted_at, seq

-- name: finish_summary
-- A summary handed to the mail outbox (fenced by its lease).
update notifications
set status = 'sent', sent_at = $3, attempts = attempts + 1, lease_token = null,
    lease_expires_at = null
where id = $1 and lease_token = $2 and status = 'sending'
returning id

-- name: next_notification_due_in_s
select extract(epoch from (min(next_attempt_at) - $1::timestamptz))::float8
from notifications where status = 'pending'

-- name: owners_of
select array_agg(u.email order by u.email) as owners
from memberships m join users u on u.id = m.user_id
where m.organization_id = $1 and m.role = 'owner'
