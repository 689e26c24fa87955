"""What the web layer is given: one typed object per app, reached with ``services()``."""

from __future__ import annotations

from dataclasses import dataclass

from quart import current_app

from runlater.clock import Clock
from runlater.config import Settings
from runlater.domain.inbound import InboundService
from runlater.domain.monitor_service import MonitorService
from runlater.domain.notification_service import NotificationService
from runlater.domain.people import PeopleService
from runlater.domain.service import TaskService
from runlater.domain.status_pages import StatusPageService
from runlater.domain.uptime import UptimeService
from runlater.events import Hub
from runlater.store.ports import WebStore
from runlater.web.keycache import ApiKeyCache
from runlater.web.rights import RightsWatch

CONFIG_KEY = "RUNLATER_SERVICES"


@dataclass(frozen=True, slots=True)
class Services:
    store: WebStore
    settings: Settings
    clock: Clock
    tasks: TaskService
    monitors: MonitorService
    notifications: NotificationService
    uptime: UptimeService
    status_pages: StatusPageService
    people: PeopleService
    api_keys: ApiKeyCache
    hub: Hub
    rights: RightsWatch
    inbound: InboundService


def services() -> Services:
    """This app's services (inside a request or app context)."""
    found: Services = current_app.config[CONFIG_KEY]
    return found
