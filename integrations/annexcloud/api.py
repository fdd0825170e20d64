"""Annex Cloud Loyalty API v3, signed as its public JWT guide describes. HTTP only: no ORM here.

Every request carries `Authorization: Bearer <jwt>` and `X-AnnexCloud-Site`. The JWT (HS256, the site's shared
secret) holds `sub`, `exp`, `site_id` and `hmac`, where hmac = base64(HMAC-SHA256(secret, base64(payload))) and the
payload is the exact raw JSON body of a POST/PATCH, or for a GET the identifier as a JSON string literal.
Quirks: Annex Cloud's own connector sends `exp` in milliseconds (a bug; seconds here), and errors can arrive with
HTTP 200 as `{"errorCode": "AC10xx", "errorMessage": ...}`, so the body is always read.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any, Literal

import jwt
import requests

from integrations.http import AuthError, ExpectedAnswer, NotFound, Rejected, VendorAPI, VendorError

TOKEN_LIFETIME_SECONDS = 300
# "For example, the action ID for manual credit or debit is 100" (Points API).
MANUAL_CREDIT_ACTION_ID = "100"
Activity = Literal["credit", "debit"]


class AlreadyExists(Rejected):
    kind = "already_exists"
    default_hint = "Annex Cloud already has this record."


class PointsAlreadyApplied(AlreadyExists):
    """AC1006 in answer to POST /points: Annex Cloud already holds a points transaction with this `customId`, so
    it was applied by an earlier send (the portal's own: it makes the customIds). Not a refusal: see
    flows.settle_already_applied. `resent`: this very call had sent it before (an attempt whose answer was lost)."""

    kind = "already_applied"
    default_hint = "Annex Cloud applied this customId earlier; it is not applied again."

    def __init__(self, *args: Any, resent: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.resent = resent

    @classmethod
    def from_error(cls, error: VendorError, *, resent: bool) -> PointsAlreadyApplied:
        return cls(error.vendor, error.message, status=error.status, code=error.code, body=error.body, resent=resent)


class RequestFailed(Rejected):
    """AC1001, "Oops! Something went wrong.": Annex Cloud could not handle this request. Its error table documents it
    with HTTP 404, a request-level answer; it says nothing about the connection and repeating the same request
    would get the same answer, so it is neither retried nor counted against the connection."""

    kind = "request_failed"
    default_hint = "Annex Cloud could not handle this request; check the data it names, then try again."


# Annex Cloud's documented error codes, mapped by code whatever the HTTP status (the code is the contract; the
# status varies and is sometimes 200). Documented statuses: AC1001 404, AC1002 401, AC1004 400, AC1005 404/400,
# AC1006 409.
ERROR_CODES: dict[str, tuple[type[VendorError], str]] = {
    "AC1001": (RequestFailed, RequestFailed.default_hint),
    "AC1002": (AuthError, "Check the site id and the API shared secret of the Annex Cloud connection."),
    "AC1004": (Rejected, "A required parameter is missing from the request."),
    "AC1005": (NotFound, "Annex Cloud has no such record (for a member: not a loyalty member)."),
    "AC1006": (AlreadyExists, "Annex Cloud already has this record."),
}


# "No data" (AC1005): for a look-up of someone who is no loyalty member ("not a member") or of a segment deleted at
# Annex Cloud, an answer the caller handles, counted as "not found", not as a failed call. A 404 without AC1005 (a
# wrong URL) still fails.
NO_DATA_EXPECTED = ExpectedAnswer(NotFound, code="AC1005")


def partner_access_token(loyalty_token: str, site_id: str) -> str:
    """Annex Cloud's partner access token: base64 of a JSON array holding the loyalty token and the site id. The
    credential a partner (Attentive) uses to call back into Annex Cloud; PHP's json_encode has no spaces."""
    if not (loyalty_token and site_id):
        return ""
    return base64.b64encode(json.dumps([loyalty_token, site_id], separators=(",", ":")).encode()).decode()


def body_hmac(secret: str, payload: str) -> str:
    encoded_payload = base64.b64encode(payload.encode("utf-8"))
    return base64.b64encode(hmac.new(secret.encode(), encoded_payload, hashlib.sha256).digest()).decode()


def signed_token(secret: str, *, site_id: str, subject: str, payload: str, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "sub": subject,
        "exp": issued + TOKEN_LIFETIME_SECONDS,  # seconds, not milliseconds
        "site_id": site_id,
        "hmac": body_hmac(secret, payload),
    }
    return jwt.encode(claims, secret, algorithm="HS256")


class AnnexCloudAPI(VendorAPI):
    vendor = "Annex Cloud"

    def __init__(self, base_url: str, *, site_id: str, secret: str, subject: str = "", **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)
        self.site_id = site_id
        self.secret = secret
        self.subject = subject or site_id

    def signed(self, method: str, path: str, *, identifier: str = "", body: Any = None, **kwargs: Any) -> Any:
        payload = self.encode_json(body).decode() if body is not None else json.dumps(identifier)
        token = signed_token(self.secret, site_id=self.site_id, subject=self.subject, payload=payload)
        headers = {
            "Authorization": f"Bearer {token}",
            "X-AnnexCloud-Site": self.site_id,
            "Content-Type": "application/json",
        }
        return self.request_json(method, path, json_body=body, headers=headers, **kwargs)

    def error_for(self, response: requests.Response) -> VendorError | None:
        try:
            payload = response.json()
        except ValueError:
            payload = None
        code = payload.get("errorCode") if isinstance(payload, dict) else None
        if code:
            error_class, hint = ERROR_CODES.get(str(code), (Rejected, "Annex Cloud refused the request."))
            message = str(payload.get("errorMessage") or code)
            return error_class(self.vendor, message, status=response.status_code, code=str(code), hint=hint)
        return super().error_for(response)

    # The calls ------------------------------------------------------------------------------------------

    def get_member(self, member_id: str, *, expected: ExpectedAnswer | None = None) -> dict[str, Any]:
        """The member's profile; raises NotFound (AC1005) for someone who is no loyalty member. A caller that
        handles that as an answer (a look-up, the verify probe) passes `expected=NO_DATA_EXPECTED`."""
        # The id (often an e-mail) is escaped in the path; the signature covers it as it is.
        return self.signed("GET", f"/users/{self.segment(member_id)}", identifier=member_id, expected=expected)

    def change_points(
        self,
        member_id: str,
        points: int,
        *,
        activity: Activity,
        custom_id: str,
        action_id: str = "",
        reason: str = "",
        order_id: str = "",
    ) -> Any:
        """Credit or debit points once (Points API, "To Award or Deduct Custom Points").

        `customId` is unique per transaction and `retry: YES` lets Annex Cloud answer a repeat with the original
        result, so a retry after a timeout can never apply it twice: that is why this POST may be repeated. A
        strict Annex Cloud answers a repeat with AC1006 ("already exists", 409) instead: raised as
        PointsAlreadyApplied, saying whether this call had already sent it (its first answer lost). The
        optional `orderId` ties credits and debits of one order together and is left out when there is none."""
        if points <= 0:
            raise ValueError("points must be a positive whole number")
        body: dict[str, str] = {
            "id": member_id,
            "actionId": action_id or MANUAL_CREDIT_ACTION_ID,
            "activity": activity.upper(),
            activity: str(points),
            "reason": reason,
        }
        if order_id:
            body["orderId"] = order_id
        body |= {"customId": custom_id, "retry": "YES"}
        attempts: list[requests.PreparedRequest] = []  # every attempt of this call that left
        try:
            return self.signed("POST", "/points", body=body, safe_to_repeat=True, before_send=attempts.append)
        except AlreadyExists as exc:
            # An AC1006 to the second attempt or later answers our own earlier one.
            raise PointsAlreadyApplied.from_error(exc, resent=len(attempts) > 1) from exc

    def award_points(
        self, member_id: str, points: int, *, custom_id: str, reason: str = "", action_id: str = ""
    ) -> Any:
        return self.change_points(
            member_id, points, activity="credit", custom_id=custom_id, reason=reason, action_id=action_id
        )

    def create_segment(self, segment: dict[str, str]) -> dict[str, Any]:
        return self.signed("POST", "/segment", body=segment)

    def get_segment(self, segment_id: str) -> dict[str, Any]:
        return self.signed("GET", f"/segment/{self.segment(segment_id)}", identifier=segment_id)

    def update_segment(self, segment_id: str, segment: dict[str, str]) -> dict[str, Any]:
        """Update a pushed segment in place (PATCH /segment/{id}, the same body as creating it). Sending the same
        fields again leaves the segment as it was, so this PATCH may be repeated. A segment deleted at Annex Cloud
        answers AC1005, which the push expects (it creates the segment again)."""
        path = f"/segment/{self.segment(segment_id)}"
        return self.signed("PATCH", path, body=segment, safe_to_repeat=True, expected=NO_DATA_EXPECTED)
