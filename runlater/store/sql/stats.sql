-- name: execution_hours
-- The organization's finished executions per hour of the last $2 hours, by outcome, with the
-- duration histogram (migration 012), oldest first; hours without any are left out.
select date_trunc('hour', minute) as hour,
       sum(success)::int as success, sum(failed)::int as failed, sum(timeout)::int as timeout,
       sum(other)::int as other,
       array[sum(d0), sum(d1), sum(d2), sum(d3), sum(d4), sum(d5), sum(d6), sum(d7), sum(d8),
             sum(d9), sum(d10), sum(d11)]::int[] as durations
from execution_minutes
where organization_id = $1 and minute >= date_trunc('hour', now()) - make_interval(hours => $2 - 1)
group by 1
order by 1

-- name: delete_old_execution_minutes
-- The per-minute aggregate past what the home page shows (7 days), up to $1 rows.
with doomed as (
    select organization_id, minute from execution_minutes
    where minute < now() - interval '8 days'
    limit $1
    for update skip locked
)
delete from execution_minutes m
using doomed d
where m.organization_id = d.organization_id and m.minute = d.minute
