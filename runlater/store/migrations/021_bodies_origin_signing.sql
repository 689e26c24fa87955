-- Front doors beyond /api/v1 (inbound webhooks, the QStash-compatible /v2) create tasks too.

-- A body that is not UTF-8 text (or holds NUL) is kept and sent byte-exact; text bodies stay
-- in `body` (what the API shows and edits).
alter table tasks
    add column body_bytes bytea,
    add constraint tasks_one_body check (body is null or body_bytes is null);

-- Which front door made the task: 'qstash' tasks are also signed with Upstash-Signature.
alter table tasks
    add column origin text not null default 'api' check (origin in ('api', 'inbound', 'qstash'));

-- Called once when an execution of the task fails for good (lands in the dead-letter queue).
alter table tasks
    add column failure_callback_url text
        check (failure_callback_url is null or length(failure_callback_url) <= 2048);

-- QStash-style signing keys (HS256 JWT in Upstash-Signature): deliveries are signed with the
-- current key; receivers accept the current and the next, so a rotation (next becomes current,
-- a new next) never breaks a receiver that has both.
-- A key: 'sig_' and 28 base64 characters of gen_random_uuid() output (168 random bits;
-- random() is not a CSPRNG).
create function qstash_signing_key() returns text
language sql volatile parallel safe as $$
  select 'sig_' || substr(translate(encode(uuid_send(gen_random_uuid())
                                           || uuid_send(gen_random_uuid()), 'base64'),
                                    E'+/=\n', ''), 1, 28)
$$;
alter table organizations
    add column qstash_current_signing_key text not null default qstash_signing_key(),
    add column qstash_next_signing_key text not null default qstash_signing_key();

-- task_view's `t.*` was expanded when it was made: made again, it shows the new columns.
drop view task_view;
create view task_view as
select t.*, le.last_execution_at, le.last_execution_status
from tasks t
left join lateral (
    select coalesce(e.finished_at, e.started_at) as last_execution_at,
           e.status as last_execution_status
    from executions e
    where e.task_id = t.id and e.status not in ('pending', 'cancelled')
    order by e.scheduled_for desc
    limit 1
) le on true
where t.deleted_at is null;
