-- The Failures page counts the retries still pending or running (its live progress): without
-- an index that read every execution of the organization (37 ms at 300,000 executions on a
-- 2 vCPU machine, on each view and each live refresh). Only open retries are in this index.
create index executions_open_retries_idx on executions (organization_id)
    where attempt > 1 and status in ('pending', 'running');
