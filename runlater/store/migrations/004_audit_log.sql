-- Audit log: who changed what through the API, per organization.
create table audit_log (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    actor_type text not null check (actor_type in ('api_key', 'user')),
    actor_id uuid,
    action text not null check (length(action) between 1 and 300),
    resource_id text,
    status_code integer not null check (status_code between 100 and 599),
    ip text,
    inserted_at timestamptz not null default now()
);
create index audit_log_organization_idx on audit_log (organization_id, inserted_at desc, id desc);
