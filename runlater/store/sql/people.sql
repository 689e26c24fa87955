-- name: find_user_by_email
-- The person with this address (lower-cased), oldest first when old rows differ in case only.
select * from users where lower(email) = lower($1) order by inserted_at limit 1

-- name: insert_user
insert into users (email) values (lower($1)) returning *

-- name: insert_login_token
insert into login_tokens (token_hash, user_id, expires_at)
values ($1, $2, now() + make_interval(secs => $3))

-- name: login_token_usable
-- Whether a sign-in link may still be used (the confirm page; using it is consume_login_token).
select exists (select 1 from login_tokens
               where token_hash = $1 and used_at is null and expires_at > now())

-- name: consume_login_token
-- Use a sign-in link: one statement, so of two concurrent uses exactly one gets the row.
update login_tokens set used_at = now()
where token_hash = $1 and used_at is null and expires_at > now()
returning user_id

-- name: first_organization_of
select organization_id from memberships where user_id = $1
order by inserted_at, organization_id limit 1

-- name: insert_session
insert into sessions (token_hash, user_id, organization_id, csrf_token, expires_at)
values ($1, $2, $3, $4, now() + make_interval(secs => $5))

-- name: touch_session
-- The signed-in person of a session cookie, with the organization they work in now and their
-- role there (null when they are no longer a member). Sliding expiry, written at most once a
-- minute.
with found as (
    update sessions s
    set expires_at = case when s.last_seen_at < now() - interval '1 minute'
                          then now() + make_interval(secs => $2) else s.expires_at end,
        last_seen_at = case when s.last_seen_at < now() - interval '1 minute'
                            then now() else s.last_seen_at end
    where s.token_hash = $1 and s.expires_at > now()
    returning s.*
)
select f.user_id, u.email, f.csrf_token, f.organization_id, m.role,
       o.name as organization_name, o.slug as organization_slug, o.tier
from found f
join users u on u.id = f.user_id
left join memberships m on m.user_id = f.user_id and m.organization_id = f.organization_id
left join organizations o on o.id = m.organization_id

-- name: delete_session
delete from sessions where token_hash = $1

-- name: delete_user_sessions
delete from sessions where user_id = $1

-- name: delete_expired_sign_ins
-- Retention: sessions and sign-in links that can no longer be used.
with s as (delete from sessions where expires_at < now() - interval '1 day' returning 1),
     t as (delete from login_tokens where expires_at < now() - interval '1 day' returning 1)
select (select count(*) from s) + (select count(*) from t)

-- name: switch_session_organization
-- Only to an organization the person is a member of.
update sessions s set organization_id = m.organization_id
from memberships m
where s.token_hash = $1 and m.user_id = s.user_id and m.organization_id = $2
returning s.organization_id

-- name: organizations_of_user
select o.id, o.name, o.slug, o.tier, m.role
from memberships m join organizations o on o.id = m.organization_id
where m.user_id = $1
order by lower(o.name), o.id

-- name: list_members
select u.id as user_id, u.email, m.role, m.inserted_at
from memberships m join users u on u.id = m.user_id
where m.organization_id = $1
order by m.inserted_at, u.id

-- name: list_open_invitations
select i.id, i.email, i.role, i.expires_at, i.inserted_at, u.email as invited_by
from invitations i left join users u on u.id = i.invited_by_id
where i.organization_id = $1 and i.accepted_at is null
order by i.inserted_at, i.id

-- name: member_exists
select exists (select 1 from memberships m join users u on u.id = m.user_id
               where m.organization_id = $1 and lower(u.email) = lower($2))

-- name: delete_stale_invitation
-- An expired open invitation to the same address gives way to a new one.
delete from invitations
where organization_id = $1 and lower(email) = lower($2) and accepted_at is null
  and expires_at <= now()

-- name: insert_invitation
insert into invitations (organization_id, email, role, token_hash, invited_by_id, expires_at)
values ($1, lower($2), $3, $4, $5, now() + make_interval(secs => $6))
returning id, email, role, expires_at

-- name: revoke_invitation
delete from invitations
where organization_id = $1 and id = $2 and accepted_at is null
returning id, email

-- name: open_invitation
-- An invitation that may still be accepted, with its organization's name.
select i.id, i.organization_id, i.email, i.role, o.name as organization_name
from invitations i join organizations o on o.id = i.organization_id
where i.token_hash = $1 and i.accepted_at is null and i.expires_at > now()

-- name: accept_invitation
update invitations set accepted_at = now()
where token_hash = $1 and accepted_at is null and expires_at > now()
returning id, organization_id, email, role

-- name: insert_membership
insert into memberships (user_id, organization_id, role) values ($1, $2, $3)
on conflict (organization_id, user_id) do nothing

-- name: get_membership
select u.id as user_id, u.email, m.role
from memberships m join users u on u.id = m.user_id
where m.organization_id = $1 and m.user_id = $2

-- name: set_member_role
update memberships set role = $3
where organization_id = $1 and user_id = $2
returning user_id, role

-- name: delete_membership
delete from memberships where organization_id = $1 and user_id = $2
returning user_id

-- name: rename_organization
update organizations set name = $2, updated_at = now() where id = $1
returning id, name

-- name: set_organization_tier
update organizations set tier = $2, updated_at = now() where id = $1
returning id, tier

-- name: slug_taken
select exists (select 1 from organizations where slug = $1)

-- name: organization_name_taken
select exists (select 1 from organizations where name = $1 and id is distinct from $2)
