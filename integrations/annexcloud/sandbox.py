"""Annex Cloud Loyalty API v3 simulator: checks the JWT signature, the body HMAC and the site header exactly as
the portal's client must produce them, and answers with Annex Cloud's documented bodies and error codes.

Accepts the site secret `sandbox-annex-shared-secret-0123456789` for any site id. Members are those created
through POST /users plus the demo addresses; points are idempotent on `customId`.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import jwt
from django.http import HttpRequest, JsonResponse
from django.urls import path

from integrations.annexcloud.api import body_hmac
from integrations.sandbox.base import json_object, simulator

SECRET = "sandbox-annex-shared-secret-0123456789"


@dataclass
class State:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    points: dict[str, dict[str, Any]] = field(default_factory=dict)  # customId -> response
    segments: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


state = State()


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
    return JsonResponse(state.members[body["id"]])


@simulator
def user(request: HttpRequest, member_id: str) -> JsonResponse:
    if (problem := signature_problem(request, member_id)) is not None:
        return problem
    member = state.members.get(member_id)
    if member is None:
        # Annex Cloud sometimes answers "no data" with HTTP 200: the client must read the body.
        return error("AC1005", "No data found", 200)
    return JsonResponse(member)


@simulator
def points(request: HttpRequest) -> JsonResponse:
    if (problem := signature_problem(request)) is not None:
        return problem
    body = json_object(request)
    required = ("id", "activity", "customId")
    if body is None or any(not body.get(name) for name in required):
        return error("AC1004", "Missing parameters: id, activity, customId", 400)
    with state.lock:
        if body["customId"] in state.points:
            return JsonResponse(state.points[body["customId"]])
        member = state.members.get(body["id"])
        if member is None:
            return error("AC1005", "No data found", 404)
        change = int(body.get("credit") or 0) - int(body.get("debit") or 0)
        member["availablePoints"] = int(member.get("availablePoints", 0)) + change
        response = {**body, "pointsAwarded": change, "updatedAvailablePoints": str(member["availablePoints"])}
        state.points[body["customId"]] = response
    return JsonResponse(response)


@simulator
def segment(request: HttpRequest) -> JsonResponse:
    if (problem := signature_problem(request)) is not None:
        return problem
    body = json_object(request)
    if body is None or not body.get("name") or body.get("type") not in ("Current Data", "Past Data"):
        return error("AC1004", "Missing parameters: name, type (Current Data or Past Data)", 400)
    with state.lock:
        segment_id = 100 + len(state.segments) + 1
        state.segments.append(body)
    return JsonResponse(
        {
            "segmentId": segment_id,
            "segmentName": body["name"],
            "segmentType": body["type"],
            "segmentFromDate": f"{body.get('fromDate')}T00:00:00+0000" if body.get("fromDate") else "",
            "segmentToDate": f"{body.get('toDate')}T23:59:00+0000" if body.get("toDate") else "",
            "member": body.get("member", ""),
            "status": body.get("status", "ACTIVE"),
            "externalId": body.get("externalId", ""),
            "externalName": body.get("externalName", ""),
        }
    )


urlpatterns = [
    path("users", users),
    path("users/<str:member_id>", user),
    path("points", points),
    path("segment", segment),
]
