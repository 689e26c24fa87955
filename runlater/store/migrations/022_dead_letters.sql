-- The dead-letter queue: executions that failed for good (failed or timed out with no retry to
-- follow), one row each, listed, retried or deleted through /api/v1/dlq (and the QStash
-- compatible /v2/dlq). A task's failure_callback_url is called once when its execution lands
-- here, through the callbacks outbox (a second kind of callback beside 'completed').
--
-- Rows are written by one statement trigger on executions, so every way an execution fails
-- for good writes them: the recorder's completion (complete_executions: a failure whose retry
-- delay is null), the rescuer's third interruption (rescue_expired_leases), anything else.
-- Cancelled and missed executions are not dead letters; neither are failures of a task deleted
-- meanwhile (nothing could retry them).

create table dead_letters (
    id uuid primary key default uuid_generate_v7(),  -- the dlqId
    organization_id uuid not null references organizations(id) on delete cascade,
    -- Retention deletes executions (the janitor); their dead letters go with them.
    execution_id uuid not null unique references executions(id) on delete cascade,
    root_execution_id uuid not null,  -- the retry chain: a later attempt clears the letter
    task_id uuid not null references tasks(id) on delete cascade,
    -- What the filters read, copied from the execution when it failed (it never changes).
    queue text,
    url text not null,
    status text not null check (status in ('failed', 'timeout')),
    status_code integer,
    failed_at timestamptz not null,
    inserted_at timestamptz not null default now()
);
-- The list (newest first; ids are v7, so by time) and its cursor.
create index dead_letters_org_idx on dead_letters (organization_id, id desc);
create index dead_letters_task_idx on dead_letters (task_id, id desc);
create index dead_letters_chain_idx on dead_letters (root_execution_id);

-- Two kinds of callbacks per execution: its completion (callback_url, every attempt) and its
-- landing in the dead-letter queue (failure_callback_url, once).
alter table callbacks
    add column kind text not null default 'completed' check (kind in ('completed', 'failed'));
alter table callbacks drop constraint callbacks_execution_id_key;
alter table callbacks add constraint callbacks_execution_kind_key unique (execution_id, kind);

-- Executions that just became failed or timed out with no later attempt in their chain become
-- dead letters, with the failure callback of their task when it has one (same transaction).
-- Every claim updates executions too (pending -> running): the first check reads only the new
-- transition table and returns at once when nothing in the statement failed. Then, as in
-- migration 017, the transition tables are joined by hash (no statistics: migration 013) and
-- the per-row lookups (the retry chain, the task, the execution) go through their indexes.
create function executions_dead_letters() returns trigger
language plpgsql set enable_nestloop = off as $$
declare
    failed jsonb;
    called integer;
begin
    perform 1 from new_rows n where n.status in ('failed', 'timeout') limit 1;
    if not found then
        return null;  -- claims, successes, cancels, rescues back to pending
    end if;
    select jsonb_agg(jsonb_build_object(
               'id', n.id, 'attempt', n.attempt,
               'root_id', coalesce(n.root_execution_id, n.id)))
    into failed
    from new_rows n
    join old_rows o on o.id = n.id
    where n.status in ('failed', 'timeout') and o.status in ('pending', 'running');
    if failed is null then
        return null;
    end if;
    perform set_config('enable_nestloop', 'on', true);
    with candidates as (
        select * from jsonb_to_recordset(failed) as f(id uuid, attempt integer, root_id uuid)
    ), written as (
        insert into dead_letters (organization_id, execution_id, root_execution_id, task_id,
                                  queue, url, status, status_code, failed_at)
        select e.organization_id, e.id, f.root_id, e.task_id, e.queue,
               coalesce(e.request_url, t.url), e.status, e.status_code, e.finished_at
        from candidates f
        join executions e on e.id = f.id
        join tasks t on t.id = e.task_id and t.deleted_at is null
        where not exists (select 1 from executions r
                          where r.root_execution_id = f.root_id and r.attempt > f.attempt)
        order by e.id
        on conflict (execution_id) do nothing
        returning id, execution_id
    ), sent as (
        insert into callbacks (organization_id, execution_id, kind, url, payload)
        select e.organization_id, e.id, 'failed', t.failure_callback_url, jsonb_build_object(
            'event', 'execution.failed', 'dlq_id', w.id, 'task_id', e.task_id,
            'execution_id', e.id, 'status', e.status, 'status_code', e.status_code,
            'duration_ms', e.duration_ms, 'response_body', e.response_body,
            'error_message', e.error_message, 'attempt', e.attempt,
            'url', coalesce(e.request_url, t.url),
            'scheduled_for', api_timestamp(e.scheduled_for),
            'finished_at', api_timestamp(e.finished_at))
        from written w
        join executions e on e.id = w.execution_id
        join tasks t on t.id = e.task_id
        where t.failure_callback_url is not null
        on conflict (execution_id, kind) do nothing
        returning 1
    )
    select count(*) into called from sent;
    if called > 0 then
        perform pg_notify('runlater_callbacks', '');
    end if;
    return null;
end
$$;
create trigger executions_dead_letters
    after update on executions
    referencing old table as old_rows new table as new_rows
    for each statement execute function executions_dead_letters();

-- A later attempt of a chain (a manual retry from anywhere: the API, the dashboard, the DLQ)
-- takes its dead letter out of the queue; if it fails for good it lands there again. First
-- attempts (almost every insert: the scheduler's runs, new tasks) return at the first check.
create function executions_retry_clears_dead_letters() returns trigger
language plpgsql as $$
begin
    perform 1 from inserted i where i.root_execution_id is not null limit 1;
    if not found then
        return null;
    end if;
    delete from dead_letters d
    using inserted i
    where i.root_execution_id is not null and d.root_execution_id = i.root_execution_id
      and d.organization_id = i.organization_id;
    return null;
end
$$;
create trigger executions_retry_clears_dead_letters
    after insert on executions
    referencing new table as inserted
    for each statement execute function executions_retry_clears_dead_letters();

-- A deleted task's dead letters go with it (its history stays until retention): nothing can
-- retry them. Only the statement that sets deleted_at fires this.
create function tasks_deleted_clears_dead_letters() returns trigger
language plpgsql as $$
begin
    delete from dead_letters where task_id = new.id;
    return null;
end
$$;
create trigger tasks_deleted_clears_dead_letters
    after update of deleted_at on tasks
    for each row when (old.deleted_at is null and new.deleted_at is not null)
    execute function tasks_deleted_clears_dead_letters();
