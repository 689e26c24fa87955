"""What each part of Runlater needs from the store, as Protocols.

Actors, the domain and the web layer depend on these, not on ``Store``: each names the calls
it makes, so a test can hand in anything that has them (a fault-injecting wrapper of the real
store) and still type-check. ``Store`` satisfies every one of them; mypy checks that where the
node and the CLI hand the real store in.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any, Protocol
from uuid import UUID

from runlater.events import Event
from runlater.store.bulk import Decide, TaskSyncResult
from runlater.store.dlq import DeadLetterPort
from runlater.store.inbound import InboundPort
from runlater.store.mail import MailResult
from runlater.store.mail import OutgoingMail as Mail
from runlater.store.monitors import CronRefresh, DecideMonitors, Ping
from runlater.store.notifications import NotificationDraft, NotificationResult
from runlater.store.notifications import Plan as NotificationPlan
from runlater.store.qstash import QStashPort
from runlater.store.records import (
    AdvanceResult,
    ApiKeyOwner,
    CallbackResult,
    ClaimedExecution,
    CronAdvance,
    DueCronTask,
    Outcome,
    RescueResult,
    Row,
)
from runlater.store.session import DbTimeouts
from runlater.store.transaction import IdempotencyKey, RequestTransaction
from runlater.store.uptime import UptimeResult


class DeliveryStore(Protocol):
    """The pool, its workers and recorder, and the rescuer."""

    async def claim(
        self, limit: int, node: str, lease_margin_s: float
    ) -> tuple[list[ClaimedExecution], float | None]: ...

    async def complete(self, outcomes: Sequence[Outcome]) -> tuple[int, int]: ...

    async def release_leases(self, leases: Sequence[tuple[UUID, UUID]]) -> int: ...

    async def notify_executions(self) -> None: ...

    async def rescue_expired(self, limit: int = 1000) -> RescueResult: ...


class ScheduleStore(Protocol):
    """The scheduler."""

    async def due_cron_tasks(self, now: datetime, limit: int) -> list[DueCronTask]: ...

    async def advance_cron(self, advances: Sequence[CronAdvance]) -> AdvanceResult: ...

    async def next_cron_due(self, skipping: Collection[UUID] = ()) -> datetime | None: ...


class CallbackStore(Protocol):
    """The callbacker."""

    async def claim_callbacks(self, limit: int, lease_s: float) -> list[Row]: ...

    async def finish_callbacks(
        self, results: Sequence[CallbackResult], max_attempts: int
    ) -> int: ...

    async def next_callback_due_in(self) -> float | None: ...


class MailStore(Protocol):
    """The mailer (the outbox), the janitor (its retention) and the e-mail log's pages."""

    async def claim_mails(self, limit: int, lease_s: float) -> list[Row]: ...

    async def finish_mails(self, results: Sequence[MailResult]) -> int: ...

    async def next_mail_due_in(self) -> float | None: ...

    async def list_mails(self, limit: int = 50, offset: int = 0) -> list[Row]: ...

    async def get_mail(self, mail_id: UUID) -> Row: ...

    async def purge_mails(self, older_than_days: int = 30, limit: int = 10_000) -> int: ...


class LeaseStore(Protocol):
    """The elector."""

    async def acquire_leader_lease(self, name: str, holder: str, ttl_s: float) -> float | None: ...

    async def release_leader_lease(self, name: str, holder: str) -> None: ...


class RetentionStore(Protocol):
    """The janitor."""

    async def delete_expired_executions(self, now: datetime, limit: int) -> int: ...

    async def delete_stale_host_backoffs(self, older_than_s: float, limit: int) -> int: ...

    async def purge_idempotency_keys(self, limit: int = 10_000) -> int: ...

    async def delete_expired_sign_ins(self) -> int: ...

    async def delete_old_execution_minutes(self, limit: int) -> int: ...

    async def delete_old_monitor_pings(self, now: datetime, limit: int) -> int: ...

    async def delete_old_uptime_results(self, now: datetime, limit: int) -> int: ...

    async def delete_old_uptime_days(self, now: datetime, limit: int) -> int: ...

    async def delete_old_resource_days(self, now: datetime, limit: int) -> int: ...

    async def delete_old_inbound_events(self, now: datetime, limit: int) -> int: ...


class MonitorTickStore(Protocol):
    """The Monitor actor (leader): overdue heartbeat monitors, cron monitors' instants."""

    async def mark_overdue_monitors(self, now: datetime, limit: int) -> list[Row]: ...

    async def next_monitor_deadline(self) -> datetime | None: ...

    async def cron_monitors_to_refresh(self, now: datetime, limit: int) -> list[Row]: ...

    async def refresh_cron_upcoming(self, refreshes: Sequence[CronRefresh]) -> None: ...


class MonitorResourceStore(Protocol):
    """The monitor service (``domain/monitor_service.py``): the resource and its pings."""

    async def insert_monitor(self, org_id: UUID, row: Row) -> Row: ...

    async def get_monitor(self, org_id: UUID, monitor_id: UUID) -> Row: ...

    async def list_monitors(self, org_id: UUID, *, limit: int, offset: int) -> list[Row]: ...

    async def update_monitor(self, org_id: UUID, monitor_id: UUID, plan: Any) -> Row: ...

    async def delete_monitor(self, org_id: UUID, monitor_id: UUID) -> None: ...

    async def list_monitor_pings(
        self, org_id: UUID, monitor_id: UUID, *, limit: int, offset: int
    ) -> list[Row]: ...

    async def ping_monitor(self, ping: Ping) -> Row | None: ...

    async def sync_monitors(
        self,
        org_id: UUID,
        names: Sequence[str],
        decide: DecideMonitors,
        *,
        delete_removed: bool,
        dry_run: bool,
    ) -> TaskSyncResult: ...

    async def fix_monitor_expected(
        self,
        monitor_id: UUID,
        pinged_at: datetime,
        upcoming: Sequence[datetime],
        refresh_at: datetime,
        expected: datetime,
    ) -> bool: ...


class NotifierStore(Protocol):
    """The Notifier: events into notifications, and their sends."""

    async def expand_notification_events(
        self, limit: int, now: datetime, hour: datetime, plan: NotificationPlan, domain: str
    ) -> int: ...

    async def claim_notifications(self, limit: int, lease_s: float, now: datetime) -> list[Row]: ...

    async def finish_notifications(
        self, results: Sequence[NotificationResult], max_attempts: int, now: datetime
    ) -> int: ...

    async def finish_summary(self, row: Row, compose: Any, now: datetime, domain: str) -> bool: ...

    async def next_notification_due_in(self, now: datetime) -> float | None: ...


class NotificationResourceStore(Protocol):
    """The notification service: channels, maintenance windows, the notification log."""

    async def insert_channel(self, org_id: UUID, fields: Row) -> Row: ...

    async def list_channels(self, org_id: UUID) -> list[Row]: ...

    async def get_channel(self, org_id: UUID, channel_id: UUID) -> Row: ...

    async def update_channel(self, org_id: UUID, channel_id: UUID, merge: Any) -> Row: ...

    async def delete_channel(self, org_id: UUID, channel_id: UUID) -> None: ...

    async def write_notifications(
        self, drafts: Sequence[NotificationDraft], now: datetime, domain: str
    ) -> int: ...

    async def list_notifications(
        self, org_id: UUID, *, limit: int, offset: int, channel_id: UUID | None = None
    ) -> list[Row]: ...

    async def owners_of(self, org_id: UUID) -> list[str]: ...

    async def insert_window(self, org_id: UUID, fields: Row) -> Row: ...

    async def list_windows(self, org_id: UUID) -> list[Row]: ...

    async def delete_window(self, org_id: UUID, window_id: UUID) -> None: ...


class UptimeTickStore(Protocol):
    """The UptimeChecker (leader)."""

    async def claim_due_uptime_checks(self, now: datetime, limit: int) -> list[Row]: ...

    async def next_uptime_check_at(self) -> datetime | None: ...

    async def record_uptime_result(self, result: UptimeResult) -> Row | None: ...


class UptimeResourceStore(Protocol):
    """The uptime check service."""

    async def get_organization_usage(self, org_id: UUID) -> Row: ...

    async def insert_uptime_check(self, org_id: UUID, row: Row) -> Row: ...

    async def get_uptime_check(self, org_id: UUID, check_id: UUID, now: datetime) -> Row: ...

    async def list_uptime_checks(
        self, org_id: UUID, now: datetime, *, limit: int, offset: int
    ) -> list[Row]: ...

    async def update_uptime_check(self, org_id: UUID, check_id: UUID, plan: Any) -> Row: ...

    async def delete_uptime_check(self, org_id: UUID, check_id: UUID) -> None: ...

    async def list_uptime_results(
        self, org_id: UUID, check_id: UUID, *, limit: int, offset: int
    ) -> list[Row]: ...

    async def uptime_days(self, check_id: UUID, now: datetime) -> list[Row]: ...


class StatusResourceStore(Protocol):
    """Status pages, badges and Runlater's own status (the public pages)."""

    async def get_status_page(self, org_id: UUID) -> Row: ...

    async def put_status_page(
        self, org_id: UUID, *, enabled: bool, slug: str, title: str, items: list[Row]
    ) -> Row: ...

    async def existing_items(
        self, org_id: UUID, kinds: Sequence[str], refs: Sequence[str]
    ) -> set[int]: ...

    async def status_page_by_slug(self, slug: str) -> Row | None: ...

    async def status_items(
        self, org_id: UUID, kinds: Sequence[str], refs: Sequence[str], now: datetime
    ) -> list[Row]: ...

    async def badge(self, token: str, now: datetime) -> Row | None: ...

    async def system_status(self) -> Row: ...


class TaskStore(Protocol):
    """The domain's task service."""

    async def insert_task(
        self, org_id: UUID, task: dict[str, Any], delay_s: float | None
    ) -> Row: ...

    async def update_task(self, org_id: UUID, task_id: UUID, plan: Any) -> Row: ...

    async def delete_task(self, org_id: UUID, task_id: UUID) -> int: ...

    async def trigger_task(self, org_id: UUID, task_id: UUID) -> Row: ...

    async def retry_execution(self, org_id: UUID, execution_id: UUID) -> Row: ...

    async def insert_batch(
        self, org_id: UUID, task: dict[str, Any], delay_s: float | None, bodies: Sequence[Any]
    ) -> Row: ...

    async def sync_tasks(
        self,
        org_id: UUID,
        names: Sequence[str],
        decide: Decide,
        *,
        delete_removed: bool,
        dry_run: bool,
    ) -> TaskSyncResult: ...


class PeopleStore(Protocol):
    """The people service (``domain/people.py``): sign-in, sessions, members, invitations."""

    async def request_sign_in(
        self, email: str, token_hash: str, ttl_s: float, mail: Mail, domain: str
    ) -> bool: ...

    async def issue_login_token(self, email: str, token_hash: str, ttl_s: float) -> bool: ...

    async def login_token_usable(self, token_hash: str) -> bool: ...

    async def sign_in(
        self, token_hash: str, session_hash: str, csrf: str, session_ttl_s: float
    ) -> UUID | None: ...

    async def sign_up(
        self,
        email: str,
        org_name: str,
        slug: str,
        secret: str,
        token_hash: str,
        ttl_s: float,
        mail: Mail,
        mail_if_known: Mail,
        domain: str,
    ) -> bool: ...

    async def session(self, session_hash: str, session_ttl_s: float) -> Row | None: ...

    async def end_session(self, session_hash: str) -> None: ...

    async def switch_organization(self, session_hash: str, org_id: UUID) -> bool: ...

    async def invite(
        self,
        org_id: UUID,
        email: str,
        role: str,
        token_hash: str,
        invited_by: UUID,
        ttl_s: float,
        mail: Mail,
        domain: str,
    ) -> Row: ...

    async def open_invitation(self, token_hash: str) -> Row | None: ...

    async def accept_invitation(
        self, token_hash: str, session_hash: str, csrf: str, session_ttl_s: float
    ) -> Row | None: ...


class EventReadStore(Protocol):
    """The event feeder."""

    async def read_events(self, kind: str, ids: list[Any]) -> list[Event]: ...


class WebStore(
    TaskStore,
    PeopleStore,
    MonitorResourceStore,
    NotificationResourceStore,
    UptimeResourceStore,
    StatusResourceStore,
    QStashPort,
    DeadLetterPort,
    InboundPort,
    Protocol,
):
    """The web layer: the API's reads and changes besides the task service's, authentication,
    request transactions, readiness and metrics."""

    @property
    def last_ready(self) -> bool | None: ...

    async def ready(self, deadline_s: float) -> bool: ...

    def request_transaction(self, key: IdempotencyKey | None = None) -> RequestTransaction: ...

    async def authenticate_api_key(self, key_id: str, secret_hash: str) -> ApiKeyOwner | None: ...

    async def execution_counts(self) -> dict[str, int]: ...

    async def get_organization_usage(self, org_id: UUID) -> Row: ...

    async def rotate_webhook_secret(self, org_id: UUID, new_secret: str) -> Row: ...

    async def list_audit_log(self, org_id: UUID, *, limit: int, offset: int) -> list[Row]: ...

    async def list_api_keys(self, org_id: UUID, *, limit: int, offset: int) -> list[Row]: ...

    async def create_api_key(
        self, org_id: UUID, key_id: str, key_hash: str, name: str | None
    ) -> Row: ...

    async def revoke_api_key(self, org_id: UUID, api_key_id: UUID) -> Row: ...

    async def get_task(self, org_id: UUID, task_id: UUID) -> Row: ...

    async def list_tasks(
        self,
        org_id: UUID,
        *,
        schedule_type: str | None,
        queue: str | None,
        status: str | None,
        limit: int,
        offset: int,
        origin: str | None = None,
    ) -> list[Row]: ...

    async def trigger_task(self, org_id: UUID, task_id: UUID) -> Row: ...

    async def list_task_executions(
        self, org_id: UUID, task_id: UUID, *, status: str | None, limit: int, offset: int
    ) -> list[Row]: ...

    async def get_execution(self, org_id: UUID, execution_id: UUID) -> Row: ...

    async def retry_execution(self, org_id: UUID, execution_id: UUID) -> Row: ...

    async def list_queues(self, org_id: UUID) -> list[Row]: ...

    async def set_queue_paused(self, org_id: UUID, name: str, paused: bool) -> Row: ...

    async def cancel_queue(self, org_id: UUID, queue: str) -> int: ...

    # The dashboard's pages (besides the people service's calls).

    async def organizations_of(self, user_id: UUID) -> list[Row]: ...

    async def list_members(self, org_id: UUID) -> list[Row]: ...

    async def list_invitations(self, org_id: UUID) -> list[Row]: ...

    async def revoke_invitation(self, org_id: UUID, invitation_id: UUID) -> Row: ...

    async def get_member(self, org_id: UUID, user_id: UUID) -> Row: ...

    async def set_member_role(self, org_id: UUID, user_id: UUID, role: str) -> Row: ...

    async def remove_member(self, org_id: UUID, user_id: UUID) -> None: ...

    async def rename_organization(self, org_id: UUID, name: str) -> Row: ...

    async def set_organization_tier(self, org_id: UUID, tier: str) -> Row: ...

    async def search_tasks(
        self,
        org_id: UUID,
        *,
        text: str | None,
        schedule_type: str | None,
        queue: str | None,
        status: str | None,
        enabled: bool | None,
        limit: int,
        offset: int,
        origin: str | None = None,
    ) -> list[Row]: ...

    async def list_failures(self, org_id: UUID, limit: int) -> list[Row]: ...

    async def execution_hours(self, org_id: UUID, hours: int) -> list[Row]: ...

    async def execution_chain(self, org_id: UUID, execution_id: UUID) -> list[Row]: ...

    async def get_callback_for_execution(self, org_id: UUID, execution_id: UUID) -> Row | None: ...

    async def count_retries_in_flight(self, org_id: UUID) -> int: ...

    async def search_audit_log(
        self, org_id: UUID, *, action: str | None, actor_type: str | None, limit: int, offset: int
    ) -> list[Row]: ...


class NodeStore(
    DeliveryStore,
    ScheduleStore,
    CallbackStore,
    MailStore,
    EventReadStore,
    LeaseStore,
    RetentionStore,
    MonitorTickStore,
    NotifierStore,
    UptimeTickStore,
    WebStore,
    Protocol,
):
    """Everything one node runs on: every actor's calls, the web layer's, and where the
    listener connects (it holds its own connection, not one of the pool's)."""

    @property
    def dsn(self) -> str: ...

    @property
    def timeouts(self) -> DbTimeouts: ...

    @property
    def application_name(self) -> str: ...

    async def migrate(self) -> list[int]: ...
