-- An Idempotency-Key is now taken by a transaction-scoped advisory lock of the request's own
-- transaction, and its record is written in that transaction (runlater/store/transaction.py):
-- a record is always 'done'. Records left 'in progress' by earlier versions (whose requests
-- failed when a write after the change did not go through) are dropped, so the key is free.
delete from idempotency_keys where status = 'in_progress';
