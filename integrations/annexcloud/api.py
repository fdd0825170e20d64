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
from typing import Any

import jwt
import requests

from integrations.http import AuthError, NotFound, Rejected, Unavailable, VendorAPI, VendorError

TOKEN_LIFETIME_SECONDS = 300
MANUAL_CREDIT_ACTION_ID = "100"


class AlreadyExists(Rejected):
    kind = "already_exists"
    default_hint = "Annex Cloud already has this record."


ERROR_CODES: dict[str, tuple[type[VendorError], str]] = {
    "AC1001": (Unavailable, "Annex Cloud failed to handle the request; try again later."),
    "AC1002": (AuthError, "Check the site id and the API shared secret of the Annex Cloud connection."),
    "AC1004": (Rejected, "A required parameter is missing from the request."),
    "AC1005": (NotFound, "Annex Cloud has no such record (for a member: not a loyalty member)."),
    "AC1006": (AlreadyExists, "Annex Cloud already has this record."),
}


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

    def get_member(self, member_id: str) -> dict[str, Any]:
        return self.signed("GET", f"/users/{member_id}", identifier=member_id)

    def award_points(
        self, member_id: str, points: int, *, custom_id: str, reason: str = "", action_id: str = ""
    ) -> Any:
        """Credit points once: `customId` is unique per transaction and `retry: YES` lets Annex Cloud answer a
        repeat with the original result, so a retry after a timeout cannot credit twice."""
        body = {
            "id": member_id,
            "actionId": action_id or MANUAL_CREDIT_ACTION_ID,
            "activity": "CREDIT",
            "credit": str(points),
            "reason": reason,
            "customId": custom_id,
            "retry": "YES",
        }
        return self.signed("POST", "/points", body=body, safe_to_repeat=True)

    def create_segment(self, segment: dict[str, str]) -> dict[str, Any]:
        return self.signed("POST", "/segment", body=segment)
