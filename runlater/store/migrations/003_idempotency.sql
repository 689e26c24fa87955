-- Idempotency keys: the first response to a mutating API call, per (organization, key),
-- replayed for a repeat of the same call within 24 hours.
create table idempotency_keys (
    organization_id uuid not null references organizations(id) on delete cascade,
    key text not null check (length(key) between 1 and 255),
    method text not null,
    path text not null,
    -- sha256 hex of method, path and raw body: a repeat with another body is refused.
    request_hash text not null,
    status text not null default 'in_progress' check (status in ('in_progress', 'done')),
    response_status integer check (response_status between 100 and 599),
    response_body bytea,
    response_headers jsonb,
    created_at timestamptz not null default now(),
    primary key (organization_id, key),
    check ((status = 'done') = (response_status is not null and response_body is not null))
);
create index idempotency_keys_created_at_idx on idempotency_keys (created_at);
