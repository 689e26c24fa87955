-- Tasks that PUT /sync manages: created by a sync, or named in one (adopted). Only these can be
-- deleted by a sync's delete_removed, so a sync of cron definitions never cancels one-time
-- tasks, batch items or tasks made through POST /tasks that the document never mentioned.
alter table tasks add column managed_by_sync boolean not null default false;
