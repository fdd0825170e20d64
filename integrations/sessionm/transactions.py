"""SessionM transactions: a purchase relayed to Connect once per caller's transaction id (client API)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from integrations.http import Rejected, VendorError
from integrations.models import Connection
from integrations.outcome import NotReady
from integrations.sessionm.connection import sessionm_api, usable_or_not_ready
from integrations.sessionm.models import SessionMProfile, SessionMTransaction
from members.models import Member


class TransactionIdReused(Exception):
    """The caller's transaction id was used before for another transaction (another member or other details)."""


@dataclass(frozen=True)
class TransactionResult:
    transaction: SessionMTransaction
    repeated: bool


def send_transaction(member: Member, request_id: str, details: dict[str, Any]) -> TransactionResult:
    """Relay a purchase to Connect's send_transaction once per caller's transaction id. A repeat answers the stored
    answer without calling SessionM; one whose answer was lost (pending) is sent again with the same request_id,
    which SessionM answers with its original answer (idempotent on request_id)."""
    stored = SessionMTransaction.objects.filter(client_id=member.client_id, request_id=request_id).first()
    if stored is not None:
        refuse_other_use(stored, member, details)
        if stored.status != SessionMTransaction.Status.PENDING:
            return TransactionResult(stored, repeated=True)
    connection = usable_or_not_ready(member.client_id)
    txn = stored or new_transaction(member, request_id, details)
    relay(connection, txn)
    return TransactionResult(txn, repeated=False)


def new_transaction(member: Member, request_id: str, details: dict[str, Any]) -> SessionMTransaction:
    user_id = SessionMProfile.objects.filter(member=member).values_list("user_id", flat=True).first()
    if not user_id:
        raise NotReady(f"{member} has no SessionM profile yet: it is created shortly; try again in a minute.")
    # Stored (and committed) before the call: a lost answer leaves it pending, and a repeat sends it again.
    txn, created = SessionMTransaction.objects.get_or_create(
        client_id=member.client_id,
        request_id=request_id,
        defaults={"member": member, "request": {"user_id": user_id, "transaction": details}},
    )
    if not created:
        # A concurrent request with the same id stored it first: it must be the same transaction.
        refuse_other_use(txn, member, details)
    return txn


def refuse_other_use(stored: SessionMTransaction, member: Member, details: dict[str, Any]) -> None:
    if stored.member_id != member.pk or stored.request.get("transaction") != details:
        raise TransactionIdReused("This transaction id was already used for another member or other details.")


def relay(connection: Connection, txn: SessionMTransaction) -> None:
    Status = SessionMTransaction.Status
    try:
        answer = sessionm_api(connection).send_transaction(txn.request_id, txn.request)
    except Rejected as exc:
        txn.status, txn.detail = Status.REJECTED, exc.for_admin
        txn.response = {"status": "error", "errors": {"code": exc.code, "message": exc.message}}
    except VendorError as exc:
        txn.detail = f"{exc.for_admin} Repeat with the same transaction id to send it again (SessionM answers once)."
    else:
        txn.status, txn.response = Status.ACCEPTED, answer
        txn.detail = "Accepted by SessionM."
    txn.save(update_fields=["status", "response", "detail", "updated_at"])
