"""Annex Cloud Loyalty API v3 simulator: checks the JWT signature, the body HMAC and the site header exactly as
the portal's client must produce them, and answers with Annex Cloud's documented bodies and error codes.

Accepts the site secret `sandbox-annex-shared-secret-0123456789` for any site id. Members are those created
through POST /users plus the demo addresses; points are idempotent on `customId`, a debit beyond the balance is
refused and each answer carries the tier the balance earns (Bronze, Silver from 1,000, Gold from 5,000). A repeated
`customId` is answered with the original answer (`retry: YES`), or, as a strict Annex Cloud may, with AC1006 "already
exists" (409) when `_control` says `{"repeats": "already_exists"}`; nothing is applied twice either way. Answers can
be lost after the points were applied: the next N as a gateway 504, or every Nth by dropping the connection unanswered.
Segments are kept by id: POST /segment creates one, GET/PATCH /segment/{id} read and update it in place.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import jwt
from django.http import HttpRequest, JsonResponse
from django.urls import path
from django.views.decorators.csrf import csrf_exempt

from integrations.annexcloud.api import body_hmac
from integrations.sandbox.base import EveryNth, drop_connection, json_object, simulator

SECRET = "sandbox-annex-shared-secret-0123456789"
# What the demo client's connection holds (seed_demo): the simulator accepts these and nothing else.
DEMO_SECRETS = {"api_secret": SECRET, "loyalty_token": "sandbox-loyalty-token"}
DEMO_SETTINGS = {"jwt_subject": "demo@example.com"}
# The knobs the /sandbox/ page lists (path under this simulator, what it does).
CONTROLS = (
    (
        "_control",
        'POST JSON {"members": [{"id": "m-1", "email": "a@example.com", "optInStatus": "YES"}]}: adds loyalty '
        'members the simulator knows (for the demo and benches); {"repeats": "already_exists"} answers a repeated '
        'customId with AC1006 (409) instead of the original answer; {"lose_every_nth_points_answer": 10} applies '
        "every 10th credit or debit and drops the connection unanswered. Answers the counts (members, segments, "
        "points applied and received, answers lost).",
    ),
)


# The simulator's tier ladder: the highest tier whose threshold the available balance reaches.
TIERS: tuple[tuple[int, str], ...] = ((5000, "Gold"), (1000, "Silver"), (0, "Bronze"))
FIRST_SEGMENT_ID = 101
SEGMENT_TYPES = ("Current Data", "Past Data")


@dataclass
class State:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    points: dict[str, dict[str, Any]] = field(default_factory=dict)  # customId -> response
    segments: dict[int, dict[str, Any]] = field(default_factory=dict)  # segmentId -> the fields sent
    next_segment_id: int = FIRST_SEGMENT_ID
    # The next N points answers are lost after the points are applied (a gateway 504): "sent once" drills.
    lose_points_answers: int = 0
    # Every Nth applied points call loses its answer: the connection is dropped once the points are applied.
    lose_every: EveryNth = field(default_factory=EveryNth)
    # How a repeated customId is answered: "original" (the first answer again) or "already_exists" (AC1006, 409).
    repeats: str = "original"
    points_received: int = 0  # POST /points with a valid body, repeats included
    lost_points_answers: int = 0  # answers lost after the points were applied, both ways
    lock: threading.Lock = field(default_factory=threading.Lock)


state = State()


def tier_for(balance: int) -> str:
    return next(name for threshold, name in TIERS if balance >= threshold)


def error(code: str, message: str, status: int) -> JsonResponse:
    return JsonResponse({"errorCode": code, "errorMessage": message}, status=status)


def signature_problem(request: HttpRequest, identifier: str = "") -> JsonResponse | None:
    header = request.headers.get("Authorization", "")
    site = request.headers.get("X-AnnexCloud-Site", "")
    if not header.startswith("Bearer ") or not site:
        return error("AC1002", "Request Not Authorized", 401)
    try:
        claims = jwt.decode(header[7:], SECRET, algorithms=["HS256"], options={"require": ["exp", "hmac", "site_id"]})
    except jwt.PyJWTError:
        return error("AC1002", "Request Not Authorized", 401)
    payload = request.body.decode() if request.method in ("POST", "PATCH") else json.dumps(identifier)
    if claims["hmac"] != body_hmac(SECRET, payload) or str(claims["site_id"]) != site:
        return error("AC1002", "Request Not Authorized", 401)
    return None


# --- Users ---------------------------------------------------------------------------------------------------------


@simulator
def users(request: HttpRequest) -> JsonResponse:
    if (problem := signature_problem(request)) is not None:
        return problem
    body = json_object(request)
    if body is None or not body.get("id") or not body.get("email"):
        return error("AC1004", "Missing parameters: id, email", 400)
    with state.lock:
        if body["id"] in state.members:
            return error("AC1006", "User already exists", 409)
        state.members[body["id"]] = {"optInStatus": "YES", "status": "ACTIVE", **body}
    return JsonResponse(profile(state.members[body["id"]]))


def profile(member: dict[str, Any]) -> dict[str, Any]:
    """A member's profile as GET /users/{id} answers it: with the available balance and the tier it earns."""
    balance = int(member.get("availablePoints", 0))
    return {**member, "availablePoints": balance, "tier": member.get("tier") or tier_for(balance)}


@simulator
def user(request: HttpRequest, member_id: str) -> JsonResponse:
    if (problem := signature_problem(request, member_id)) is not None:
        return problem
    member = state.members.get(member_id)
    if member is None:
        # Annex Cloud sometimes answers "no data" with HTTP 200: the client must read the body.
        return error("AC1005", "No data found", 200)
    return JsonResponse(profile(member))


# --- Points --------------------------------------------------------------------------------------------------------


def points_problem(body: dict[str, Any] | None) -> JsonResponse | None:
    """Credits need an action id and a positive `credit`, debits a positive `debit`; `customId` makes it safe."""
    if body is None or any(not body.get(name) for name in ("id", "activity", "customId")):
        return error("AC1004", "Missing parameters: id, activity, customId", 400)
    activity = str(body["activity"]).lower()
    if activity not in ("credit", "debit") or (activity == "credit" and not body.get("actionId")):
        return error("AC1004", "Missing parameters: activity (CREDIT or DEBIT), actionId", 400)
    if not str(body.get(activity, "")).isdigit() or int(body[activity]) <= 0:
        return error("AC1004", f"Missing parameters: {activity} (a positive number of points)", 400)
    return None


def apply_points(member: dict[str, Any], body: dict[str, Any]) -> dict[str, Any] | JsonResponse:
    """Change the member's balance and answer as the Points API does, or refuse a debit beyond the balance."""
    activity = str(body["activity"]).lower()
    amount = int(body[activity])
    balance = int(member.get("availablePoints", 0))
    if activity == "debit" and amount > balance:
        # No code is published for this; Annex Cloud answers the generic AC1001 with its documented 404.
        return error("AC1001", f"Insufficient points: the member has {balance} available.", 404)
    member["availablePoints"] = balance + amount if activity == "credit" else balance - amount
    if activity == "credit":
        member["lifetimePoints"] = int(member.get("lifetimePoints", 0)) + amount
    answer = {
        **body,
        "updatedUserTier": tier_for(member["availablePoints"]),
        "updatedAvailablePoints": str(member["availablePoints"]),
        "updatedLifetimePoints": str(member.get("lifetimePoints", 0)),
    }
    return {**answer, "pointsAwarded": amount} if activity == "credit" else answer


@simulator
def points(request: HttpRequest) -> JsonResponse:
    if (problem := signature_problem(request)) is not None:
        return problem
    body = json_object(request)
    if (problem := points_problem(body)) is not None:
        return problem
    assert body is not None
    with state.lock:
        state.points_received += 1
        if body["customId"] in state.points:
            return repeated_points(body["customId"])
        member = state.members.get(body["id"])
        if member is None:
            return error("AC1005", "No data found", 404)
        answer = apply_points(member, body)
        if isinstance(answer, JsonResponse):
            return answer
        member["tier"] = answer["updatedUserTier"]
        state.points[body["customId"]] = answer
        lose_by_gateway = state.lose_points_answers > 0
        state.lose_points_answers -= int(lose_by_gateway)
        lose_by_drop = not lose_by_gateway and state.lose_every()
        state.lost_points_answers += int(lose_by_gateway or lose_by_drop)
    if lose_by_drop:
        # Closed unanswered; where the socket cannot be found (another server), the gateway's 504 loses it instead.
        drop_connection(request)
    if lose_by_gateway or lose_by_drop:
        return JsonResponse({"message": "Gateway Timeout"}, status=504)
    return JsonResponse(answer)


def repeated_points(custom_id: str) -> JsonResponse:
    """A customId already applied: nothing is applied twice. `retry: YES` may get the original answer again, or a
    strict Annex Cloud's "already exists" (AC1006, its documented 409)."""
    if state.repeats == "already_exists":
        return error("AC1006", f"Points with customId {custom_id} already exist", 409)
    return JsonResponse(state.points[custom_id])


# --- Segments ------------------------------------------------------------------------------------------------------


def segment_problem(body: dict[str, Any] | None, *, creating: bool) -> JsonResponse | None:
    """A strict Annex Cloud: name and type to create; a date, when sent, is a yyyy-mm-dd date (never "")."""
    if body is None:
        return error("AC1004", "Missing parameters: a JSON object", 400)
    if (creating or "name" in body) and not body.get("name"):
        return error("AC1004", "Missing parameters: name", 400)
    if (creating or "type" in body) and body.get("type") not in SEGMENT_TYPES:
        return error("AC1004", "Missing parameters: type (Current Data or Past Data)", 400)
    for name in ("fromDate", "toDate"):
        if name in body and not is_date(body[name]):
            return error("AC1004", f"Missing parameters: {name} (yyyy-mm-dd)", 400)
    return None


def is_date(value: Any) -> bool:
    try:
        date.fromisoformat(str(value))
    except ValueError:
        return False
    return len(str(value)) == 10


def segment_answer(segment_id: int, fields: dict[str, Any]) -> JsonResponse:
    """The documented output fields of a segment."""
    return JsonResponse(
        {
            "segmentId": segment_id,
            "segmentName": fields["name"],
            "segmentType": fields["type"],
            "segmentFromDate": f"{fields['fromDate']}T00:00:00+0000" if fields.get("fromDate") else "",
            "segmentToDate": f"{fields['toDate']}T23:59:00+0000" if fields.get("toDate") else "",
            "member": fields.get("member", ""),
            "status": fields.get("status", "ACTIVE"),
            "externalId": fields.get("externalId", ""),
            "externalName": fields.get("externalName", ""),
        }
    )


@simulator
def segment(request: HttpRequest) -> JsonResponse:
    if (problem := signature_problem(request)) is not None:
        return problem
    body = json_object(request)
    if (problem := segment_problem(body, creating=True)) is not None:
        return problem
    assert body is not None
    with state.lock:
        segment_id = state.next_segment_id
        state.next_segment_id += 1
        state.segments[segment_id] = body
    return segment_answer(segment_id, body)


@simulator
def segment_by_id(request: HttpRequest, segment_id: int) -> JsonResponse:
    """GET reads a segment; PATCH updates the fields it is sent (the others are kept)."""
    if request.method not in ("GET", "PATCH"):
        return error("AC1001", "Oops! Something went wrong.", 404)
    if (problem := signature_problem(request, str(segment_id))) is not None:
        return problem
    body = json_object(request) if request.method == "PATCH" else {}
    if (problem := segment_problem(body, creating=False)) is not None:
        return problem
    with state.lock:
        if segment_id not in state.segments:
            return error("AC1005", "No data found", 404)
        fields = state.segments[segment_id] = {**state.segments[segment_id], **(body or {})}
    return segment_answer(segment_id, fields)


@csrf_exempt
def control(request: HttpRequest) -> JsonResponse:
    """POST {"members": [{"id": ..., "email": ..., "optInStatus": "YES", ...}]} adds loyalty members (demo, benches);
    {"lose_points_answers": N} loses the next N points answers after applying them (a gateway 504);
    {"lose_every_nth_points_answer": N} drops the connection after every Nth applied points call (0: never);
    {"repeats": "already_exists" | "original"} says how a repeated customId is answered."""
    body = json_object(request) or {}
    with state.lock:
        state.lose_points_answers = int(body.get("lose_points_answers", state.lose_points_answers))
        if "lose_every_nth_points_answer" in body:
            state.lose_every.every = int(body["lose_every_nth_points_answer"])
        if body.get("repeats") in ("original", "already_exists"):
            state.repeats = str(body["repeats"])
        for member in body.get("members") or []:
            if isinstance(member, dict) and member.get("id"):
                state.members[str(member["id"])] = {"optInStatus": "YES", "status": "ACTIVE", **member}
        return JsonResponse(
            {
                "members": len(state.members),
                "segments": len(state.segments),
                "points": len(state.points),
                "points_received": state.points_received,
                "lost_points_answers": state.lost_points_answers,
                "repeats": state.repeats,
            }
        )


urlpatterns = [
    path("_control", control),
    path("users", users),
    path("users/<path:member_id>", user),
    path("points", points),
    path("segment", segment),
    path("segment/<int:segment_id>", segment_by_id),
]
