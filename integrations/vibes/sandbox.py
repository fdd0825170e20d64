"""Vibes simulator: Vibes' person API (version 2), and firing subscription callbacks at the portal.

Accepts HTTP Basic `vibes-sandbox-user` / `sandbox-vibes-password`. Without `X-API-Version: 2` it speaks version 1 and
rejects E.164 MDNs, as Vibes does. Status codes: 201 created, 200 merged or updated, 404 unknown person, 409 an
MDN belonging to another person (or an attempt to change one), 422 an MDN that is not a phone number.
Unsubscribe Person (`DELETE .../persons/{person id}/subscriptions/{list id}`) takes a person off a list it holds in
`state.list_subscriptions` (404 otherwise) and records the removal in `state.list_unsubscribes`.
"""

from __future__ import annotations

import base64
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path
from django.utils import timezone

from integrations.sandbox.base import json_object, simulator
from members.phones import is_e164

USERNAME, PASSWORD = "vibes-sandbox-user", "sandbox-vibes-password"
# What the demo client's connection holds (seed_demo).
DEMO_SECRETS = {"api_username": USERNAME, "api_password": PASSWORD}
DEMO_SETTINGS = {"company_key": "demo-company"}
# The knobs the /sandbox/ page lists (path under this simulator, what it does). Callbacks from "Vibes" to the portal
# are sent with `manage.py vibes_send_callback --client demo --member <id> --type subscription_added`.
CONTROLS = (
    (
        "companies/demo-company/mobiledb/persons/external/<external id>",
        "GET with the Basic credentials: the person the portal created or updated for a member (404 if none); "
        "callbacks to the portal are sent with `manage.py vibes_send_callback`.",
    ),
)


@dataclass
class State:
    persons: dict[str, dict[str, Any]] = field(default_factory=dict)  # person_id -> person
    # (person_id, list_id) of the persons on each subscription list, and the removals the portal asked for.
    list_subscriptions: set[tuple[str, str]] = field(default_factory=set)
    list_unsubscribes: list[tuple[str, str]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def by_mdn(self, mdn: str) -> dict[str, Any] | None:
        return next((p for p in self.persons.values() if (p.get("mobile_phone") or {}).get("mdn") == mdn), None)

    def by_external_id(self, external_id: str) -> dict[str, Any] | None:
        return next((p for p in self.persons.values() if p.get("external_person_id") == external_id), None)


state = State()


def authorised(request: HttpRequest) -> bool:
    expected = "Basic " + base64.b64encode(f"{USERNAME}:{PASSWORD}".encode()).decode()
    return request.headers.get("Authorization") == expected


def checked_body(request: HttpRequest) -> dict[str, Any] | HttpResponse:
    if not authorised(request):
        return JsonResponse({"message": "Unauthorized"}, status=401)
    body = json_object(request)
    if body is None:
        return JsonResponse({"message": "Body must be a JSON object"}, status=400)
    mdn = (body.get("mobile_phone") or {}).get("mdn")
    if mdn and request.headers.get("X-API-Version") != "2":
        return JsonResponse({"message": "API version 1 expects a 10-digit MDN; send X-API-Version: 2"}, status=422)
    if mdn and not is_e164(str(mdn)):
        return JsonResponse({"message": f"mobile_phone.mdn {mdn} is not a valid E.164 number"}, status=422)
    return body


@simulator
def persons(request: HttpRequest, company_key: str) -> HttpResponse:
    body = checked_body(request)
    if isinstance(body, HttpResponse):
        return body
    mdn = (body.get("mobile_phone") or {}).get("mdn")
    with state.lock:
        existing = state.by_mdn(mdn) if mdn else None
        if existing is not None:
            # Vibes' person API: an add with a known MDN is merged into that person.
            existing.update({k: v for k, v in body.items() if k != "person_id"})
            return JsonResponse(existing, status=200)
        person = {**body, "person_id": uuid.uuid4().hex[:12]}
        state.persons[person["person_id"]] = person
    return JsonResponse(person, status=201)


def update(request: HttpRequest, person: dict[str, Any] | None) -> HttpResponse:
    body = checked_body(request)
    if isinstance(body, HttpResponse):
        return body
    if person is None:
        return HttpResponse(status=404)  # Vibes answers an unknown person with 404 and no body
    new_mdn = (body.get("mobile_phone") or {}).get("mdn")
    old_mdn = (person.get("mobile_phone") or {}).get("mdn")
    with state.lock:
        holder = state.by_mdn(new_mdn) if new_mdn else None
        if (new_mdn and old_mdn and new_mdn != old_mdn) or (holder is not None and holder is not person):
            return HttpResponse(status=409)  # an MDN can only be nulled, never changed
        person.update({k: v for k, v in body.items() if k != "person_id"})
    return JsonResponse(body, status=200)


@simulator
def person_by_id(request: HttpRequest, company_key: str, person_id: str) -> HttpResponse:
    return update(request, state.persons.get(person_id))


@simulator
def person_by_external_id(request: HttpRequest, company_key: str, external_id: str) -> HttpResponse:
    if request.method == "GET":
        if not authorised(request):
            return JsonResponse({"message": "Unauthorized"}, status=401)
        person = state.by_external_id(external_id)
        return JsonResponse(person) if person else HttpResponse(status=404)
    return update(request, state.by_external_id(external_id))


@simulator
def person_list_subscription(request: HttpRequest, company_key: str, person_id: str, list_id: str) -> HttpResponse:
    """Unsubscribe Person (DELETE): the person leaves the list; 404 for an unknown person or list subscription."""
    if not authorised(request):
        return JsonResponse({"message": "Unauthorized"}, status=401)
    if request.method != "DELETE":
        return JsonResponse({"message": "Method not allowed"}, status=405)
    with state.lock:
        if (person_id, list_id) not in state.list_subscriptions:
            return HttpResponse(status=404)
        state.list_subscriptions.discard((person_id, list_id))
        state.list_unsubscribes.append((person_id, list_id))
    opted_out = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    return JsonResponse({"person_id": person_id, "subscription_list_id": list_id, "opt_out_date": opted_out})


urlpatterns = [
    path("companies/<str:company_key>/mobiledb/persons/", persons),
    path(
        "companies/<str:company_key>/mobiledb/persons/<str:person_id>/subscriptions/<str:list_id>",
        person_list_subscription,
    ),
    path("companies/<str:company_key>/mobiledb/persons/external/<path:external_id>", person_by_external_id),
    path("companies/<str:company_key>/mobiledb/persons/<str:person_id>", person_by_id),
]


def callback_payload(callback_type: str, *, person_id: str, external_id: str, list_id: str) -> dict[str, Any]:
    """A callback shaped as Vibes documents it, with a fresh event id and the current time."""
    now = timezone.now().strftime("%Y-%m-%dT%H:%M:%SZ")
    subscription: dict[str, Any] = {
        "person": {
            "id": person_id,
            "external_id": external_id,
            "url": f"/companies/:company_key/mobiledb/persons/{person_id}",
        },
        "subscription_list": {"id": list_id, "url": f"/companies/:company_key/mobiledb/subscription_lists/{list_id}"},
        "opt_in_date": now,
        "acquisition_campaign": {"id": "2342312", "url": "/companies/:company_key/campaigns/acquisition/2342312"},
    }
    if callback_type == "subscription_removed":
        subscription.update(opt_out_date=now, opt_out_reason="user_opt_out")
    return {
        "callback_id": uuid.uuid4().hex[:8],
        "event_id": uuid.uuid4().hex,
        "callback_type": callback_type,
        "event_type": callback_type,
        "event_date": now,
        "delivery_attempt": "1",
        "subscription": subscription,
    }
