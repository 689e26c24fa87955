-- name: list_audit_log
select *, count(*) over () as total
from audit_log
where organization_id = $1
order by inserted_at desc, id desc
limit $2 offset $3

-- name: insert_audit_entries
-- Many entries in one statement (the API writes the entries of concurrent calls together).
insert into audit_log (organization_id, actor_type, actor_id, action, resource_id, status_code, ip)
select * from unnest($1::uuid[], $2::text[], $3::uuid[], $4::text[], $5::text[], $6::int[],
                     $7::text[])

-- name: search_audit_log
-- The dashboard's audit page: optionally only actions containing $2 (case-insensitive) and
-- only one kind of actor ($3: api_key or user), with the person's address for users.
select a.*, u.email as actor_email, count(*) over () as total
from audit_log a
left join users u on a.actor_type = 'user' and u.id = a.actor_id
where a.organization_id = $1
  and ($2::text is null or a.action ilike '%' || $2 || '%')
  and ($3::text is null or a.actor_type = $3)
order by a.inserted_at desc, a.id desc
limit $4 offset $5
