-- name: insert_audit_entry
insert into audit_log (organization_id, actor_type, actor_id, action, resource_id, status_code, ip)
values ($1, $2, $3, $4, $5, $6, $7)

-- name: list_audit_log
select *, count(*) over () as total
from audit_log
where organization_id = $1
order by inserted_at desc, id desc
limit $2 offset $3
