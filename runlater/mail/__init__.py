"""E-mail: what a mail says (``compose``), its shape (``message``) and how it leaves (``smtp``).

Pure: no database. Mails are written to the outbox (``runlater.store.mail.enqueue_mail``) in
the transaction of what caused them and sent by the mailer actor (``runlater.actors.mailer``).
"""
