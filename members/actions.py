"""One-off actions for a member at a vendor, on the member's timeline with the calls they made.

A sync (members/sync.py) notes its calls on the member's vendor state. The other things done for one member at a
vendor — an Attentive eligibility check or e-mail unsubscribe, a refresh from Annex Cloud, a points adjustment — are
flows run from the admin, the API, a job or another flow; each is wrapped here (`on_the_timeline`), so whichever way
it was started it leaves one MemberAction: what, how it went, and the calls it made. Support reads on the timeline
what Attentive answered to the check, with the call itself one click away."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import wraps
from typing import Any, ParamSpec, TypeVar

from django.db import DatabaseError, transaction

from integrations.connections import noting_calls
from integrations.http import VendorError
from integrations.models import VendorCall
from integrations.outcome import Outcome
from members.models import Member, MemberAction

P = ParamSpec("P")
R = TypeVar("R")

SAID_MAX = MemberAction._meta.get_field("said").max_length or 500
CALLS_KEPT = 10


def on_the_timeline(vendor: str, action: str) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Record each run of a member flow (its first argument is the member) as a MemberAction of this vendor: its
    outcome (an Outcome, or what has one), or the error it raised, and the calls it made."""

    def decorate(flow: Callable[P, R]) -> Callable[P, R]:
        @wraps(flow)
        def recorded(*args: P.args, **kwargs: P.kwargs) -> R:
            member = args[0]
            assert isinstance(member, Member), f"{flow.__name__} takes the member first"
            with noting_calls() as calls:
                try:
                    result = flow(*args, **kwargs)
                except Exception as exc:
                    record(member, vendor, action, calls, False, what_went_wrong(exc))
                    raise
            ok, said = how_it_went(result)
            record(member, vendor, action, calls, ok, said)
            return result

        return recorded

    return decorate


def how_it_went(result: Any) -> tuple[bool, str]:
    outcome = result if isinstance(result, Outcome) else getattr(result, "outcome", None)
    if isinstance(outcome, Outcome):
        return outcome.ok, outcome.message
    return True, ""


def what_went_wrong(error: Exception) -> str:
    return error.for_admin if isinstance(error, VendorError) else str(error) or type(error).__name__


def record(member: Member, vendor: str, action: str, calls: list[VendorCall], ok: bool, said: str) -> None:
    row = MemberAction(
        member=member,
        vendor=vendor,
        action=action,
        ok=ok,
        said=said[:SAID_MAX],
        call_ids=[c.pk for c in calls][-CALLS_KEPT:],
    )
    # The action's own outcome matters more than its note: a database that fails here fails the note alone (in a
    # savepoint, so a caller's transaction goes on).
    with contextlib.suppress(DatabaseError), transaction.atomic():
        row.save()
