-- name: find_organization_by_name
select * from organizations where name = $1

-- name: insert_organization
insert into organizations (name, slug, tier, webhook_secret)
values ($1, $2, $3, $4)
returning *

-- name: upsert_user
insert into users (email) values ($1)
on conflict (email) do update set email = excluded.email
returning *

-- name: upsert_membership
insert into memberships (user_id, organization_id, role) values ($1, $2, $3)
on conflict (organization_id, user_id) do nothing

-- name: insert_api_key
insert into api_keys (organization_id, created_by_id, key_id, key_hash, name)
values ($1, $2, $3, $4, $5)
returning id, organization_id, key_id, name, inserted_at

-- name: get_organization
select * from organizations where id = $1

-- name: rotate_webhook_secret
-- The current secret keeps signing alongside the new one for 24 h.
update organizations
set previous_webhook_secret = webhook_secret,
    previous_webhook_secret_expires_at = now() + interval '24 hours',
    webhook_secret = $2,
    updated_at = now()
where id = $1
returning *

-- name: list_api_keys
-- Never the hash: only what the API shows.
select id, name, key_id, last_used_at, revoked_at, inserted_at, count(*) over () as total
from api_keys
where organization_id = $1
order by inserted_at desc, id desc
limit $2 offset $3

-- name: create_api_key
insert into api_keys (organization_id, key_id, key_hash, name)
values ($1, $2, $3, $4)
returning id, name, key_id, last_used_at, revoked_at, inserted_at

-- name: revoke_api_key
-- Idempotent: an already-revoked key keeps its first revoked_at.
update api_keys
set revoked_at = coalesce(revoked_at, now())
where organization_id = $1 and id = $2
returning id, revoked_at

-- name: authenticate_api_key
-- The key's owner (id, organization, secret hash, revoked, tier), and the key marked as used when $2 (the SHA-256 of the
-- presented secret) matches, it is not revoked and it was last marked over a minute ago: a
-- busy key costs one write a minute, not one per request. The API caches the answer for
-- under a second, so this runs about once a second per key and node while a key is in use.
with touched as (
    update api_keys
    set last_used_at = now()
    where key_id = $1 and key_hash = $2 and revoked_at is null
      and (last_used_at is null or last_used_at < now() - interval '1 minute')
    returning id
)
select k.id, k.organization_id, k.key_hash, k.revoked_at, o.tier
from api_keys k join organizations o on o.id = k.organization_id
where k.key_id = $1
