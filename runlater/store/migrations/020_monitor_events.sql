-- Live events of heartbeat monitors and uptime checks (the dashboard's monitor pages): one
-- NOTIFY runlater_events per statement with the ids whose state changed (a ping, the
-- Monitor's tick, an edit, a check's result), as migration 011 does for tasks. Planned without
-- nested loops over the transition tables (migration 013).
create function monitors_notify_changed() returns trigger
language plpgsql set enable_nestloop = off as $$
begin
    perform notify_events('mc', (select jsonb_agg(n.id) from changed_new n));
    return null;
end
$$;
create trigger monitors_notify_changed
    after update on monitors
    referencing new table as changed_new
    for each statement execute function monitors_notify_changed();
create trigger monitors_notify_inserted
    after insert on monitors
    referencing new table as changed_new
    for each statement execute function monitors_notify_changed();

create function uptime_checks_notify_changed() returns trigger
language plpgsql as $$
begin
    perform notify_events('uc', (select jsonb_agg(n.id) from changed_new n));
    return null;
end
$$;
create trigger uptime_checks_notify_changed
    after update on uptime_checks
    referencing new table as changed_new
    for each statement execute function uptime_checks_notify_changed();
create trigger uptime_checks_notify_inserted
    after insert on uptime_checks
    referencing new table as changed_new
    for each statement execute function uptime_checks_notify_changed();
