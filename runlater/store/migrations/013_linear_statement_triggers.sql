-- The statement triggers of migrations 011 and 012 join a statement's old and new transition
-- tables by id. Postgres has no statistics for transition tables and estimates one row each,
-- so it chose a nested loop: a statement that changed n rows cost n² comparisons (8,000
-- executions finished by one UPDATE took 13.6 s instead of 0.2 s; bench/home.py found it).
-- These functions plan without nested loops now, which leaves a hash or merge join.
alter function executions_notify_events() set enable_nestloop = off;
alter function tasks_notify_updated() set enable_nestloop = off;

-- notify_events sliced its id array by scanning the whole array once per 150-id slice
-- (n²/150 element reads); now one pass groups the ids into slices, sent in order.
create or replace function notify_events(kind text, ids jsonb) returns void
language plpgsql as $$
declare
    slice jsonb;
begin
    if ids is null then
        return;
    end if;
    for slice in
        select jsonb_agg(x.v order by x.o)
        from jsonb_array_elements(ids) with ordinality as x(v, o)
        group by (x.o - 1) / 150
        order by (x.o - 1) / 150
    loop
        perform pg_notify('runlater_events', jsonb_build_object('k', kind, 'ids', slice)::text);
    end loop;
end
$$;
