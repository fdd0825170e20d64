"""Verifying a connection: each vendor's check, one entry point for the admin action and the scheduled check."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

from integrations.attentive import flows as attentive
from integrations.models import Connection
from integrations.vibes import persons as vibes


class Outcome(Protocol):
    ok: bool
    message: str


Verifier = Callable[[Connection], Outcome]

VERIFIERS: dict[str, Verifier] = {"attentive": attentive.verify, "vibes": vibes.verify}


def verify_connection(connection: Connection) -> Outcome:
    verifier = VERIFIERS.get(connection.vendor)
    if verifier is None:
        return attentive.Outcome(False, f"{connection.spec.label} connections cannot be verified from the portal yet.")
    return verifier(connection)
