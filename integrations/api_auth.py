"""How the API knows its caller: client API tokens (`Authorization: Token <key>`, a token acts for exactly one
client), or an admin log-in session that the two-factor rule accepts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.utils import timezone
from drf_spectacular.authentication import SessionScheme
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from integrations.models import ApiToken, hash_token
from portal.two_factor import API_SECOND_FACTOR_MISSING, lacks_second_factor


@dataclass(frozen=True)
class ApiClientUser:
    """The principal behind a client token: authenticated, scoped to one client, no admin permissions."""

    api_client_id: int
    token_name: str
    is_authenticated: bool = True
    is_active: bool = True
    is_staff: bool = False
    is_superuser: bool = False

    def has_perm(self, perm: str, obj: Any = None) -> bool:
        return False

    def __str__(self) -> str:
        return f"API token '{self.token_name}'"


class ClientTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Token"

    def authenticate(self, request: Request) -> tuple[ApiClientUser, ApiToken] | None:
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: use 'Authorization: Token <key>'.")
        key = header[1].decode("latin-1")
        token = (
            ApiToken.objects.select_related("client")
            .filter(key_hash=hash_token(key), revoked=False, client__active=True)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=timezone.now())
        return ApiClientUser(api_client_id=token.client_id, token_name=token.name), token

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """DRF's session authentication (CSRF checks included) under the admin's two-factor rule: a site admin's
    session opened without the one-time code is refused with 403 and says why. Not a 401: the caller is known, and
    a 401 would ask for a token (the first authenticator's challenge) when the fix is to log in with the code."""

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        authenticated = super().authenticate(request)
        if authenticated is not None and lacks_second_factor(authenticated[0]):
            raise exceptions.PermissionDenied(API_SECOND_FACTOR_MISSING)
        return authenticated


class ClientTokenScheme(OpenApiAuthenticationExtension):
    target_class = "integrations.api_auth.ClientTokenAuthentication"
    name = "clientToken"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": "A client API token created in the admin, sent as `Token <key>`.",
        }


class VerifiedSessionScheme(SessionScheme):
    """The schema names the session cookie as before (drf-spectacular matches the exact class only)."""

    target_class = "integrations.api_auth.VerifiedSessionAuthentication"
