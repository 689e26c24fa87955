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

-- name: finish_idempotency_keys
-- finish_idempotency_key for many keys in one statement (the API finishes the keys of
-- concurrent calls together): $1..$5 are parallel arrays.
update idempotency_keys k
set status = 'done', response_status = f.status, response_body = f.body,
    response_headers = f.headers
from unnest($1::uuid[], $2::text[], $3::int[], $4::bytea[], $5::jsonb[])
    as f(organization_id, key, status, body, headers)
where k.organization_id = f.organization_id and k.key = f.key and k.status = 'in_progress'
