"""What the admin index shows: trouble first (failing connections, failed job runs of the last 24 hours), then
every visible client with each connection's status and last check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

from integrations.models import Client, Connection, JobRun
from integrations.tenancy import scope_to_clients, visible_clients


@dataclass
class Dashboard:
    failing_connections: list[Connection]
    failed_runs: list[JobRun]
    clients: list[Client]


def build_dashboard(user: Any) -> Dashboard:
    connections = Connection.objects.defer("secrets").select_related("client")
    failing = scope_to_clients(connections.filter(status=Connection.Status.FAILING), user)
    since = timezone.now() - timedelta(hours=24)
    runs = JobRun.objects.select_related("client").filter(outcome=JobRun.Outcome.FAILED, started_at__gte=since)
    # Portal-wide runs (no client) reach site admins only: scoping drops them for client users.
    runs = scope_to_clients(runs, user)
    clients = visible_clients(user).prefetch_related(
        Prefetch("connections", queryset=Connection.objects.defer("secrets").order_by("vendor"))
    )
    return Dashboard(failing_connections=list(failing), failed_runs=list(runs[:50]), clients=list(clients))
