-- name: lock_idempotency_key
-- Take (org $1, key $2) for this transaction, without waiting (a transaction-scoped advisory
-- lock: released when the transaction ends, however it ends), and read the key's answer if it
-- has one from the last 24 hours (request_hash is null when it has none).
select l.locked, k.request_hash, k.response_status, k.response_body, k.response_headers
from (select pg_try_advisory_xact_lock(hashtextextended($1::uuid::text || ':' || $2::text, $3::bigint)) as locked) l
left join idempotency_keys k
    on l.locked and k.organization_id = $1 and k.key = $2 and k.status = 'done'
   and k.created_at >= now() - interval '24 hours'

-- name: store_idempotency_answer
-- Keep the answer of the request that holds the key's lock; replaces a record older than 24 h
-- (or one left "in progress" by a version before migration 008).
insert into idempotency_keys as k (organization_id, key, method, path, request_hash, status,
                                   response_status, response_body, response_headers)
values ($1, $2, $3, $4, $5, 'done', $6, $7, $8)
on conflict (organization_id, key) do update
    set method = excluded.method,
        path = excluded.path,
        request_hash = excluded.request_hash,
        status = 'done',
        response_status = excluded.response_status,
        response_body = excluded.response_body,
        response_headers = excluded.response_headers,
        created_at = now()
    where k.created_at < now() - interval '24 hours' or k.status <> 'done'

-- name: purge_idempotency_keys
delete from idempotency_keys
where ctid in (
    select ctid from idempotency_keys
    where created_at < now() - interval '24 hours'
    limit $1
)
