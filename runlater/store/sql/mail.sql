-- name: enqueue_mail
-- One mail into the outbox ($1 organization or null, $2 kind, $3 to, $4 subject, $5 text,
-- $6 html, $7 the domain of the Message-ID) and a wake-up for the mailers, in one statement:
-- both happen only if the caller's transaction commits. The Message-ID is made of the row id,
-- so a mail sent twice (a node that died while sending) carries the same one.
with new as (
    select uuid_generate_v7() as id
), inserted as (
    insert into mails (id, organization_id, kind, to_address, subject, text_body, html_body,
                       message_id)
    select n.id, $1, $2, $3, $4, $5, $6, '<' || n.id::text || '@' || $7 || '>'
    from new n
    returning id
), woken as (
    select pg_notify('runlater_mail', '') from inserted
)
select i.id, (select count(*) from woken) as notified
from inserted i

-- name: claim_mails
-- Up to $1 due mails for this mailer, leased $2 seconds: pending ones whose time has come and
-- ones whose sender's lease ran out (a node that died while sending; sent again with the same
-- Message-ID). Each claim counts an attempt; finish_mails is fenced by it.
with picked as (
    select id from mails
    where status in ('pending', 'sending') and next_attempt_at <= now()
      and (status = 'pending' or lease_until < now())
    order by next_attempt_at
    limit $1
    for update skip locked
)
update mails m
set status = 'sending', attempts = m.attempts + 1,
    lease_until = now() + make_interval(secs => $2)
from picked p
where m.id = p.id
returning m.id, m.organization_id, m.kind, m.to_address, m.subject, m.text_body, m.html_body,
          m.message_id, m.attempts

-- name: finish_mails
-- The outcome of each claimed attempt: $3 'sent' | 'logged' | 'failed' | 'pending' (try again
-- after $5 seconds), $4 the error. Fenced by the attempt number: a mailer whose lease ran out
-- and whose mail was claimed again writes nothing.
update mails m
set status = r.status,
    lease_until = null,
    last_error = r.error,
    sent_at = case when r.status in ('sent', 'logged') then now() end,
    next_attempt_at = case when r.status = 'pending' then now() + make_interval(secs => r.retry_in_s)
                           else m.next_attempt_at end
from unnest($1::uuid[], $2::int[], $3::text[], $4::text[], $5::float8[])
     as r(id, attempt, status, error, retry_in_s)
where m.id = r.id and m.attempts = r.attempt and m.status = 'sending'
returning m.id, m.status

-- name: next_mail_due_in_s
-- Seconds until a mail is due (pending) or a sender's lease runs out (sending); null: none.
select extract(epoch from (min(case when status = 'pending' then next_attempt_at
                                    else greatest(next_attempt_at, lease_until) end)
                           - now()))::float8
from mails where status in ('pending', 'sending')

-- name: list_mails
-- The e-mail log, newest first, without the bodies.
select id, organization_id, kind, to_address, subject, message_id, status, attempts,
       next_attempt_at, lease_until, last_error, sent_at, inserted_at
from mails
order by inserted_at desc, id desc
limit $1 offset $2

-- name: get_mail
select * from mails where id = $1

-- name: purge_mails
-- Finished mails (sent, logged, failed) older than $1 days, at most $2 of them, oldest first.
delete from mails
where id in (select id from mails
             where inserted_at < now() - make_interval(days => $1)
               and status in ('sent', 'logged', 'failed')
             order by inserted_at
             limit $2)
