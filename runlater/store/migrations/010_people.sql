-- People in the browser: sign-in links, sessions, invitations, the members limit, and the
-- mail outbox (which is also the e-mail log). Every secret a person holds (a sign-in link, a
-- session cookie, an invitation link) is stored only as the hex SHA-256 of its random token.

alter table users
    add constraint users_email_length check (length(email) <= 254);
-- Addresses are stored lower-cased from now on (runlater/domain/people.py); an older row may
-- differ in case only, so this index is not unique: a lookup takes the oldest match.
create index users_email_lower_idx on users (lower(email), inserted_at);

-- A sign-in link: 15 minutes, used once. `used_at` is set by the one statement that signs in
-- (update ... where used_at is null and expires_at > now()), so two concurrent posts of one
-- link make one session.
create table login_tokens (
    token_hash text primary key check (length(token_hash) = 64),
    user_id uuid not null references users(id) on delete cascade,
    expires_at timestamptz not null,
    used_at timestamptz,
    inserted_at timestamptz not null default now()
);
create index login_tokens_user_idx on login_tokens (user_id);
create index login_tokens_expires_idx on login_tokens (expires_at);

-- A signed-in browser. `organization_id` is the organization the person works in now (any
-- page checks the membership again: a removed member sees nothing of it). Sliding expiry:
-- each use moves `expires_at` (at most once a minute, to spare writes).
create table sessions (
    token_hash text primary key check (length(token_hash) = 64),
    user_id uuid not null references users(id) on delete cascade,
    organization_id uuid references organizations(id) on delete set null,
    csrf_token text not null check (length(csrf_token) between 32 and 128),
    expires_at timestamptz not null,
    last_seen_at timestamptz not null default now(),
    inserted_at timestamptz not null default now()
);
create index sessions_user_idx on sessions (user_id);
create index sessions_expires_idx on sessions (expires_at);

-- An invitation to an organization, 7 days, used once; one open invitation per address.
create table invitations (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid not null references organizations(id) on delete cascade,
    email text not null check (position('@' in email) > 1 and length(email) <= 254),
    role text not null check (role in ('owner', 'admin', 'member')),
    token_hash text not null unique check (length(token_hash) = 64),
    invited_by_id uuid references users(id) on delete set null,
    expires_at timestamptz not null,
    accepted_at timestamptz,
    inserted_at timestamptz not null default now()
);
create unique index invitations_open_idx
    on invitations (organization_id, lower(email)) where accepted_at is null;

-- Members per plan (null: no limit), pending invitations included. Seeded here as in 006;
-- Store.migrate() writes runlater/plans.py's value at every start.
alter table plans add column max_members integer check (max_members >= 1);
update plans set max_members = 2 where tier = 'free';

create function members_check_limit() returns trigger
language plpgsql as $$
declare
    plan plans;
    used bigint;
    joining text;
begin
    select p.* into plan
    from organizations o join plans p on p.tier = o.tier
    where o.id = new.organization_id
    for update of o;  -- one writer per organization at a time: the count below is exact
    if plan.max_members is null then
        return new;
    end if;
    -- Members and open invitations; a person joining by their invitation takes its place.
    if tg_table_name = 'memberships' then
        select lower(u.email) into joining from users u where u.id = new.user_id;
    end if;
    select (select count(*) from memberships m where m.organization_id = new.organization_id)
         + (select count(*) from invitations i
            where i.organization_id = new.organization_id
              and i.accepted_at is null and i.expires_at > now()
              and lower(i.email) is distinct from joining)
      into used;
    if used >= plan.max_members then
        raise exception using
            errcode = 'RLLIM',
            column = 'email',
            message = format('%s plan allows %s members, pending invitations included; '
                             'remove a member or an invitation, or upgrade to Pro',
                             plan.tier, plan.max_members);
    end if;
    return new;
end
$$;

create trigger memberships_check_limit before insert on memberships
    for each row execute function members_check_limit();
create trigger invitations_check_limit before insert on invitations
    for each row execute function members_check_limit();

-- The last owner stays: an organization always has one (leave, removal, role change).
create function memberships_keep_an_owner() returns trigger
language plpgsql as $$
begin
    if old.role = 'owner' and (tg_op = 'DELETE' or new.role <> 'owner')
       and exists (select 1 from organizations o where o.id = old.organization_id)
       and not exists (select 1 from memberships m
                       where m.organization_id = old.organization_id
                         and m.role = 'owner' and m.user_id <> old.user_id) then
        raise exception using
            errcode = 'RLCON',
            message = 'an organization keeps at least one owner: make another member owner first';
    end if;
    return case when tg_op = 'DELETE' then old else new end;
end
$$;

create trigger memberships_keep_an_owner before update of role or delete on memberships
    for each row execute function memberships_keep_an_owner();

-- The outbox and e-mail log: a mail is written in the transaction of what caused it and sent
-- by the mailer actor (claimed with a lease; a node that dies while sending leaves it to be
-- sent again after the lease, with the same Message-ID). Kept 30 days.
create table mails (
    id uuid primary key default uuid_generate_v7(),
    organization_id uuid references organizations(id) on delete set null,
    kind text not null check (kind ~ '^[a-z_]{1,40}$'),
    to_address text not null check (position('@' in to_address) > 1
                                     and length(to_address) <= 254),
    subject text not null check (length(subject) between 1 and 300),
    text_body text not null,
    html_body text not null,
    message_id text not null unique,
    status text not null default 'pending'
        check (status in ('pending', 'sending', 'sent', 'logged', 'failed')),
    attempts integer not null default 0 check (attempts >= 0),
    next_attempt_at timestamptz not null default now(),
    lease_until timestamptz,
    last_error text,
    sent_at timestamptz,
    inserted_at timestamptz not null default now()
);
create index mails_due_idx on mails (next_attempt_at) where status in ('pending', 'sending');
create index mails_inserted_idx on mails (inserted_at desc, id desc);
