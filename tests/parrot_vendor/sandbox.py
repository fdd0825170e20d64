"""Parrot's simulator: the account, members put by email, and squawks to pull, behind an `X-Api-Key`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from integrations.sandbox.base import simulator

API_KEY = "parrot-sandbox-key-0123"
DEMO_SECRETS = {"api_key": API_KEY}


@dataclass
class ParrotState:
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    squawks: list[dict[str, str]] = field(default_factory=lambda: [{"words": "Pretty bird"}, {"words": "Hello"}])


state = ParrotState()


def refused(request: HttpRequest) -> HttpResponse | None:
    if request.headers.get("X-Api-Key") != API_KEY:
        return JsonResponse({"error": "unknown API key"}, status=401)
    return None


@simulator
def me(request: HttpRequest) -> HttpResponse:
    return refused(request) or JsonResponse({"account": "Polly"})


@simulator
def member(request: HttpRequest, email: str) -> HttpResponse:
    if answer := refused(request):
        return answer
    if request.method != "PUT":
        return JsonResponse(
            state.members.get(email) or {"error": "no such member"}, status=200 if email in state.members else 404
        )
    state.members[email] = {**json.loads(request.body), "email": email}
    return JsonResponse(state.members[email])


@simulator
def squawks(request: HttpRequest) -> HttpResponse:
    return refused(request) or JsonResponse({"squawks": state.squawks})


urlpatterns = [
    path("v1/me", me),
    path("v1/members/<str:email>", member),
    path("v1/squawks", squawks),
]
