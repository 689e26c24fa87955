-- 1. The plan's cron-interval refusal gives the interval with its unit ("runs every 5 minutes",
-- not "runs every 5"). Same rule as migration 006; only the message changes.
create or replace function tasks_check_cron_interval() returns trigger
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
                             plan.min_cron_interval_minutes,
                             case when new.interval_minutes = 1 then '1 minute'
                                  else new.interval_minutes || ' minutes' end);
    end if;
    return new;
end
$$;

-- 2. Cron tasks now retry a failed run up to retry_attempts (never past their next run), and a
-- new cron task defaults to 0. Until now a cron task showed retry_attempts (5 by default) but
-- never retried: existing cron tasks keep doing what they did, with the value saying so.
update tasks set retry_attempts = 0 where schedule_type = 'cron' and retry_attempts <> 0;
