"""Flows with a misspelt hook (`explain_auth_failur`) and half a capability (`reconcile_member` alone)."""

from __future__ import annotations

from typing import Any


def check_connection(connection: Any) -> str:
    return "ok"


def explain_auth_failur(error: Any) -> str:
    return "the key was refused"


def reconcile_member(connection: Any, member: Any, state: Any) -> dict[str, Any]:
    return {}
