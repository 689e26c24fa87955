-- name: get_status_page
-- The organization's status page, or its defaults (off, the organization's slug and name).
select o.id as organization_id, coalesce(s.enabled, false) as enabled,
       coalesce(s.slug, o.slug) as slug, coalesce(s.title, o.name) as title,
       coalesce(s.items, '[]'::jsonb) as items, s.updated_at
from organizations o
left join status_pages s on s.organization_id = o.id
where o.id = $1

-- name: put_status_page
insert into status_pages as s (organization_id, enabled, slug, title, items)
values ($1, $2, $3, $4, $5::jsonb)
on conflict (organization_id) do update
    set enabled = excluded.enabled, slug = excluded.slug, title = excluded.title,
        items = excluded.items, updated_at = now()
returning *

-- name: status_page_by_slug
select s.*, o.name as organization_name
from status_pages s join organizations o on o.id = s.organization_id
where s.slug = $1 and s.enabled

-- name: existing_items
-- Which of the items ($2 types, $3 ids or names) organization $1 has: their positions.
select i.pos
from unnest($2::text[], $3::text[]) with ordinality as i(kind, ref, pos)
where case i.kind
    when 'task' then exists (select 1 from tasks t where t.organization_id = $1
                             and t.id::text = i.ref and t.deleted_at is null)
    when 'monitor' then exists (select 1 from monitors m where m.organization_id = $1
                                and m.id::text = i.ref)
    when 'uptime_check' then exists (select 1 from uptime_checks c
                                     where c.organization_id = $1 and c.id::text = i.ref)
    when 'queue' then exists (select 1 from queues q where q.organization_id = $1
                              and q.name = i.ref)
    else false end

-- name: status_items
-- Each item of organization $1's status page ($2 types, $3 ids or names, in order): its
-- name, state, 90-day uptime and daily bars up to $4 (deleted ones are left out).
with items as (
    select * from unnest($2::text[], $3::text[]) with ordinality as i(kind, ref, pos)
)
select i.pos, i.kind, x.name, x.state, x.uptime_90d, x.days
from items i
cross join lateral (
    select t.name,
           case when le.status is null then 'new'
                when le.status = 'success' then 'up' else 'down' end as state,
           (select round(100.0 * sum(d.good) / nullif(sum(d.good + d.bad), 0), 3)
            from resource_days d where d.resource_type = 'task' and d.resource_id = t.id
              and d.day > ($4::timestamptz at time zone 'UTC')::date - 90) as uptime_90d,
           (select coalesce(jsonb_agg(jsonb_build_array(d.day, d.good, d.bad) order by d.day),
                            '[]')
            from resource_days d where d.resource_type = 'task' and d.resource_id = t.id
              and d.day > ($4::timestamptz at time zone 'UTC')::date - 90) as days
    from tasks t
    left join lateral (
        select e.status from executions e
        where e.task_id = t.id and e.status in ('success', 'failed', 'timeout')
        order by e.scheduled_for desc limit 1
    ) le on true
    where i.kind = 'task' and t.organization_id = $1 and t.id::text = i.ref
      and t.deleted_at is null
    union all
    select m.name, m.status,
           (select round(100.0 * sum(d.good) / nullif(sum(d.good + d.bad), 0), 3)
            from resource_days d where d.resource_type = 'monitor' and d.resource_id = m.id
              and d.day > ($4::timestamptz at time zone 'UTC')::date - 90),
           (select coalesce(jsonb_agg(jsonb_build_array(d.day, d.good, d.bad) order by d.day),
                            '[]')
            from resource_days d where d.resource_type = 'monitor' and d.resource_id = m.id
              and d.day > ($4::timestamptz at time zone 'UTC')::date - 90)
    from monitors m
    where i.kind = 'monitor' and m.organization_id = $1 and m.id::text = i.ref
    union all
    select c.name, c.status, (uptime_of(c.id, $4) ->> '90d')::numeric,
           (select coalesce(jsonb_agg(jsonb_build_array(d.day, d.successes,
                                                        d.checks - d.successes) order by d.day),
                            '[]')
            from uptime_days d where d.check_id = c.id
              and d.day > ($4::timestamptz at time zone 'UTC')::date - 90)
    from uptime_checks c
    where i.kind = 'uptime_check' and c.organization_id = $1 and c.id::text = i.ref
    union all
    select q.name, case when q.paused then 'paused' else 'up' end, null, '[]'::jsonb
    from queues q
    where i.kind = 'queue' and q.organization_id = $1 and q.name = i.ref
) x
order by i.pos

-- name: badge_by_token
-- The resource behind a badge token: what it is, its name, state and 30-day uptime at $2.
select 'monitor' as kind, m.name, m.status as state,
       (select round(100.0 * sum(d.good) / nullif(sum(d.good + d.bad), 0), 2)
        from resource_days d where d.resource_type = 'monitor' and d.resource_id = m.id
          and d.day > ($2::timestamptz at time zone 'UTC')::date - 30) as uptime_30d
from monitors m where m.badge_token = $1
union all
select 'uptime_check', c.name, c.status, (uptime_of(c.id, $2) ->> '30d')::numeric
from uptime_checks c where c.badge_token = $1
union all
select 'task', t.name,
       coalesce((select case when e.status = 'success' then 'up' else 'down' end
                 from executions e
                 where e.task_id = t.id and e.status in ('success', 'failed', 'timeout')
                 order by e.scheduled_for desc limit 1), 'new'),
       (select round(100.0 * sum(d.good) / nullif(sum(d.good + d.bad), 0), 2)
        from resource_days d where d.resource_type = 'task' and d.resource_id = t.id
          and d.day > ($2::timestamptz at time zone 'UTC')::date - 30)
from tasks t where t.badge_token = $1 and t.deleted_at is null

-- name: system_status
-- Runlater's own health: the leader's lease, the backlog of due executions, and how late
-- executions started per day over 90 days (histogram sums over the shards).
select
    (select expires_at from leader_leases order by expires_at desc limit 1) as leader_until,
    (select count(*) from executions
     where status = 'pending' and scheduled_for < now() - interval '60 seconds') as backlog,
    coalesce((select jsonb_agg(jsonb_build_array(x.day, x.started, x.l0, x.l1, x.l2, x.l3,
                                                 x.l4, x.l5, x.l6, x.max_ms) order by x.day)
              from (select day, sum(started) as started, sum(l0) as l0, sum(l1) as l1,
                           sum(l2) as l2, sum(l3) as l3, sum(l4) as l4, sum(l5) as l5,
                           sum(l6) as l6, max(max_ms) as max_ms
                    from lateness_days
                    where day > (now() at time zone 'UTC')::date - 90
                    group by day) x), '[]') as lateness

-- name: delete_old_resource_days
delete from resource_days
where ctid in (select ctid from resource_days
               where day < ($1::timestamptz at time zone 'UTC')::date - 90 limit $2)
