"""Bazaarvoice Conversations API simulator: `GET /data/reviews.json?apiversion=5.4&passkey=...` with the documented
filters (`Filter=Attribute:op:value`, repeated = AND, comma = OR; ops eq, neq, lt, lte, gt, gte; times in epoch
seconds), `Sort`, `Limit` (default 10, at most 100: 400 above), `Offset` (at most 300000), `TotalResults`, the QPM
and quota headers, and a 429 knob with `X-Bazaarvoice-Quota-Reset`.

Reviewers' e-mail addresses are encrypted as Bazaarvoice does (AES-128-ECB, PKCS7, base64) with the key derivation
the state names (`plain16` or `sha1`); some are not decryptable. Generated reviews include ones moderated today,
pending and rejected ones, and reviewers who are Annex Cloud members (added to the Annex Cloud simulator, which
runs in the same process), non-members, opted-out and inactive members.

`POST /sandbox/bazaarvoice/_control` with {"reset": true, "generate": {"reviews": 100, ...}, "rate_limit": 1,
"quota_reset": "00:00:30", "derivation": "sha1"} sets it up; a GET reads its counters.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.bazaarvoice.emails import PLAIN16, email_key, encrypt_email
from integrations.sandbox.base import json_object, simulator

PASSKEY = "bvsbx-passkey-7Q2xK9rT"
SHARED_SECRET = "bvsbx-shared-Z9k4m2Lp"
# What the demo client's connection holds (seed_demo): the simulator accepts these and nothing else.
DEMO_SECRETS = {"passkey": PASSKEY, "shared_secret": SHARED_SECRET}
DEMO_SETTINGS = {"email_key_derivation": PLAIN16, "points_per_review": 50, "reason": "Ratings and Reviews"}
MAX_LIMIT, MAX_OFFSET, DEFAULT_LIMIT = 100, 300_000, 10
QPM_ALLOTTED, QUOTA_ALLOTTED = 10_000, 1_000_000
OPS: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b,
    "neq": lambda a, b: a != b,
    "lt": lambda a, b: a < b,
    "lte": lambda a, b: a <= b,
    "gt": lambda a, b: a > b,
    "gte": lambda a, b: a >= b,
}
# Attributes the simulator filters and sorts on; times compare as epoch seconds.
TIME_ATTRIBUTES = frozenset({"LastModeratedTime", "LastModificationTime", "SubmissionTime"})
FILTERABLE = TIME_ATTRIBUTES | {"ModerationStatus", "Id", "ProductId", "Rating", "IsRatingsOnly", "AuthorId"}


@dataclass
class State:
    reviews: list[dict[str, Any]] = field(default_factory=list)
    derivation: str = PLAIN16
    rate_limit: int = 0  # the next N calls answer 429
    quota_reset: str = "00:00:30"
    calls: int = 0
    rate_limited: int = 0
    queries: list[list[tuple[str, str]]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


state = State()


# --- Generated reviews ---------------------------------------------------------------------------------------------


def iso(moment: datetime) -> str:
    """Bazaarvoice's time format: 2023-04-04T11:00:02.000+00:00."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000+00:00")


def review_item(number: int, email: str, moderated: datetime, *, status: str = "APPROVED") -> dict[str, Any]:
    """A review as seed 003 shows it (the fields that matter, and a few that don't)."""
    return {
        "Id": str(46_000_000 + number),
        "CID": f"00000000-0000-4000-8000-{number:012d}",
        "SourceClient": "sandbox-annexcloud",
        "LastModeratedTime": iso(moderated),
        "LastModificationTime": iso(moderated),
        "SubmissionTime": iso(moderated - timedelta(minutes=2)),
        "ProductId": f"demo-product-{number % 7 + 1}",
        "AuthorId": f"author{number}",
        "ContentLocale": "en_US",
        "Rating": number % 5 + 1,
        "RatingRange": 5,
        "IsRatingsOnly": number % 3 == 0,
        "ModerationStatus": status,
        "UserNickname": f"reviewer {number}",
        "UserEmailAddress": email,
        "ReviewText": None if number % 3 == 0 else "Lovely, fits well.",
        "Photos": [],
        "Badges": {},
    }


def reviewer_kind(number: int) -> str:
    """Every tenth reviewer is no loyalty member, one opted out, one inactive, one undecryptable; others members."""
    return {0: "not_member", 1: "opted_out", 2: "inactive", 3: "undecryptable"}.get(number % 10, "member")


def encrypted_email(number: int, email: str, key: bytes) -> str:
    """The address as Bazaarvoice sends it; an undecryptable reviewer's is garbage, or encrypted with another key."""
    if reviewer_kind(number) != "undecryptable":
        return encrypt_email(email, key)
    return "not-a-valid-ciphertext==" if number % 20 == 3 else encrypt_email(email, bytes(16))


FIRST_NAMES = ("Maya", "Jordan", "Priya", "Lucas", "Amara", "Diego", "Hannah", "Kenji", "Sofia", "Omar", "Grace")
LAST_NAMES = ("Okafor", "Lindqvist", "Hernández", "Nakamura", "O'Brien", "Kowalski", "Patel", "Dubois", "Mensah")


def loyalty_member(number: int, email: str, kind: str) -> dict[str, Any]:
    """The reviewer's Annex Cloud profile as a real program holds it: a name, and a mobile number for one in three
    (typed as Annex Cloud keeps it); the others have none, so no SMS vendor may be given them."""
    profile = {
        "id": email,
        "email": email,
        "firstName": FIRST_NAMES[number % len(FIRST_NAMES)],
        "lastName": LAST_NAMES[number % len(LAST_NAMES)],
        "optInStatus": "NO" if kind == "opted_out" else "YES",
        "status": "INACTIVE" if kind == "inactive" else "ACTIVE",
    }
    if number % 3 == 0:
        profile["phone"] = f"212-555-{number % 10_000:04d}"
    return profile


def approved_span(
    today_start: datetime, days: int, moderated_from: str | None, moderated_until: str | None
) -> tuple[datetime, float]:
    """Where generated approved reviews start, and over how many seconds they spread (the last one inside it)."""
    if moderated_from and moderated_until:
        since, until = datetime.fromisoformat(moderated_from), datetime.fromisoformat(moderated_until)
        return since, max(0.0, (until - since).total_seconds() - 1)
    return today_start - timedelta(days=days), float(max(1, days * 86_400 - 1))


def generate(
    reviews: int,
    *,
    days: int = 10,
    today: int = 0,
    pending: int = 0,
    rejected: int = 0,
    first: int = 0,
    now: datetime | None = None,
    moderated_from: str | None = None,
    moderated_until: str | None = None,
) -> dict[str, int]:
    """Add approved reviews spread over the `days` before today (UTC) — or, when given, over [`moderated_from`,
    `moderated_until`) (ISO times: reviews indexed late behind a cursor, or moderated "today" by some reading) —
    plus some moderated today, pending and rejected ones; their reviewers join the Annex Cloud simulator by kind.
    Returns how many of each."""
    now = now or datetime.now(UTC)
    today_start = datetime.combine(now.date(), time.min, tzinfo=UTC)
    key = email_key(SHARED_SECRET, state.derivation)
    kinds: dict[str, int] = {}
    since, spread = approved_span(today_start, days, moderated_from, moderated_until)
    items, members = [], {}
    for n in range(first, first + reviews + today + pending + rejected):
        index = n - first
        email = f"reviewer{n}@example.com"
        kind = reviewer_kind(n)
        if index < reviews:
            moderated, status = since + timedelta(seconds=spread * index / reviews), "APPROVED"
            kinds[kind] = kinds.get(kind, 0) + 1
        elif index < reviews + today:
            moderated, status = min(now, today_start + timedelta(seconds=index - reviews)), "APPROVED"
        else:
            moderated = today_start - timedelta(hours=1, seconds=index)
            status = "PENDING" if index < reviews + today + pending else "REJECTED"
        items.append(review_item(n, encrypted_email(n, email, key), moderated, status=status))
        if kind not in ("not_member", "undecryptable"):
            members[email] = loyalty_member(n, email, kind)
    with state.lock:
        state.reviews.extend(items)
        state.reviews.sort(key=lambda item: item["LastModeratedTime"])
    with annex_cloud_simulator.state.lock:
        for email, member in members.items():
            annex_cloud_simulator.state.members.setdefault(email, member)
    return kinds


# --- The endpoint --------------------------------------------------------------------------------------------------


def errors(status: int, code: str, message: str) -> JsonResponse:
    body = {"HasErrors": True, "Errors": [{"Code": code, "Message": message}], "Results": []}
    return JsonResponse(body, status=status)


def comparable(attribute: str, value: Any) -> Any:
    if attribute in TIME_ATTRIBUTES:
        return int(datetime.fromisoformat(str(value)).timestamp()) if not str(value).isdigit() else int(value)
    if attribute == "Rating":
        return int(value)
    if attribute == "IsRatingsOnly":
        return str(value).lower() == "true"
    return str(value)


def parse_filter(text: str) -> Callable[[dict[str, Any]], bool] | None:
    """`Attribute:op:v1,v2` (comma = OR), or None when it is not one the simulator knows."""
    attribute, _, rest = text.partition(":")
    op, _, values = rest.partition(":")
    if attribute not in FILTERABLE or op not in OPS or not values:
        return None
    try:
        wanted = [comparable(attribute, value) for value in values.split(",")]
    except ValueError:
        return None
    return lambda item: any(OPS[op](comparable(attribute, item[attribute]), value) for value in wanted)


def quota_headers(response: JsonResponse) -> JsonResponse:
    response["X-Bazaarvoice-QPM-Allotted"] = str(QPM_ALLOTTED)
    response["X-Bazaarvoice-QPM-Current"] = str(state.calls % QPM_ALLOTTED)
    response["X-Bazaarvoice-Quota-Allotted"] = str(QUOTA_ALLOTTED)
    response["X-Bazaarvoice-Quota-Current"] = str(state.calls)
    response["X-Bazaarvoice-Quota-Reset"] = state.quota_reset
    return response


def bad_paging(request: HttpRequest) -> tuple[int, int] | JsonResponse:
    limit, offset = request.GET.get("Limit", str(DEFAULT_LIMIT)), request.GET.get("Offset", "0")
    if not limit.isdigit() or not 0 < int(limit) <= MAX_LIMIT:
        return errors(400, "ERROR_PARAM_INVALID_LIMIT", f"Limit must be between 1 and {MAX_LIMIT}.")
    if not offset.isdigit() or int(offset) > MAX_OFFSET:
        return errors(400, "ERROR_PARAM_INVALID_OFFSET", f"Offset must be between 0 and {MAX_OFFSET}.")
    return int(limit), int(offset)


def sorted_by(items: list[dict[str, Any]], sort: str) -> list[dict[str, Any]]:
    """`Sort=Attribute:asc|desc`, by the attribute named (items without it last); none: LastModeratedTime order."""
    attribute, _, direction = sort.partition(":")
    if not attribute:
        return items
    present = [item for item in items if item.get(attribute) is not None]
    present.sort(key=lambda item: item[attribute], reverse=direction.lower() == "desc")
    return present + [item for item in items if item.get(attribute) is None]


@simulator
def reviews(request: HttpRequest) -> JsonResponse:
    with state.lock:
        state.calls += 1
        state.queries.append([(key, value) for key, values in request.GET.lists() for value in values])
        if state.rate_limit > 0:
            state.rate_limit -= 1
            state.rate_limited += 1
            return quota_headers(errors(429, "ERROR_REQUEST_LIMIT_REACHED", "Rate limit exceeded"))
    if request.GET.get("passkey") != PASSKEY:
        return errors(200, "ERROR_PARAM_INVALID_API_KEY", "The passkey provided is invalid.")
    if request.GET.get("apiversion") != "5.4":
        return errors(200, "ERROR_PARAM_INVALID_API_VERSION", "apiversion must be 5.4 here.")
    paging = bad_paging(request)
    if isinstance(paging, JsonResponse):
        return paging
    limit, offset = paging
    parsed = [parse_filter(text) for text in request.GET.getlist("Filter")]
    conditions = [condition for condition in parsed if condition is not None]
    if len(conditions) < len(parsed):
        return errors(400, "ERROR_PARAM_INVALID_FILTER_ATTRIBUTE", "A Filter is not Attribute:op:value.")
    with state.lock:
        matching = [item for item in state.reviews if all(condition(item) for condition in conditions)]
    matching = sorted_by(matching, request.GET.get("Sort", ""))
    body = {
        "Limit": limit,
        "Offset": offset,
        "TotalResults": len(matching),
        "Locale": "en_US",
        "Results": matching[offset : offset + limit],
        "Includes": {},
        "HasErrors": False,
        "Errors": [],
    }
    return quota_headers(JsonResponse(body))


@csrf_exempt
def control(request: HttpRequest) -> JsonResponse:
    """POST sets the simulator up (see the module's docstring); GET reads its counters."""
    settings = json_object(request) or {}
    if settings.get("reset"):
        reset()
    with state.lock:
        state.derivation = str(settings.get("derivation", state.derivation))
        state.rate_limit = int(settings.get("rate_limit", state.rate_limit))
        state.quota_reset = str(settings.get("quota_reset", state.quota_reset))
    kinds = generate(**settings["generate"]) if isinstance(settings.get("generate"), dict) else {}
    return JsonResponse(
        {
            "reviews": len(state.reviews),
            "calls": state.calls,
            "rate_limited": state.rate_limited,
            "kinds": kinds,
            "reviewer_balances": reviewer_balances(),
        }
    )


def reviewer_balances() -> dict[str, int]:
    """How many generated reviewers hold each balance at the Annex Cloud simulator (benches count double awards)."""
    with annex_cloud_simulator.state.lock:
        members = list(annex_cloud_simulator.state.members.values())
    balances = Counter(
        str(member.get("availablePoints", 0)) for member in members if str(member.get("id", "")).startswith("reviewer")
    )
    return dict(balances)


def reset() -> None:
    with state.lock:
        state.reviews.clear()
        state.derivation, state.rate_limit, state.quota_reset = PLAIN16, 0, "00:00:30"
        state.calls = state.rate_limited = 0
        state.queries.clear()


urlpatterns = [
    path("_control", control),
    path("data/reviews.json", reviews),
]


def start_again() -> None:
    """The simulator as it starts: the demo's reviews only (the sandbox page's *Reset the sandbox*)."""
    reset()
    generate(40, days=5, today=3, pending=2, rejected=2, first=900_000)


# The demo's reviews: a served simulator starts with some, so "Pull now" on the demo connection finds reviews.
generate(40, days=5, today=3, pending=2, rejected=2, first=900_000)
