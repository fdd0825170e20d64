"""Vibes person API (Vibes Mobile Engagement Platform, API version 2). HTTP only: no ORM here.

Quirks: without `X-API-Version: 2` Vibes speaks version 1, which rejects E.164 MDNs. An add with an MDN that already
belongs to a person is merged into that person (200, not 201). An update can null an MDN but never change it (409).
"""

from __future__ import annotations

import base64
import contextlib
import re
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from integrations.http import NOT_FOUND_EXPECTED, NotFound, Rejected, VendorAPI, VendorError

# What a Vibes company key is made of. The key picks the path every person call (with the Basic credentials) goes to,
# so anything else is refused: when entered (the connection's settings form) and again before a call, for a key
# stored before this rule.
COMPANY_KEY = re.compile(r"[A-Za-z0-9_-]+")
COMPANY_KEY_RULE = "letters, digits, '_' and '-' only"


class MdnConflict(Rejected):
    """409 from Vibes. On an update it means what Vibes documents: "MDN cannot be changed" — a person's mobile
    number can be removed (nulled) but never replaced. On an add: the number belongs to another person."""

    kind = "mdn_conflict"
    default_hint = (
        "Vibes never changes a person's mobile number: remove the number in Vibes (or the person) first, or correct "
        "the number in the portal."
    )


class MdnCannotChange(MdnConflict):
    """An update that would replace the person's mobile number."""


class MdnTaken(MdnConflict):
    """An add whose mobile number is another person's."""

    default_hint = "Another Vibes person has this number: merge or fix the persons in Vibes, or correct it here."


class BadCompanyKey(Rejected):
    """The connection's company key is not one (see COMPANY_KEY): no call is made with it."""

    kind = "bad_company_key"
    default_hint = "A site admin corrects the Vibes company key in the connection's settings, then verifies it."


class Unprocessable(Rejected):
    kind = "unprocessable"
    default_hint = "Vibes could not accept the person's data: correct the field it names."


@dataclass(frozen=True)
class PersonResult:
    person_id: str
    created: bool
    body: dict[str, Any]


def person_payload(external_id: str, mdn: str, custom_fields: dict[str, str]) -> dict[str, Any]:
    """The person body of Vibes' API version 2: external_person_id, mobile_phone.mdn in E.164, custom_fields."""
    payload: dict[str, Any] = {"external_person_id": external_id, "custom_fields": custom_fields}
    if mdn:
        payload["mobile_phone"] = {"mdn": mdn}
    return payload


class VibesAPI(VendorAPI):
    vendor = "Vibes"

    def __init__(self, base_url: str, *, company_key: str, username: str, password: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.company_key = company_key
        credentials = base64.b64encode(f"{username}:{password}".encode()).decode()
        self._authorization = f"Basic {credentials}"
        # The credentials also travel base64-encoded: an echo of that form is redacted too.
        self.redactor.values = (*self.redactor.values, credentials)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": self._authorization, "X-API-Version": "2"}

    def error_for(self, response: requests.Response) -> VendorError | None:
        message = self.error_message(response) or response.reason or ""
        if response.status_code == 409:
            # Vibes answers 409 with no body; its documentation names the meaning per call.
            if response.request.method == "PUT":
                return MdnCannotChange(self.vendor, "MDN cannot be changed", status=409)
            return MdnTaken(self.vendor, "the mobile number belongs to another person", status=409)
        if response.status_code == 422:
            return Unprocessable(self.vendor, message or "unprocessable entity", status=422)
        return super().error_for(response)

    def _persons(self, suffix: str = "") -> str:
        return f"/companies/{self._company_segment()}/mobiledb/persons/{suffix}"

    def _company_segment(self) -> str:
        if not COMPANY_KEY.fullmatch(self.company_key):
            raise BadCompanyKey(self.vendor, f"the company key is not a Vibes company key ({COMPANY_KEY_RULE})")
        return self.segment(self.company_key)

    def add_person(self, payload: dict[str, Any]) -> PersonResult:
        """201 created, or 200 merged into the person that already has this MDN."""
        response = self.request("POST", self._persons(), json_body=payload)
        return self._result(response)

    # Updating, reading or unsubscribing a person Vibes does not know answers 404, which every caller handles (the
    # person is added, reported absent, has nothing left to remove): counted as "not found", not as failed.

    def update_by_external_id(self, external_id: str, payload: dict[str, Any]) -> PersonResult:
        """Update the person with this external id (NotFound: Vibes has none; the caller adds it)."""
        path = self._persons(f"external/{self.segment(external_id)}")
        return self._result(self.request("PUT", path, json_body=payload, expected=NOT_FOUND_EXPECTED))

    def update_by_person_id(self, person_id: str, payload: dict[str, Any]) -> PersonResult:
        """Update the person with this id (NotFound: Vibes has none; the caller adds it)."""
        path = self._persons(self.segment(person_id))
        return self._result(self.request("PUT", path, json_body=payload, expected=NOT_FOUND_EXPECTED))

    def unsubscribe_person(self, person_id: str, list_id: str) -> None:
        """Vibes' "Unsubscribe Person" from one subscription list (404: no such person or subscription)."""
        path = self._persons(f"{self.segment(person_id)}/subscriptions/{self.segment(list_id)}")
        self.request("DELETE", path, expected=NOT_FOUND_EXPECTED)

    def credentials_work(self) -> bool:
        """Update a person who cannot exist (a documented call): Vibes answers 404 "person not found" and changes
        nothing, which proves the company key and credentials; 401/403 raise AuthError."""
        probe = f"portal-verify-{uuid.uuid4().hex}"
        with contextlib.suppress(NotFound):
            path, body = self._persons(f"external/{probe}"), {"external_person_id": probe}
            self.request("PUT", path, json_body=body, expected=NOT_FOUND_EXPECTED)
        return True

    def get_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        """The person with this external id, or None."""
        try:
            path = self._persons(f"external/{self.segment(external_id)}")
            return self.request_json("GET", path, expected=NOT_FOUND_EXPECTED)
        except NotFound:
            return None

    @staticmethod
    def _result(response: requests.Response) -> PersonResult:
        body = response.json() if response.content else {}
        person_id = str(body.get("person_id") or body.get("id") or "")
        return PersonResult(person_id=person_id, created=response.status_code == 201, body=body)
