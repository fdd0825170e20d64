"""Who a First Orion push reaches: destinations planned from members or numbers, one per number (deduplicated),
personalised from the program content's variables, each with a customTrackingId that traces it to its push and
member; and the members left out, counted by reason with a few examples (the confirmation page shows them).

Personalised values over 20 characters may not display on every handset (seed 002's best practice). They are never
cut silently: each push says what to do with them (LongValues): leave those members out (the default, counted with
the reason), shorten the values at 20, or send them as they are (a site admin's choice).

Destinations are streamed, never gathered: members are read in chunks (by primary key) and each destination is
handed on as it is made, so planning a push of 100,000 members holds one chunk and the set of numbers seen. A Plan
counts what was planned; the push's batches (flows.build_batches) are written as the destinations come."""

from __future__ import annotations

import math
import re
from collections import Counter, deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from integrations.first_orion.models import (
    MAX_PERSONALIZATION_LENGTH,
    MEMBER_PLACEHOLDERS,
    LongValues,
    ProgramContent,
)
from integrations.first_orion.numbers import NOT_DIALLABLE, NotE164, push_number
from integrations.models import Client
from members.models import Member
from members.templates_text import placeholders_in, render_text

SKIP_NO_PHONE = "no mobile number"
SKIP_INVALID_PHONE = "invalid mobile number"
# The portal's consent flag for the member's phone is the SMS opt-in: without it the member counts as opted out.
SKIP_OPTED_OUT = "opted out (no SMS opt-in)"
SKIP_DUPLICATE = "duplicate number"
SKIP_OTHER_CLIENT = "not a member of the program content's client"
SKIP_LONG_VALUE = f"personalised value over {MAX_PERSONALIZATION_LENGTH} characters (left out)"
MAX_EXAMPLES = 5


# Members read per query while planning (keyset pagination on the primary key: memory and each query stay bounded).
MEMBER_CHUNK = 2000


@dataclass
class Plan:
    """Who a push reaches: how many destinations, and the members left out by reason (with a few examples)."""

    count: int = 0
    # The numbers already given a destination (each number is pushed once): kept across chunks.
    seen: set[str] = field(default_factory=set, repr=False)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)
    long_values: list[str] = field(default_factory=list)
    # Destinations whose values were shortened at 20 (LongValues.SHORTEN), or sent over 20 (LongValues.AS_IS).
    shortened: int = 0
    sent_long: int = 0
    # Sent, but worth a look (a number `phonenumbers` calls invalid for dialling), by reason with examples.
    warnings: Counter[str] = field(default_factory=Counter)
    warning_examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, who: str) -> None:
        self.skipped[reason] += 1
        add_example(self.examples, reason, who)

    def warn(self, reason: str, who: str) -> None:
        self.warnings[reason] += 1
        add_example(self.warning_examples, reason, who)

    @property
    def destinations(self) -> range:
        """The destinations planned, as a sized sequence of their positions (the confirmation page shows how many):
        a plan counts them, it does not keep them."""
        return range(self.count)

    def batches(self, size: int) -> int:
        return math.ceil(self.count / size)

    def take(self, number: str) -> bool:
        """Give the number its destination, unless it has one already."""
        if number in self.seen:
            return False
        self.seen.add(number)
        self.count += 1
        return True


def add_example(examples: dict[str, list[str]], reason: str, who: str) -> None:
    listed = examples.setdefault(reason, [])
    if len(listed) < MAX_EXAMPLES:
        listed.append(who)


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


def long_names(personalization: dict[str, str]) -> list[str]:
    return [name for name, value in personalization.items() if len(value) > MAX_PERSONALIZATION_LENGTH]


def note_long_values(plan: Plan, who: str, personalization: dict[str, str]) -> None:
    for name in long_names(personalization):
        value = personalization[name]
        if len(plan.long_values) < MAX_EXAMPLES:
            plan.long_values.append(f"{who}: {name} = “{value}” ({len(value)} characters)")


def apply_long_values(plan: Plan, who: str, personalization: dict[str, str], long_values: str) -> dict[str, str] | None:
    """The personalization to send under the push's choice, or None when the destination is left out."""
    if not long_names(personalization):
        return personalization
    note_long_values(plan, who, personalization)
    if long_values == LongValues.SHORTEN:
        plan.shortened += 1
        return {name: value[:MAX_PERSONALIZATION_LENGTH] for name, value in personalization.items()}
    if long_values == LongValues.AS_IS:
        plan.sent_long += 1
        return personalization
    plan.skip(SKIP_LONG_VALUE, who)
    return None


def readable_number(plan: Plan, raw: str, region: str, who: str) -> str | None:
    """The number in E.164 (syntax is what counts; not valid for dialling is a warning), or None when skipped."""
    try:
        number = push_number(raw, region)
    except NotE164:
        plan.skip(SKIP_INVALID_PHONE, who)
        return None
    if not number.diallable:
        plan.warn(NOT_DIALLABLE, number.e164)
    return number.e164


MEMBER_FIELDS = ("pk", "client_id", "phone", "opted_in", "first_name", "last_name", "tier", "points", "email")


def member_chunks(members: QuerySet[Member], size: int = MEMBER_CHUNK) -> Iterator[list[dict[str, Any]]]:
    """The members' fields a destination needs, in primary-key order, a chunk at a time."""
    last = 0
    while rows := list(members.filter(pk__gt=last).order_by("pk").values(*MEMBER_FIELDS)[:size]):
        yield rows
        last = rows[-1]["pk"]


def member_rows(members: QuerySet[Member]) -> list[dict[str, Any]]:
    return list(members.order_by("pk").values(*MEMBER_FIELDS))


def member_destinations(
    plan: Plan,
    content: ProgramContent,
    rows: Iterable[dict[str, Any]],
    push_id: int | str = "",
    long_values: str = LongValues.LEAVE_OUT,
) -> Iterator[dict[str, Any]]:
    """Destinations for members, in the order given: one per number (the first member with it), personalised, each
    traced back to push and member by its customTrackingId. Members without an E.164 number, opted out, with a
    number already taken, or (by default) with a personalised value over 20 characters are skipped and counted."""
    client = content.client
    for member in rows:
        who = member["email"] or f"member {member['pk']}"
        if member["client_id"] != client.pk:
            plan.skip(SKIP_OTHER_CLIENT, who)
            continue
        if not member["phone"]:
            plan.skip(SKIP_NO_PHONE, who)
            continue
        number = readable_number(plan, member["phone"], client.default_region, f"{who} ({member['phone']})")
        if number is None:
            continue
        if not member["opted_in"]:
            plan.skip(SKIP_OPTED_OUT, who)
            continue
        if number in plan.seen:
            plan.skip(SKIP_DUPLICATE, f"{who} ({number})")
            continue
        personalization = apply_long_values(plan, who, personalize(content, member_values(member, client)), long_values)
        if personalization is None or not plan.take(number):
            continue
        yield destination(number, personalization, f"push-{push_id}-m{member['pk']}")


def number_destinations(
    plan: Plan,
    content: ProgramContent,
    numbers: Iterable[tuple[int, str]],
    push_id: int | str = "",
    long_values: str = LongValues.LEAVE_OUT,
) -> Iterator[dict[str, Any]]:
    """Destinations for (position, number) pairs of a list (national numbers read in the client's region). Numbers
    belong to no member, so only variables that need no member (static text, {client_name}) are personalised."""
    static = {
        name: template
        for name, template in content.personalization.items()
        if not set(placeholders_in(template)) & MEMBER_PLACEHOLDERS
    }
    values = {"client_name": content.client.name}
    for index, raw in numbers:
        number = readable_number(plan, str(raw), content.client.default_region, str(raw))
        if number is None:
            continue
        if number in plan.seen:
            plan.skip(SKIP_DUPLICATE, number)
            continue
        personalization = apply_long_values(
            plan, number, {name: render_text(t, values) for name, t in static.items()}, long_values
        )
        if personalization is None or not plan.take(number):
            continue
        yield destination(number, personalization, f"push-{push_id}-n{index}")


def plan_for_members(
    content: ProgramContent,
    members: QuerySet[Member],
    push_id: int | str = "",
    long_values: str = LongValues.LEAVE_OUT,
) -> Plan:
    """What a push to these members would do, counted (the confirmation page): no destination is kept."""
    plan = Plan()
    for rows in member_chunks(members):
        deque(member_destinations(plan, content, rows, push_id, long_values), maxlen=0)
    return plan


MEMBER_TRACKING_ID = re.compile(r"^push-\d*-m(\d+)$")


def member_pk_of(destination: dict[str, Any]) -> int | None:
    """The member a destination was made for, from its customTrackingId (`push-<push>-m<member>`); None for a number
    from a list."""
    found = MEMBER_TRACKING_ID.match(str(destination.get("customTrackingId", "")))
    return int(found.group(1)) if found else None


def destination(number: str, personalization: dict[str, str], tracking_id: str) -> dict[str, Any]:
    item: dict[str, Any] = {"bNumber": number}
    if personalization:
        item["personalization"] = personalization
    item["customTrackingId"] = tracking_id
    return item
