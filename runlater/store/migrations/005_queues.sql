-- Named queues: per organization, at most one execution running at a time, strict FIFO.
--
-- Queue data is derived in the database (triggers), so every way of inserting tasks and
-- executions (API, batch, scheduler, retries) gets it without knowing about queues.

-- One row per (organization, queue name), created the first time a task uses the name; it holds
-- the pause switch and `claims`, the claim's compare-and-set counter (see claim_executions).
create table queues (
    organization_id uuid not null references organizations(id) on delete cascade,
    name text not null check (length(name) between 1 and 200),
    paused boolean not null default false,
    claims bigint not null default 0,
    inserted_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    primary key (organization_id, name)
);

-- An execution's queue (its task's, copied when the execution is created and while it is
-- pending) and its place in that queue: (queue_position, queue_seq). An item's place is its
-- scheduled_for, ties in insertion order (the sequence). Every retry of a chain, automatic or
-- manual, takes the place of the chain's first execution: a retry waiting for its time keeps the
-- head of the queue, and a manual retry runs before items that were queued after the original.
alter table executions
    add column queue text,
    add column queue_position timestamptz,
    add column queue_seq bigint;
create sequence executions_queue_seq as bigint;

-- Set-based, once per inserting statement (measured: a row trigger doing a task lookup per row
-- cost +22 % on a 100k-row insert, this costs nothing measurable there and ~9 us on a one-row
-- insert). It fires at the end of the statement, so it also sees task rows that another part
-- of the same statement inserted after its executions. Places are numbered in insertion order.
create function executions_queue_assign() returns trigger
language plpgsql as $$
begin
    update executions e
    set queue = p.queue, queue_position = p.queue_position, queue_seq = p.queue_seq
    from (
        select o.id, o.queue, o.queue_position,
               coalesce(o.root_seq, nextval('executions_queue_seq')) as queue_seq
        from (
            select i.id, t.queue,
                   case when i.root_execution_id is null then i.scheduled_for
                        else coalesce(r.queue_position, r.scheduled_for, i.scheduled_for)
                   end as queue_position,
                   r.queue_seq as root_seq
            from (select n.id, n.task_id, n.root_execution_id, n.scheduled_for,
                         row_number() over () as ord
                  from inserted n) i
            join tasks t on t.id = i.task_id
            left join executions r on r.id = i.root_execution_id
            where t.queue is not null
            order by i.ord
        ) o
    ) p
    where e.id = p.id;
    return null;
end
$$;

create trigger executions_queue_assign
    after insert on executions
    referencing new table as inserted
    for each statement execute function executions_queue_assign();

-- A pending item moved to another time (a one-time task's new run_at) moves in its queue too.
create function executions_queue_follow_time() returns trigger
language plpgsql as $$
begin
    new.queue_position := new.scheduled_for;
    return new;
end
$$;

create trigger executions_queue_follow_time
    before update of scheduled_for on executions
    for each row
    when (new.queue is not null and new.root_execution_id is null
          and old.scheduled_for is distinct from new.scheduled_for)
    execute function executions_queue_follow_time();

-- A queued execution that stops running (finished, rescued, handed back) unblocks its queue:
-- wake the pools then, or the next item would wait for a poll (they do not report a queue
-- with a running row as due). One NOTIFY per transaction however many rows (Postgres folds
-- repeats); unqueued rows do not fire it (the WHEN clause), so the claim/complete path of
-- unqueued work pays nothing.
create function executions_queue_unblocked() returns trigger
language plpgsql as $$
begin
    perform pg_notify('runlater_executions', '');
    return null;
end
$$;

create trigger executions_queue_unblocked
    after update of status on executions
    for each row
    when (old.status = 'running' and new.status <> 'running' and old.queue is not null)
    execute function executions_queue_unblocked();

-- A task's queue has a queue row (created the first time a task names it). When a task moves
-- to another queue (or out of queues), its pending executions move with it, keeping their place
-- by time; running ones finish in the queue they started in.
create function tasks_queue_sync() returns trigger
language plpgsql as $$
begin
    if new.queue is not null then
        insert into queues (organization_id, name)
        values (new.organization_id, new.queue)
        on conflict do nothing;
    end if;
    if tg_op = 'UPDATE' then
        update executions e
        set queue = new.queue,
            queue_position = case when new.queue is null then null else p.queue_position end,
            queue_seq = case when new.queue is null then null else p.queue_seq end
        from (
            select x.id,
                   case when x.root_execution_id is null then x.scheduled_for
                        else coalesce(r.queue_position, r.scheduled_for, x.scheduled_for)
                   end as queue_position,
                   coalesce(x.queue_seq, r.queue_seq, nextval('executions_queue_seq'))
                       as queue_seq
            from executions x
            left join executions r on r.id = x.root_execution_id
            where x.task_id = new.id and x.status = 'pending'
            order by x.scheduled_for, x.id
        ) p
        where e.id = p.id;
    end if;
    return null;
end
$$;

create trigger tasks_queue_inserted
    after insert on tasks
    for each row when (new.queue is not null) execute function tasks_queue_sync();
create trigger tasks_queue_changed
    after update of queue on tasks
    for each row when (old.queue is distinct from new.queue) execute function tasks_queue_sync();

-- Existing data: queue rows for the queues tasks already name, and the pending executions of
-- those tasks placed in them. Rows running now (there may be several per queue: nothing limited
-- them before) finish outside the queues.
insert into queues (organization_id, name)
select distinct organization_id, queue from tasks where queue is not null
on conflict do nothing;
update executions e
set queue = p.queue, queue_position = p.queue_position, queue_seq = p.queue_seq
from (
    select o.id, o.queue, o.queue_position, nextval('executions_queue_seq') as queue_seq
    from (
        select x.id, t.queue,
               case when x.root_execution_id is null then x.scheduled_for
                    else coalesce(r.scheduled_for, x.scheduled_for) end as queue_position
        from executions x
        join tasks t on t.id = x.task_id
        left join executions r on r.id = x.root_execution_id
        where t.queue is not null and x.status = 'pending'
        order by queue_position, x.id
    ) o
) p
where e.id = p.id;

-- The claim of unqueued rows reads only unqueued rows: pending rows waiting in a queue behind
-- its head never slow it down. (These replace the two claim indexes of 001/002.)
drop index executions_pending_idx;
drop index executions_pending_priority_idx;
create index executions_pending_idx on executions (scheduled_for)
    where status = 'pending' and queue is null;
create index executions_pending_priority_idx on executions (priority, scheduled_for)
    where status = 'pending' and queue is null;

-- Each queue's unfinished rows in FIFO order: its first row is the queue's head, and a loose
-- index scan over it visits only queues that have work (queue_heads()).
create index executions_queue_order_idx
    on executions (organization_id, queue, queue_position, queue_seq)
    where status in ('pending', 'running') and queue is not null;

-- At most one running execution per queue, enforced by the database as well: the claim's
-- compare-and-set already keeps concurrent claimers apart; this makes a violation an error
-- instead of a second delivery. It also answers "is something of this queue running?".
create unique index executions_queue_running_idx on executions (organization_id, queue)
    where status = 'running' and queue is not null;

-- The head of every queue that could run it: the first unfinished row (by place) of each
-- non-paused queue with nothing running, when that row is pending and its host is not in
-- backoff — due or not (the claim adds `scheduled_for <= now()`). `claims` is the queue row's
-- counter as the caller's snapshot sees it (STABLE: the calling statement's snapshot).
-- A loose index scan: one index probe per queue that has unfinished rows, none for idle queues.
-- A function rather than a view so that the claim, planned afresh on every call (its LIMIT is
-- a parameter), does not plan this recursion each time (measured: 1.08 ms → 0.6 ms to plan).
create function queue_heads()
returns table (id uuid, organization_id uuid, queue text, scheduled_for timestamptz,
               priority integer, claims bigint)
language plpgsql stable rows 10 as $$
#variable_conflict use_column
begin
    return query
    with recursive firsts as (
        (select e.id, e.organization_id, e.queue, e.status, e.scheduled_for, e.priority, e.host
         from executions e
         where e.status in ('pending', 'running') and e.queue is not null
         order by e.organization_id, e.queue, e.queue_position, e.queue_seq
         limit 1)
        union all
        select n.*
        from firsts f
        cross join lateral (
            select e.id, e.organization_id, e.queue, e.status, e.scheduled_for, e.priority,
                   e.host
            from executions e
            where e.status in ('pending', 'running') and e.queue is not null
              and (e.organization_id, e.queue) > (f.organization_id, f.queue)
            order by e.organization_id, e.queue, e.queue_position, e.queue_seq
            limit 1
        ) n
    )
    select f.id, f.organization_id, f.queue, f.scheduled_for, f.priority, q.claims
    from firsts f
    join queues q on q.organization_id = f.organization_id and q.name = f.queue
    where f.status = 'pending' and not q.paused
      and not exists (
          select 1 from executions r
          where r.organization_id = f.organization_id and r.queue = f.queue
            and r.status = 'running')
      and not exists (
          select 1 from host_backoffs b
          where b.organization_id = f.organization_id and b.host = f.host
            and b.until > now());
end
$$;
