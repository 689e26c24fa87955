-- Plan limits, enforced by the database on every path that writes tasks or executions (API,
-- batch, sync, scheduler, retries), and the monthly usage counter they rely on.
--
-- The numbers come from runlater/plans.py: Store.migrate() upserts them into `plans` at every
-- start. They are seeded here as well so that a database migrated without a node (the test
-- template) enforces the same limits, and so that existing organizations have a plan for the
-- foreign key below.

create table plans (
    tier text primary key,
    min_cron_interval_minutes integer not null check (min_cron_interval_minutes >= 1),
    monthly_executions bigint not null check (monthly_executions >= 1),
    hard_stop boolean not null,
    retention_days integer not null check (retention_days >= 1)
);
insert into plans (tier, min_cron_interval_minutes, monthly_executions, hard_stop, retention_days)
values ('free', 60, 10000, true, 7), ('pro', 1, 1000000, false, 30);

alter table organizations
    add constraint organizations_tier_plan_fkey foreign key (tier) references plans (tier);

-- Executions counted per organization and UTC calendar month (`month` = its first day): the
-- month key makes a new month start from zero without a reset job. The month's count is the
-- sum over `shard`: a hard-stop plan counts in shard 0 only (one row, so its check is exact),
-- a warn-only plan in shard (backend pid % 8), so concurrent writers of a busy organization do
-- not queue on one row (measured with 8 concurrent single-row inserts into one organization:
-- one row halved the inserts per second, 8 shards cost nothing measurable).
create table usage_counters (
    organization_id uuid not null references organizations(id) on delete cascade,
    month date not null check (extract(day from month) = 1),
    shard smallint not null default 0 check (shard between 0 and 7),
    executions bigint not null default 0 check (executions >= 0),
    primary key (organization_id, month, shard)
);

create function usage_month(at timestamptz) returns date
language sql immutable parallel safe as $$
  select date_trunc('month', at at time zone 'UTC')::date
$$;

-- The refusal every limit raises: SQLSTATE RLLIM, the field it is about in COLUMN. The store
-- turns it into runlater.errors.LimitExceeded (the API's 422 limit_exceeded).
create function usage_limit_message(tier text, monthly_executions bigint) returns text
language sql immutable parallel safe as $$
  select format('monthly execution limit reached (%s plan: %s)',
                tier, to_char(monthly_executions, 'FM999,999,999,999,990'))
$$;

-- Counting, once per statement: every execution inserted as `pending` (first attempts and
-- retries alike) adds one to its organization's counter for the month — one upsert per
-- organization per statement, not per row, so a scheduler batch of 1,000 runs costs one counter
-- update. For a hard-stop plan the upsert locks the organization's one counter row until
-- commit, which serialises its concurrent writers: the limit check below sees every committed
-- execution, so concurrent creations never get past a hard stop.
--
-- Over the limit of a hard-stop plan, only new work is refused: first attempts (a one-time
-- task, a trigger, a cron slot), and every row of a transaction that set `runlater.new_work`
-- (a manual retry). Automatic retries of accepted work are counted but never refused — an
-- accepted task is never dropped. The excess new rows: cron slots are recorded as `cancelled`
-- (not counted), so the scheduler moves on and other organizations' slots of the same batch are
-- unaffected; anything else refuses the whole statement (a batch creates nothing).
create function executions_count_usage() returns trigger
language plpgsql as $$
declare
    this_month constant date := usage_month(now());
    all_new constant boolean := coalesce(current_setting('runlater.new_work', true), '') = 'on';
    over_limit record;
    cancelled bigint;
begin
    for over_limit in
        with fresh as (
            select i.organization_id, p.tier, p.monthly_executions, p.hard_stop,
                   count(*) as executions,
                   count(*) filter (where i.attempt = 1 or all_new) as new_work
            from inserted i
            join organizations o on o.id = i.organization_id
            join plans p on p.tier = o.tier
            where i.status = 'pending'
            group by i.organization_id, p.tier, p.monthly_executions, p.hard_stop
        ), counted as (
            insert into usage_counters as c (organization_id, month, shard, executions)
            select f.organization_id, this_month,
                   case when f.hard_stop then 0 else pg_backend_pid() % 8 end, f.executions
            from fresh f
            order by f.organization_id  -- one lock order for concurrent statements
            on conflict (organization_id, month, shard)
                do update set executions = c.executions + excluded.executions
            returning c.organization_id, c.executions
        )
        select f.organization_id, f.tier, f.monthly_executions,
               least(f.new_work, month_total.executions - f.monthly_executions) as excess
        from fresh f
        join counted c on c.organization_id = f.organization_id
        cross join lateral (
            -- Other shards hold counts only from before a change to this plan.
            select c.executions + coalesce(sum(u.executions), 0) as executions
            from usage_counters u
            where u.organization_id = f.organization_id and u.month = this_month
              and u.shard <> 0
        ) month_total
        where f.hard_stop and f.new_work > 0 and month_total.executions > f.monthly_executions
    loop
        with slots as (
            select i.id
            from inserted i
            join tasks t on t.id = i.task_id
            where i.organization_id = over_limit.organization_id and i.status = 'pending'
              and i.attempt = 1 and i.source = 'schedule' and t.schedule_type = 'cron'
            order by i.scheduled_for desc, i.id desc
            limit over_limit.excess
        )
        update executions e
        set status = 'cancelled', finished_at = now(),
            error_message = usage_limit_message(over_limit.tier, over_limit.monthly_executions)
        from slots s
        where e.id = s.id;
        get diagnostics cancelled = row_count;
        if cancelled < over_limit.excess then
            raise exception using
                errcode = 'RLLIM',
                column = 'executions_this_month',
                message = usage_limit_message(over_limit.tier, over_limit.monthly_executions);
        end if;
        update usage_counters
        set executions = executions - cancelled
        where organization_id = over_limit.organization_id and month = this_month and shard = 0;
    end loop;
    return null;
end
$$;

create trigger executions_count_usage
    after insert on executions
    referencing new table as inserted
    for each statement execute function executions_count_usage();

-- A cron task may not run more often than its plan allows: checked when it is created, when
-- its schedule changes and when it is enabled again (a task kept from a former plan may stay
-- as it is, but not be re-armed). interval_minutes is computed by runlater/cron.py.
create function tasks_check_cron_interval() returns trigger
language plpgsql as $$
declare
    plan plans;
begin
    if tg_op = 'UPDATE' and new.interval_minutes is not distinct from old.interval_minutes
       and (old.enabled or not new.enabled) then
        return new;
    end if;
    select p.* into plan
    from organizations o join plans p on p.tier = o.tier
    where o.id = new.organization_id;
    if new.interval_minutes < plan.min_cron_interval_minutes then
        raise exception using
            errcode = 'RLLIM',
            column = 'cron_expression',
            message = format('%s plan allows a cron interval of at least %s minutes; '
                             'this one runs every %s', plan.tier,
                             plan.min_cron_interval_minutes, new.interval_minutes);
    end if;
    return new;
end
$$;

create trigger tasks_check_cron_interval
    before insert or update on tasks
    for each row when (new.schedule_type = 'cron' and new.deleted_at is null)
    execute function tasks_check_cron_interval();
