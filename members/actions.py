"""One-off actions for a member at a vendor, on the member's timeline with the calls they made.

A sync (members/sync.py) notes its calls on the member's vendor state. The other things done for one member at a
vendor — an Attentive eligibility check or e-mail unsubscribe, a refresh from Annex Cloud, a points adjustment,
SessionM's eligible campaigns — are flows run from the admin, the API, a job or another flow; each is wrapped here
(`on_the_timeline`), so whichever way it was started it leaves one MemberAction: what, how it went, and the calls it
made. Support reads on the timeline what Attentive answered to the check, with the call itself one click away.

The record is written on the flow's database connection: inside a caller's transaction it stands or falls with
that transaction, as the call log's rows of the same calls do."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.db import DatabaseError, transaction

from integrations.connections import noting_calls
from integrations.http import VendorError
from integrations.models import VendorCall
from integrations.outcome import NotReady, Outcome
from members.models import Member, MemberAction

P = ParamSpec("P")
R = TypeVar("R")
Result = MemberAction.Result

SAID_MAX = MemberAction._meta.get_field("said").max_length or 500
CALLS_KEPT = 10


def on_the_timeline(
    vendor: str, action: str, describe: Callable[[Any], tuple[str, str]] | None = None
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each run of a member flow (its first argument is the member) as a MemberAction of this vendor: how it
    went (`describe` of what it returned, else its Outcome's), or the error it raised — a missing set-up or detail
    as the portal's reason, not the vendor's refusal — and the calls it made."""

    def decorate(flow: Callable[P, R]) -> Callable[P, R]:
        @wraps(flow)
        def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
            member = args[0]
            assert isinstance(member, Member), f"{flow.__name__} takes the member first"
            with noting_calls() as calls:
                try:
                    answer = flow(*args, **kwargs)
                except Exception as exc:
                    record(member, vendor, action, calls, *what_went_wrong(exc))
                    raise
            record(member, vendor, action, calls, *(describe or how_it_went)(answer))
            return answer

        return recorded

    return decorate


def how_it_went(answer: Any) -> tuple[str, str]:
    outcome = answer if isinstance(answer, Outcome) else getattr(answer, "outcome", None)
    if isinstance(outcome, Outcome):
        return (Result.DONE if outcome.ok else Result.FAILED), outcome.message
    return Result.DONE, ""


def what_went_wrong(error: Exception) -> tuple[str, str]:
    if isinstance(error, NotReady):  # nothing was asked of the vendor
        return Result.NOT_SENT, f"Not sent by the portal: {error}"
    return Result.FAILED, error.for_admin if isinstance(error, VendorError) else str(error) or type(error).__name__


def record(member: Member, vendor: str, action: str, calls: list[VendorCall], result: str, said: str) -> None:
    call_ids = [call.pk for call in calls][-CALLS_KEPT:]
    row = MemberAction(
        member=member, vendor=vendor, action=action, result=result, said=said[:SAID_MAX], call_ids=call_ids
    )
    # The action's own outcome matters more than its note: a database that fails here fails the note alone (in a
    # savepoint, so a caller's transaction goes on).
    with contextlib.suppress(DatabaseError), transaction.atomic():
        row.save()
