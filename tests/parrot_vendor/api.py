"""Parrot's HTTP API: a key in `X-Api-Key`, members put by email, squawks read. HTTP only: no ORM here."""

from __future__ import annotations

from typing import Any, ClassVar

from integrations.http import VendorAPI


class ParrotAPI(VendorAPI):
    vendor: ClassVar[str] = "parrot"

    def __init__(self, base_url: str, *, api_key: str, **kwargs: Any) -> None:
        super().__init__(base_url, **kwargs)  # the connection's secrets are redacted by api_for
        self.api_key = api_key

    def auth_headers(self) -> dict[str, str]:
        return {"X-Api-Key": self.api_key}

    def whoami(self) -> dict[str, Any]:
        """A read that changes nothing: the account the key belongs to."""
        return self.request("GET", "/v1/me").json()

    def put_member(self, email: str, fields: dict[str, Any]) -> dict[str, Any]:
        """Create or replace the member Parrot knows by this email; answers what Parrot now holds."""
        return self.request("PUT", f"/v1/members/{self.segment(email)}", json_body=fields).json()

    def squawks(self) -> list[dict[str, Any]]:
        return self.request("GET", "/v1/squawks").json()["squawks"]
