-- name: receive_inbound_event
-- One request to /in/{slug}, one statement: the event and, when it is received (not rejected),
-- one one-time task per forward URL (in the URLs' order) with its first execution, as
-- insert_task makes them (priority, host). $1 slug; $2 the verdict: null = not checked yet (the
-- event is stored only when the endpoint checks no signature), 'received' or 'rejected'; $3 the
-- rejection's reason; $4 method, $5 path suffix, $6 query, $7 headers (jsonb), $8 body, $9 body
-- is UTF-8 text without NUL, $10 source address, $11 when it was received. Always one row: the
-- endpoint's settings (enabled, verify_*) and the event's id when one was stored; no row when
-- no endpoint has the slug.
with ep as (
    select e.*, o.tier
    from inbound_endpoints e
    join organizations o on o.id = e.organization_id
    where e.slug = $1
), ev as (
    insert into inbound_events (endpoint_id, organization_id, status, reason, method, path, query,
                                headers, body, body_is_text, source_ip, received_at)
    select ep.id, ep.organization_id, coalesce($2::text, 'received'), $3, $4, $5, $6, $7::jsonb,
           $8, $9, $10, $11
    from ep
    where ep.enabled and ($2::text is not null or ep.verify_scheme is null)
    returning *
), urls as materialized (
    -- Ids chosen up front so each execution follows its task's URL order (a queue keeps it).
    select uuid_generate_v7() as id, ev.id as event_id, u.url, u.ord
    from ev
    cross join ep
    cross join lateral unnest(ep.forward_urls) with ordinality as u(url, ord)
    where ev.status = 'received'
), t as (
    insert into tasks (id, organization_id, name, url, method, headers, body, body_bytes,
                       schedule_type, timezone, scheduled_at, enabled, timeout_ms, retry_attempts,
                       queue, notify_on_failure, notify_on_recovery, alert_after, origin,
                       inbound_event_id)
    select urls.id, ep.organization_id, left(ep.name || ' → ' || urls.url, 200), urls.url,
           coalesce(ep.forward_method, ev.method),
           inbound_forward_headers(ev.headers, ep.forward_headers, ep.forward_authorization),
           case when ep.forward_body is not null then ep.forward_body
                when ev.body_is_text and length(ev.body) > 0
                    then convert_from(ev.body, 'UTF8') end,
           case when ep.forward_body is null and not ev.body_is_text then ev.body end,
           'once', 'UTC', now(), true, 30000, ep.retry_attempts,
           case when ep.use_queue then 'endpoint:' || ep.id::text end, false, false, 1,
           'inbound', ev.id
    from urls
    join ev on ev.id = urls.event_id
    cross join ep
    order by urls.ord
    returning id, organization_id, host, scheduled_at
), x as (
    insert into executions (organization_id, task_id, source, priority, scheduled_for, host)
    select t.organization_id, t.id, 'schedule', execution_priority(ep.tier, null),
           t.scheduled_at, t.host
    from urls
    join t on t.id = urls.id
    cross join ep
    order by urls.ord
    returning id
), n as (
    select pg_notify('runlater_executions', '') where exists (select from x)
)
select ep.id as endpoint_id, ep.organization_id, ep.enabled, ep.verify_scheme, ep.verify_secret,
       ep.verify_header, ep.verify_encoding, ep.verify_tolerance_s, ev.id as event_id,
       ev.status, (select count(*) from x) as forwards, (select count(*) from n) as notified
from ep
left join ev on true

-- name: replay_inbound_events
-- New forwards (one-time tasks, first executions, as receive_inbound_event makes them) of the
-- events of endpoint $2 (of organization $1) chosen by: $3 ids (null = any), $4 status (null =
-- any), $5 received at or after, $6 received before, at most $7 events, oldest first; to the
-- endpoint's forward URLs now. Returns whether the endpoint exists, the events replayed and the
-- forwards made.
with ep as (
    select e.*, o.tier
    from inbound_endpoints e
    join organizations o on o.id = e.organization_id
    where e.organization_id = $1 and e.id = $2
), evs as materialized (
    select ev.*
    from inbound_events ev
    join ep on ev.endpoint_id = ep.id
    where ev.organization_id = $1
      and ($3::uuid[] is null or ev.id = any($3::uuid[]))
      and ($4::text is null or ev.status = $4)
      and ($5::timestamptz is null or ev.received_at >= $5)
      and ($6::timestamptz is null or ev.received_at < $6)
    order by ev.received_at, ev.id
    limit $7
), urls as materialized (
    select uuid_generate_v7() as id, ev.id as event_id, u.url,
           row_number() over (order by ev.received_at, ev.id, u.ord) as ord
    from evs ev
    cross join ep
    cross join lateral unnest(ep.forward_urls) with ordinality as u(url, ord)
), t as (
    insert into tasks (id, organization_id, name, url, method, headers, body, body_bytes,
                       schedule_type, timezone, scheduled_at, enabled, timeout_ms, retry_attempts,
                       queue, notify_on_failure, notify_on_recovery, alert_after, origin,
                       inbound_event_id)
    select urls.id, ep.organization_id, left(ep.name || ' → ' || urls.url, 200), urls.url,
           coalesce(ep.forward_method, ev.method),
           inbound_forward_headers(ev.headers, ep.forward_headers, ep.forward_authorization),
           case when ep.forward_body is not null then ep.forward_body
                when ev.body_is_text and length(ev.body) > 0
                    then convert_from(ev.body, 'UTF8') end,
           case when ep.forward_body is null and not ev.body_is_text then ev.body end,
           'once', 'UTC', now(), true, 30000, ep.retry_attempts,
           case when ep.use_queue then 'endpoint:' || ep.id::text end, false, false, 1,
           'inbound', ev.id
    from urls
    join evs ev on ev.id = urls.event_id
    cross join ep
    order by urls.ord
    returning id, organization_id, host, scheduled_at
), x as (
    insert into executions (organization_id, task_id, source, priority, scheduled_for, host)
    select t.organization_id, t.id, 'schedule', execution_priority(ep.tier, null),
           t.scheduled_at, t.host
    from urls
    join t on t.id = urls.id
    cross join ep
    order by urls.ord
    returning id
), n as (
    select pg_notify('runlater_executions', '') where exists (select from x)
)
select exists (select from ep) as found, (select count(*) from evs) as events,
       (select count(*) from x) as forwards, (select count(*) from n) as notified

-- name: insert_endpoint
-- A new endpoint of organization $1 from the row $2 (jsonb; runlater.domain.inbound).
insert into inbound_endpoints (organization_id, name, slug, forward_urls, enabled,
                               retry_attempts, use_queue, forward_method, forward_headers,
                               forward_body, forward_authorization, verify_scheme,
                               verify_secret, verify_header, verify_encoding,
                               verify_tolerance_s, notify_on_failure, notify_on_recovery,
                               on_failure_url, on_recovery_url, alert_after)
select $1, r.name, r.slug, r.forward_urls, r.enabled, r.retry_attempts, r.use_queue,
       r.forward_method, r.forward_headers, r.forward_body, r.forward_authorization,
       r.verify_scheme, r.verify_secret, r.verify_header, r.verify_encoding,
       r.verify_tolerance_s, r.notify_on_failure, r.notify_on_recovery, r.on_failure_url,
       r.on_recovery_url, r.alert_after
from jsonb_populate_record(null::inbound_endpoints, $2::jsonb) r
returning *

-- name: get_endpoint
select * from inbound_endpoints where organization_id = $1 and id = $2

-- name: get_endpoint_for_update
select * from inbound_endpoints where organization_id = $1 and id = $2 for update

-- name: list_endpoints
-- The organization's endpoints by name, with the total for paging.
select e.*, count(*) over () as total
from inbound_endpoints e
where e.organization_id = $1
order by e.name, e.id
limit $2 offset $3

-- name: update_endpoint
-- Write every editable column of endpoint $2 from $3 (jsonb; the plan decided them all).
update inbound_endpoints e set
    name = r.name,
    slug = r.slug,
    forward_urls = r.forward_urls,
    enabled = r.enabled,
    retry_attempts = r.retry_attempts,
    use_queue = r.use_queue,
    forward_method = r.forward_method,
    forward_headers = r.forward_headers,
    forward_body = r.forward_body,
    forward_authorization = r.forward_authorization,
    verify_scheme = r.verify_scheme,
    verify_secret = r.verify_secret,
    verify_header = r.verify_header,
    verify_encoding = r.verify_encoding,
    verify_tolerance_s = r.verify_tolerance_s,
    notify_on_failure = r.notify_on_failure,
    notify_on_recovery = r.notify_on_recovery,
    on_failure_url = r.on_failure_url,
    on_recovery_url = r.on_recovery_url,
    alert_after = r.alert_after,
    updated_at = now()
from jsonb_populate_record(null::inbound_endpoints, $3::jsonb) r
where e.organization_id = $1 and e.id = $2
returning e.*

-- name: delete_endpoint
-- The endpoint, its events and their forwards (tasks and executions: pending ones never run).
delete from inbound_endpoints where organization_id = $1 and id = $2 returning id

-- name: list_inbound_events
-- Events of endpoint $2 (of organization $1), newest first, with the total for paging:
-- $3 status or null, $4 received at or after (null: any), $5 received before (null: any).
select ev.*, octet_length(ev.body) as size, count(*) over () as total
from inbound_events ev
where ev.organization_id = $1 and ev.endpoint_id = $2
  and ($3::text is null or ev.status = $3)
  and ($4::timestamptz is null or ev.received_at >= $4)
  and ($5::timestamptz is null or ev.received_at < $5)
order by ev.received_at desc, ev.id desc
limit $6 offset $7

-- name: get_inbound_event
select ev.*, octet_length(ev.body) as size
from inbound_events ev
where ev.organization_id = $1 and ev.endpoint_id = $2 and ev.id = $3

-- name: inbound_event_forwards
-- The forwards of event $2 (of organization $1), first made first, each with its latest
-- execution (the last attempt of its retry chain, or a manual retry).
select t.id as task_id, t.url, t.method, t.inserted_at, x.id as execution_id, x.status,
       x.attempt, x.status_code, x.error_message, x.scheduled_for, x.finished_at
from tasks t
left join lateral (
    select e.id, e.status, e.attempt, e.status_code, e.error_message, e.scheduled_for,
           e.finished_at
    from executions e
    where e.task_id = t.id
    order by e.inserted_at desc, e.attempt desc
    limit 1
) x on true
where t.organization_id = $1 and t.inbound_event_id = $2
order by t.inserted_at, t.id

-- name: event_inbound_events
-- Events of a runlater_events notification (kind 'ie'): endpoint.event_received.
select ev.id, ev.organization_id, ev.endpoint_id, ev.status, ev.method, ev.received_at,
       octet_length(ev.body) as size, now() as read_at
from inbound_events ev
where ev.id = any($1::uuid[])

-- name: delete_old_inbound_events
-- Up to $2 events older than their organization's plan retention, counted back from $1, whose
-- forwards have all finished (none pending or running); their forward tasks and executions go
-- with them (the foreign keys' cascade).
with doomed as (
    select old.id
    from organizations o
    join plans p on p.tier = o.tier
    cross join lateral (
        select ev.id
        from inbound_events ev
        where ev.organization_id = o.id
          and ev.received_at < $1::timestamptz - make_interval(days => p.retention_days)
          and not exists (
              select 1 from tasks t join executions x on x.task_id = t.id
              where t.inbound_event_id = ev.id and x.status in ('pending', 'running'))
        limit $2
    ) old
    limit $2
), gone as (
    delete from inbound_events ev using doomed d where ev.id = d.id returning ev.id
)
select count(*) from gone

-- name: lock_named_endpoints
-- PUT /sync: the organization's endpoints with one of the names $2, locked.
select * from inbound_endpoints where organization_id = $1 and name = any($2::text[]) for update

-- name: delete_unlisted_synced_endpoints
-- PUT /sync with delete_removed: endpoints sync manages that $2 does not name (endpoints sync
-- never created nor named are left alone).
delete from inbound_endpoints
where organization_id = $1 and managed_by_sync and not (name = any($2::text[]))
returning name

-- name: mark_synced_endpoints
update inbound_endpoints set managed_by_sync = true
where organization_id = $1 and name = any($2::text[]) and not managed_by_sync

-- name: inbound_forwards_of_events
-- The forwards of the events $2 (of organization $1), as inbound_event_forwards, with their
-- event's id.
select t.inbound_event_id as event_id, t.id as task_id, t.url, t.method, t.inserted_at,
       x.id as execution_id, x.status, x.attempt, x.status_code, x.error_message,
       x.scheduled_for, x.finished_at
from tasks t
left join lateral (
    select e.id, e.status, e.attempt, e.status_code, e.error_message, e.scheduled_for,
           e.finished_at
    from executions e
    where e.task_id = t.id
    order by e.inserted_at desc, e.attempt desc
    limit 1
) x on true
where t.organization_id = $1 and t.inbound_event_id = any($2::uuid[])
order by t.inserted_at, t.id

-- name: inbound_activity
-- Per endpoint of organization $1: events received since $2, of them rejected, and the time of
-- the latest event (any time).
select e.id as endpoint_id,
       (select count(*) from inbound_events ev
        where ev.endpoint_id = e.id and ev.received_at >= $2) as events,
       (select count(*) from inbound_events ev
        where ev.endpoint_id = e.id and ev.received_at >= $2 and ev.status = 'rejected')
           as rejected,
       (select max(ev.received_at) from inbound_events ev where ev.endpoint_id = e.id)
           as last_event_at
from inbound_endpoints e
where e.organization_id = $1
