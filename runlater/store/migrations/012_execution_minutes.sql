-- Executions finished per organization and minute, by outcome, with a histogram of their
-- durations: what the dashboard's home page charts read, so a page view sums at most
-- 7 × 24 × 60 rows of one organization instead of scanning its executions. Kept up by the
-- statement-level trigger that already sends the live events (one upsert per organization and
-- minute per statement), deleted by the Janitor after 8 days.
--
-- Duration buckets (upper bounds, ms): d0 ≤ 10, d1 ≤ 25, d2 ≤ 50, d3 ≤ 100, d4 ≤ 250,
-- d5 ≤ 500, d6 ≤ 1000, d7 ≤ 2500, d8 ≤ 5000, d9 ≤ 10000, d10 ≤ 30000, d11 more (or unknown).

create table execution_minutes (
    organization_id uuid not null references organizations(id) on delete cascade,
    minute timestamptz not null check (date_trunc('minute', minute) = minute),
    success integer not null default 0,
    failed integer not null default 0,
    timeout integer not null default 0,
    other integer not null default 0,  -- cancelled and missed
    d0 integer not null default 0, d1 integer not null default 0, d2 integer not null default 0,
    d3 integer not null default 0, d4 integer not null default 0, d5 integer not null default 0,
    d6 integer not null default 0, d7 integer not null default 0, d8 integer not null default 0,
    d9 integer not null default 0, d10 integer not null default 0, d11 integer not null default 0,
    primary key (organization_id, minute)
);
create index execution_minutes_minute_idx on execution_minutes (minute);

create or replace function executions_notify_events() returns trigger
language plpgsql as $$
begin
    perform notify_events('xs', (
        select jsonb_agg(n.id) from changed_new n join changed_old o on o.id = n.id
        where n.status = 'running' and o.status <> 'running'));
    perform notify_events('xf', (
        select jsonb_agg(n.id) from changed_new n join changed_old o on o.id = n.id
        where n.status in ('success', 'failed', 'timeout', 'cancelled', 'missed')
          and o.status is distinct from n.status));
    insert into execution_minutes as m (organization_id, minute, success, failed, timeout, other,
                                        d0, d1, d2, d3, d4, d5, d6, d7, d8, d9, d10, d11)
    select n.organization_id, date_trunc('minute', n.finished_at),
           count(*) filter (where n.status = 'success'),
           count(*) filter (where n.status = 'failed'),
           count(*) filter (where n.status = 'timeout'),
           count(*) filter (where n.status in ('cancelled', 'missed')),
           count(*) filter (where n.duration_ms <= 10),
           count(*) filter (where n.duration_ms > 10 and n.duration_ms <= 25),
           count(*) filter (where n.duration_ms > 25 and n.duration_ms <= 50),
           count(*) filter (where n.duration_ms > 50 and n.duration_ms <= 100),
           count(*) filter (where n.duration_ms > 100 and n.duration_ms <= 250),
           count(*) filter (where n.duration_ms > 250 and n.duration_ms <= 500),
           count(*) filter (where n.duration_ms > 500 and n.duration_ms <= 1000),
           count(*) filter (where n.duration_ms > 1000 and n.duration_ms <= 2500),
           count(*) filter (where n.duration_ms > 2500 and n.duration_ms <= 5000),
           count(*) filter (where n.duration_ms > 5000 and n.duration_ms <= 10000),
           count(*) filter (where n.duration_ms > 10000 and n.duration_ms <= 30000),
           count(*) filter (where n.duration_ms > 30000 or n.duration_ms is null)
    from changed_new n join changed_old o on o.id = n.id
    where n.status in ('success', 'failed', 'timeout', 'cancelled', 'missed')
      and o.status is distinct from n.status and n.finished_at is not null
    group by n.organization_id, date_trunc('minute', n.finished_at)
    order by 1, 2  -- one lock order for concurrent batches
    on conflict (organization_id, minute) do update
        set success = m.success + excluded.success, failed = m.failed + excluded.failed,
            timeout = m.timeout + excluded.timeout, other = m.other + excluded.other,
            d0 = m.d0 + excluded.d0, d1 = m.d1 + excluded.d1, d2 = m.d2 + excluded.d2,
            d3 = m.d3 + excluded.d3, d4 = m.d4 + excluded.d4, d5 = m.d5 + excluded.d5,
            d6 = m.d6 + excluded.d6, d7 = m.d7 + excluded.d7, d8 = m.d8 + excluded.d8,
            d9 = m.d9 + excluded.d9, d10 = m.d10 + excluded.d10, d11 = m.d11 + excluded.d11;
    return null;
end
$$;

-- Executions inserted already finished (a missed cron slot) count too.
create function executions_count_inserted_minutes() returns trigger
language plpgsql as $$
begin
    insert into execution_minutes as m (organization_id, minute, other, d11)
    select n.organization_id, date_trunc('minute', n.finished_at), count(*), count(*)
    from changed_new n
    where n.finished_at is not null
    group by n.organization_id, date_trunc('minute', n.finished_at)
    order by 1, 2
    on conflict (organization_id, minute) do update
        set other = m.other + excluded.other, d11 = m.d11 + excluded.d11;
    return null;
end
$$;

create trigger executions_count_inserted_minutes
    after insert on executions referencing new table as changed_new
    for each statement execute function executions_count_inserted_minutes();
