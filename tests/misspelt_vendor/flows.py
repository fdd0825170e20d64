"""Flows with a misspelt hook (`explain_auth_failur`), half a capability (`reconcile_member` alone) and a hook that
takes a parameter its capability does not pass (`check_connection`'s `timeout`)."""

from __future__ import annotations

from typing import Any


def check_connection(connection: Any, timeout: float) -> str:
    return "ok"


def explain_auth_failur(error: Any) -> str:
    return "the key was refused"


def reconcile_member(connection: Any, member: Any, state: Any) -> dict[str, Any]:
    return {}
