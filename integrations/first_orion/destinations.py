"""Who a First Orion push reaches: destinations planned from members or numbers, one per number (deduplicated),
personalised from the program content's variables, each with a customTrackingId that traces it to its push and
member; and the members left out, counted by reason with a few examples (the confirmation page shows them)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from integrations.first_orion.models import MAX_PERSONALIZATION_LENGTH, MEMBER_PLACEHOLDERS, ProgramContent
from integrations.models import Client
from members.models import Member
from members.phones import InvalidPhone, to_e164
from members.templates_text import placeholders_in, render_text

SKIP_NO_PHONE = "no mobile number"
SKIP_INVALID_PHONE = "invalid mobile number"
# The portal's consent flag for the member's phone is the SMS opt-in: without it the member counts as opted out.
SKIP_OPTED_OUT = "opted out (no SMS opt-in)"
SKIP_DUPLICATE = "duplicate number"
SKIP_OTHER_CLIENT = "not a member of the program content's client"
MAX_EXAMPLES = 5


@dataclass
class Plan:
    """Who a push reaches: destinations as sent, and the members left out by reason (with a few examples)."""

    destinations: list[dict[str, Any]] = field(default_factory=list)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    long_values: list[str] = field(default_factory=list)

    def skip(self, reason: str, who: str) -> None:
        self.skipped[reason] += 1
        examples = self.examples.setdefault(reason, [])
        if len(examples) < MAX_EXAMPLES:
            examples.append(who)

    def batches(self, size: int) -> int:
        return math.ceil(len(self.destinations) / size)


def member_values(member: dict[str, Any], client: Client) -> dict[str, object]:
    return {
        "first_name": member["first_name"],
        "last_name": member["last_name"],
        "tier": member["tier"],
        "points": member["points"],
        "client_name": client.name,
    }


def personalize(content: ProgramContent, values: dict[str, object]) -> dict[str, str]:
    return {name: render_text(template, values) for name, template in content.personalization.items()}


def note_long_values(plan: Plan, who: str, personalization: dict[str, str]) -> None:
    for name, value in personalization.items():
        if len(value) > MAX_PERSONALIZATION_LENGTH and len(plan.long_values) < MAX_EXAMPLES:
            plan.long_values.append(f"{who}: {name} = “{value}” ({len(value)} characters)")


MEMBER_FIELDS = ("pk", "client_id", "phone", "opted_in", "first_name", "last_name", "tier", "points", "email")


def plan_for_members(content: ProgramContent, members: QuerySet[Member], push_id: int | str = "") -> Plan:
    """Destinations for members, in member order: one per number (the first member with it), personalised, each
    traced back to push and member by its customTrackingId. Members without a valid number, opted out, or with a
    number already taken are skipped and counted."""
    plan, seen = Plan(), set[str]()
    client = content.client
    for member in members.order_by("pk").values(*MEMBER_FIELDS).iterator(chunk_size=5000):
        who = member["email"] or f"member {member['pk']}"
        if member["client_id"] != client.pk:
            plan.skip(SKIP_OTHER_CLIENT, who)
            continue
        if not member["phone"]:
            plan.skip(SKIP_NO_PHONE, who)
            continue
        try:
            number = to_e164(member["phone"], client.default_region)
        except InvalidPhone:
            plan.skip(SKIP_INVALID_PHONE, f"{who} ({member['phone']})")
            continue
        if not member["opted_in"]:
            plan.skip(SKIP_OPTED_OUT, who)
            continue
        if number in seen:
            plan.skip(SKIP_DUPLICATE, f"{who} ({number})")
            continue
        seen.add(number)
        personalization = personalize(content, member_values(member, client))
        note_long_values(plan, who, personalization)
        plan.destinations.append(destination(number, personalization, f"push-{push_id}-m{member['pk']}"))
    return plan


def plan_for_numbers(content: ProgramContent, numbers: Iterable[str], push_id: int | str = "") -> Plan:
    """Destinations for a list of numbers (national ones read in the client's region). Numbers belong to no member,
    so only variables that need no member (static text, {client_name}) are personalised."""
    plan, seen = Plan(), set[str]()
    static = {
        name: template
        for name, template in content.personalization.items()
        if not set(placeholders_in(template)) & MEMBER_PLACEHOLDERS
    }
    values = {"client_name": content.client.name}
    for index, raw in enumerate(numbers):
        try:
            number = to_e164(str(raw), content.client.default_region)
        except InvalidPhone:
            plan.skip(SKIP_INVALID_PHONE, str(raw))
            continue
        if number in seen:
            plan.skip(SKIP_DUPLICATE, number)
            continue
        seen.add(number)
        personalization = {name: render_text(t, values) for name, t in static.items()}
        note_long_values(plan, number, personalization)
        plan.destinations.append(destination(number, personalization, f"push-{push_id}-n{index}"))
    return plan


def destination(number: str, personalization: dict[str, str], tracking_id: str) -> dict[str, Any]:
    item: dict[str, Any] = {"bNumber": number}
    if personalization:
        item["personalization"] = personalization
    item["customTrackingId"] = tracking_id
    return item
