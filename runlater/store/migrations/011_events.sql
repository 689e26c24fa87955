-- Live events: each statement that starts or finishes executions, or changes tasks or queues,
-- sends NOTIFY runlater_events with the ids it touched. NOTIFY is transactional: the event
-- leaves exactly when the change commits, on whichever node made it, and every node's Listener
-- hears it. One notification per statement (a scheduler or recorder batch is one), split into
-- chunks of 150 ids to stay far below the 8,000-byte payload limit; a node with subscribers
-- reads the rest by id (runlater/store/events.py).
--
-- Payload: {"k": kind, "ids": [...]} with kind
--   xs  executions started (status became running)
--   xf  executions finished (status became success, failed, timeout, cancelled or missed)
--   tc / tu / td  tasks created / updated / deleted (soft delete: deleted_at set)
--   qc  queues changed ("ids" are [organization id, queue name] pairs)

create function notify_events(kind text, ids jsonb) returns void
language plpgsql as $$
declare
    n integer := coalesce(jsonb_array_length(ids), 0);
    i integer := 0;
begin
    while i < n loop
        perform pg_notify(
            'runlater_events',
            jsonb_build_object(
                'k', kind,
                'ids', (select jsonb_agg(x.v order by x.o)
                        from jsonb_array_elements(ids) with ordinality as x(v, o)
                        where x.o > i and x.o <= i + 150)
            )::text
        );
        i := i + 150;
    end loop;
end
$$;

create function executions_notify_events() returns trigger
language plpgsql as $$
begin
    perform notify_events('xs', (
        select jsonb_agg(n.id) from changed_new n join changed_old o on o.id = n.id
        where n.status = 'running' and o.status <> 'running'));
    perform notify_events('xf', (
        select jsonb_agg(n.id) from changed_new n join changed_old o on o.id = n.id
        where n.status in ('success', 'failed', 'timeout', 'cancelled', 'missed')
          and o.status is distinct from n.status));
    return null;
end
$$;

create trigger executions_notify_events
    after update on executions
    referencing old table as changed_old new table as changed_new
    for each statement execute function executions_notify_events();

create function tasks_notify_created() returns trigger
language plpgsql as $$
begin
    perform notify_events('tc', (select jsonb_agg(n.id) from changed_new n));
    return null;
end
$$;

-- What a person sees of a task: a change of its schedule bookkeeping alone (next_run_at, moved
-- by the scheduler every run) is not an update event.
create function tasks_notify_updated() returns trigger
language plpgsql as $$
begin
    perform notify_events('td', (
        select jsonb_agg(n.id) from changed_new n join changed_old o on o.id = n.id
        where n.deleted_at is not null and o.deleted_at is null));
    perform notify_events('tu', (
        select jsonb_agg(n.id) from changed_new n join changed_old o on o.id = n.id
        where n.deleted_at is null
          and (to_jsonb(n) - 'next_run_at' - 'updated_at')
              is distinct from (to_jsonb(o) - 'next_run_at' - 'updated_at')));
    return null;
end
$$;

create function tasks_notify_deleted() returns trigger
language plpgsql as $$
begin
    perform notify_events('td', (select jsonb_agg(o.id) from changed_old o
                                 where o.deleted_at is null));
    return null;
end
$$;

create trigger tasks_notify_created
    after insert on tasks referencing new table as changed_new
    for each statement execute function tasks_notify_created();
create trigger tasks_notify_updated
    after update on tasks referencing old table as changed_old new table as changed_new
    for each statement execute function tasks_notify_updated();
create trigger tasks_notify_deleted
    after delete on tasks referencing old table as changed_old
    for each statement execute function tasks_notify_deleted();

create function queues_notify_changed() returns trigger
language plpgsql as $$
begin
    perform notify_events('qc', (
        select jsonb_agg(jsonb_build_array(n.organization_id, n.name)) from changed_new n));
    return null;
end
$$;

create trigger queues_notify_inserted
    after insert on queues referencing new table as changed_new
    for each statement execute function queues_notify_changed();
create trigger queues_notify_updated
    after update on queues referencing old table as changed_old new table as changed_new
    for each statement execute function queues_notify_changed();
