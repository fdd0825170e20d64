"""SessionM's hooks for the shared code (integrations/hooks.py finds them in a vendor's `flows` module): verify,
the words for refused credentials, and the member-state reconciler's profile sync and drift check.

The use cases live in modules named for them (seed 004): `connection` (the API client and verify), `profiles`
(each member's SessionM profile), `welcome` (the sign-up event), `offers` and `wallet` (the wallet scan and its
offer-issued and offer-expiring events), `forget` (deleted members' profiles), `transactions` (relayed to Connect
once per caller's id) and `campaigns` (shown to support staff); `signals` connects the receivers. Messages are the
portal's own: the events made here are sent by the message job (members/messaging.py) through the client's
templates and its SMS connection.
"""

from __future__ import annotations

from integrations.sessionm.connection import check_connection, explain_auth_failure
from integrations.sessionm.profiles import differs, needs_sync, read_member_state, reconcile_member

__all__ = [
    "check_connection",
    "differs",
    "explain_auth_failure",
    "needs_sync",
    "read_member_state",
    "reconcile_member",
]
