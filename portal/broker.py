"""The broker as the health check (/healthz) and /metrics see it: whether it answers, and how many messages wait on
each of the portal's queues."""

from __future__ import annotations

from typing import Any

from django.conf import settings

from portal.celery import app as celery_app


def broker_reachable() -> tuple[bool, str]:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, interval_step=0, timeout=2)
        return True, "ok"
    except Exception as exc:  # kombu raises transport-specific errors
        return False, type(exc).__name__


def queue_depths() -> dict[str, int | None]:
    """Messages waiting per queue, where the broker can tell (Redis: list lengths)."""
    if not celery_app.conf.broker_url.startswith("redis"):
        return {}
    try:
        with celery_app.connection_for_read() as conn:
            channel: Any = conn.default_channel  # kombu's Redis channel (the broker URL says so): its client is Redis
            client = channel.client
            return {queue: int(client.llen(queue)) for queue in settings.PORTAL_QUEUES}
    except Exception:  # the broker check reports the outage
        return dict.fromkeys(settings.PORTAL_QUEUES)
