"""SessionM's Core API (customer profiles, campaigns) and Connect API (offers, transactions). HTTP only: no ORM.

Quirks: the Core API names the app's API key in every path (`/priv/v1/apps/{api_key}/...`) besides using it as the
Basic-auth user, so the key is in every URL (redacted from call rows as a secret value). Connect wraps every request
in an envelope `{store_id, client_id, request_id, request_payload}` and answers `{status, payload, errors}`, with
HTTP 200 even when `status` says the request failed; a repeated `request_id` gets the original answer.
"""

from __future__ import annotations

import base64
import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

import requests

from integrations.http import NOT_FOUND_EXPECTED, ExpectedAnswer, NotFound, Rejected, VendorAPI, VendorError


class ExternalIdTaken(Rejected):
    """A create for an external id SessionM already holds (e.g. a retry after a lost answer): adopt that user."""

    kind = "external_id_taken"


class ConnectRejected(Rejected):
    """Connect answered `status` other than OK; its `errors` say why."""

    kind = "connect_rejected"
    default_hint = "Correct what SessionM named (the member's SessionM profile, the transaction's fields)."


@dataclass(frozen=True)
class ConnectIds:
    store_id: str
    client_id: str


def basic(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def user_payload(
    *, external_id: str, email: str, phone: str, first_name: str, last_name: str, opted_in: bool
) -> dict[str, Any]:
    """The Core API's user body: the portal's stable member key as external_id, contact fields and opt-in."""
    user: dict[str, Any] = {"external_id": external_id, "opted_in": opted_in}
    optional = {"email": email, "first_name": first_name, "last_name": last_name}
    user.update({key: value for key, value in optional.items() if value})
    if phone:
        user["phone_numbers"] = [{"phone_number": phone, "phone_type": "mobile"}]
    return {"user": user}


class SessionMAPI(VendorAPI):
    vendor = "SessionM"
    # Connect's send_transaction may name the caller's ids; they are not secret, but a token in a payload is.
    redact_json_fields = VendorAPI.redact_json_fields | frozenset({"auth_token"})

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str,
        api_secret: str,
        connect_key: str = "",
        connect_secret: str = "",
        connect_ids: ConnectIds | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(base_url, **kwargs)
        self.api_key = api_key
        self._core_auth = basic(api_key, api_secret)
        self._connect_auth = basic(connect_key or api_key, connect_secret or api_secret)
        self.connect_ids = connect_ids
        # The credentials also travel base64-encoded: an echo of that form is redacted too.
        self.redactor.values = (*self.redactor.values, self._core_auth, self._connect_auth)

    def auth_headers(self) -> dict[str, str]:
        return {"Authorization": f"Basic {self._core_auth}"}

    def error_for(self, response: requests.Response) -> VendorError | None:
        error = super().error_for(response)
        if error is None and "/api/2.0/" in (response.request.url or ""):
            return self._connect_error(response)
        if isinstance(error, Rejected) and response.status_code in (409, 422) and self._says_taken(response):
            return ExternalIdTaken(self.vendor, error.message, status=response.status_code, body=error.body)
        if isinstance(error, Rejected) and not error.code:
            error.code = self._error_code(response)  # e.g. a 404's "user_not_found", which callers tell apart
        return error

    def error_message(self, response: requests.Response) -> str:
        """Core answers errors as {"status": "error", "errors": {"code": ..., "message": ...}}."""
        try:
            payload = response.json()
        except ValueError:
            return response.text[:300].strip()
        errors = payload.get("errors") if isinstance(payload, dict) else None
        if isinstance(errors, dict):
            return str(errors.get("message") or errors.get("code") or errors)
        if isinstance(errors, list) and errors:
            return "; ".join(str(e.get("message", e) if isinstance(e, dict) else e) for e in errors)
        return super().error_message(response)

    def _says_taken(self, response: requests.Response) -> bool:
        return self._error_code(response) == "external_id_taken"

    @staticmethod
    def _error_code(response: requests.Response) -> str:
        """The code of SessionM's error body {"errors": {"code": ...}} ("" when there is none)."""
        try:
            errors = response.json().get("errors") or {}
        except (ValueError, AttributeError):
            return ""
        return str(errors.get("code") or "") if isinstance(errors, dict) else ""

    def _connect_error(self, response: requests.Response) -> VendorError | None:
        try:
            body = response.json()
        except ValueError:
            return Rejected(self.vendor, "answered with a body that is not JSON", status=response.status_code)
        if not isinstance(body, dict) or str(body.get("status", "")).upper() == "OK":
            return None
        message = self.error_message(response) or "request refused"
        code = self._error_code(response)
        return ConnectRejected(
            self.vendor, message, status=response.status_code, code=code, body=self.redactor.body(response.content)
        )

    # --- Core API: customer profiles and campaigns ----------------------------------------------------------------

    def _users(self, suffix: str = "") -> str:
        return f"/priv/v1/apps/{self.segment(self.api_key)}/users{suffix}"

    def create_user(self, payload: dict[str, Any]) -> dict[str, Any]:
        """POST a new profile; returns SessionM's user (with its `id`)."""
        return self._user(self.request_json("POST", self._users(), json_body=payload))

    def update_user(self, user_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        return self._user(self.request_json("PUT", self._users(f"/{self.segment(user_id)}"), json_body=payload))

    def user_by_external_id(self, external_id: str) -> dict[str, Any] | None:
        path = f"/priv/v1/apps/{self.segment(self.api_key)}/external/users/{self.segment(external_id)}"
        try:
            return self._user(self.request_json("GET", path, expected=NOT_FOUND_EXPECTED))
        except NotFound:
            return None

    def forget_user(self, user_id: str) -> None:
        """Remove the profile (a member deleted on request). A user SessionM no longer has is already forgotten."""
        try:
            self.request("DELETE", self._users(f"/{self.segment(user_id)}"), expected=NOT_FOUND_EXPECTED)
        except NotFound:
            return

    def campaigns(
        self, *, user_id: str = "", external_id: str = "", expected: ExpectedAnswer | None = None
    ) -> list[dict[str, Any]]:
        """The campaigns the user is eligible for, by SessionM user id or by the portal's external id."""
        if user_id:
            path = self._users(f"/{self.segment(user_id)}/campaigns")
        else:
            path = f"/priv/v1/apps/{self.segment(self.api_key)}/external/users/{self.segment(external_id)}/campaigns"
        body = self.request_json("GET", path, expected=expected) or {}
        campaigns = body.get("campaigns") if isinstance(body, dict) else None
        return [c for c in campaigns or [] if isinstance(c, dict)]

    def credentials_work(self) -> bool:
        """The campaigns of an external id that cannot exist (a read): 404 proves the key and secret, 401 raises."""
        with contextlib.suppress(NotFound):
            self.campaigns(external_id=f"portal-verify-{uuid.uuid4().hex}", expected=NOT_FOUND_EXPECTED)
        return True

    @staticmethod
    def _user(body: Any) -> dict[str, Any]:
        user = body.get("user") if isinstance(body, dict) else None
        return user if isinstance(user, dict) else {}

    # --- Connect API: offers and transactions ---------------------------------------------------------------------

    def _connect(
        self, path: str, request_id: str, payload: dict[str, Any], *, expected: ExpectedAnswer | None = None
    ) -> dict[str, Any]:
        """One Connect call in its envelope; Connect answers a repeated request_id with the original answer, so the
        call is safe to repeat with the same request_id."""
        if self.connect_ids is None:
            raise Rejected(self.vendor, "the connection has no Connect store_id and client_id")
        envelope = {
            "store_id": self.connect_ids.store_id,
            "client_id": self.connect_ids.client_id,
            "request_id": request_id,
            "request_payload": payload,
        }
        body = self.request_json(
            "POST",
            path,
            json_body=envelope,
            headers={"Authorization": f"Basic {self._connect_auth}"},
            safe_to_repeat=True,
            expected=expected,
        )
        return body if isinstance(body, dict) else {}

    def get_user_offers(self, user_id: str, *, expected: ExpectedAnswer | None = None) -> list[dict[str, Any]]:
        """The offers in the user's wallet (a read: a fresh request_id each time). `expected`: a refusal the caller
        handles as its answer (the verify probe's unknown user)."""
        path, request_id = "/api/2.0/offers/get_user_offers", uuid.uuid4().hex
        body = self._connect(path, request_id, {"user_id": user_id}, expected=expected)
        payload = body.get("payload") or {}
        offers = payload.get("user_offers") if isinstance(payload, dict) else None
        return [o for o in offers or [] if isinstance(o, dict) and o.get("id")]

    def send_transaction(self, request_id: str, payload: dict[str, Any]) -> dict[str, Any]:
        """Relay a transaction; `request_id` is the caller's transaction id, SessionM's idempotency key."""
        return self._connect("/api/2.0/send_transaction", request_id, payload)
