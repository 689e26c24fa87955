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
