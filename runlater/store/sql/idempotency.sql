-- name: claim_idempotency_key
-- Claim (org, key) for this request: a new key, or one whose record is older than 24 h
-- (replaced in place). No row returned: someone else holds a live record of the key.
insert into idempotency_keys (organization_id, key, method, path, request_hash, status)
values ($1, $2, $3, $4, $5, 'in_progress')
on conflict (organization_id, key) do update
    set method = excluded.method,
        path = excluded.path,
        request_hash = excluded.request_hash,
        status = 'in_progress',
        response_status = null,
        response_body = null,
        response_headers = null,
        created_at = now()
    where idempotency_keys.created_at < now() - interval '24 hours'
returning true as claimed

-- name: get_idempotency_key
select *
from idempotency_keys
where organization_id = $1 and key = $2 and created_at >= now() - interval '24 hours'

-- name: finish_idempotency_key
update idempotency_keys
set status = 'done', response_status = $3, response_body = $4, response_headers = $5
where organization_id = $1 and key = $2 and status = 'in_progress'

-- name: release_idempotency_key
delete from idempotency_keys
where organization_id = $1 and key = $2 and status = 'in_progress'

-- name: purge_idempotency_keys
delete from idempotency_keys
where ctid in (
    select ctid from idempotency_keys
    where created_at < now() - interval '24 hours'
    limit $1
)
