-- The dashboard's failures (the home page's last five, the Failures page): the newest failed or
-- timed-out executions of an organization that no later attempt of their retry chain follows.
-- Without an index this read every execution of the organization (297 ms a home page view at
-- a million executions, bench/home.py). Both indexes are partial: failures are few, and only
-- retries (attempt 2 and later) have a root_execution_id.
create index executions_failures_idx on executions (organization_id, finished_at desc, id desc)
    where status in ('failed', 'timeout');
create index executions_retry_chain_idx on executions (root_execution_id, attempt)
    where root_execution_id is not null;
