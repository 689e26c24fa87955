-- name: rescue_callbacks
-- A node that died while sending: its callbacks become due again (the attempt counted).
update callbacks
set status = 'pending', lease_token = null, lease_expires_at = null, next_attempt_at = now(),
    attempts = attempts + 1, last_error = 'interrupted while sending'
where status = 'sending' and lease_expires_at < now()
returning id

-- name: claim_callbacks
with picked as (
    select id from callbacks
    where status = 'pending' and next_attempt_at <= now()
    order by next_attempt_at
    limit $1
    for update skip locked
)
update callbacks c
set status = 'sending', lease_token = gen_random_uuid(),
    lease_expires_at = now() + make_interval(secs => $2)
from picked p, organizations o
where c.id = p.id and o.id = c.organization_id
returning c.id, c.lease_token, c.url, c.payload, c.attempts, c.execution_id,
          array_remove(array[o.webhook_secret,
                             case when o.previous_webhook_secret_expires_at > now()
                                  then o.previous_webhook_secret end], null) as signing_secrets

-- name: next_callback_due_in_s
select extract(epoch from (min(next_attempt_at) - now()))::float8
from callbacks where status = 'pending'

-- name: finish_callbacks
-- Fenced by lease token. Success → delivered; otherwise the next attempt after $6 seconds,
-- or failed once $7 attempts were made.
update callbacks c
set status = case when r.ok then 'delivered'
                  when c.attempts + 1 >= $7 then 'failed'
                  else 'pending' end,
    attempts = c.attempts + 1,
    finished_at = case when r.ok or c.attempts + 1 >= $7 then now() end,
    next_attempt_at = case when r.ok or c.attempts + 1 >= $7 then c.next_attempt_at
                           else now() + make_interval(secs => r.retry_in_s) end,
    last_status_code = r.status_code,
    last_error = r.error,
    lease_token = null,
    lease_expires_at = null
from unnest($1::uuid[], $2::uuid[], $3::bool[], $4::int[], $5::text[], $6::float8[])
     as r(id, lease_token, ok, status_code, error, retry_in_s)
where c.id = r.id and c.lease_token = r.lease_token and c.status = 'sending'
returning c.id, c.status

-- name: get_callback_for_execution
-- The completion callback (callback_url); a failure callback is kind 'failed'.
select * from callbacks where organization_id = $1 and execution_id = $2 and kind = 'completed'
