"""SessionM campaigns: the campaigns a member is eligible for, read on demand for support staff."""

from __future__ import annotations

from typing import Any

from integrations.outcome import Outcome
from integrations.sessionm.connection import sessionm_api, usable_or_not_ready
from integrations.sessionm.models import SessionMProfile
from integrations.sessionm.profiles import external_id
from members.actions import on_the_timeline
from members.models import Member, MemberAction


def eligible_campaigns(member: Member) -> Outcome:
    """The campaigns SessionM says the member is eligible for now (support staff, on demand): by user id, else by
    the portal's external id."""
    campaigns = campaigns_for(member)
    if not campaigns:
        return Outcome.success(f"{member}: no eligible SessionM campaigns.")
    names = ", ".join(str(c.get("name") or c.get("id")) for c in campaigns)
    return Outcome.success(f"{member}: eligible SessionM campaigns: {names}.")


def campaigns_answered(campaigns: list[dict[str, Any]]) -> tuple[str, str]:
    return MemberAction.Result.DONE, f"{len(campaigns)} eligible campaign{'' if len(campaigns) == 1 else 's'}."


@on_the_timeline("sessionm", "Eligible campaigns", describe=campaigns_answered)
def campaigns_for(member: Member) -> list[dict[str, Any]]:
    """SessionM's eligible campaigns of the member, as it answers them (raises NotReady or a VendorError)."""
    connection = usable_or_not_ready(member.client_id)
    user_id = SessionMProfile.objects.filter(member=member).values_list("user_id", flat=True).first() or ""
    return sessionm_api(connection).campaigns(user_id=user_id, external_id=external_id(member))
