"""DRF views that receive vendor callbacks. Thin: find the connection by the URL's token, check the optional
per-connection guards, hand the raw delivery to the vendor's receive flow."""

from __future__ import annotations

import base64
import binascii

from django.db import transaction
from django.http import Http404
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.connections import connection_for_inbound_token
from integrations.vibes import callbacks


def basic_credentials(request: Request) -> tuple[str | None, str | None]:
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if not header.lower().startswith("basic "):
        return None, None
    try:
        username, _, password = base64.b64decode(header[6:]).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None, None
    return username, password


# Not atomic: the raw delivery row must survive whatever happens after it is stored.
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class VibesCallbackView(APIView):
    """Vibes subscription_added / subscription_removed callbacks for one connection."""

    # The request is checked by its URL token and the connection's own guards; nothing else runs on it.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []
    parser_classes: list[type] = []  # the raw body is what is stored
    renderer_classes = [JSONRenderer]

    @extend_schema(
        request={"application/json": dict},
        responses={
            200: OpenApiResponse(description="accepted or duplicate"),
            400: OpenApiResponse(description="bad delivery"),
        },
    )
    def post(self, request: Request, token: str) -> Response:
        # From memory for a few seconds; without secrets, which load only if Basic auth needs the password.
        connection = connection_for_inbound_token("vibes", token)
        if connection is None:
            raise Http404("No such callback URL.")
        remote_addr = request.META.get("REMOTE_ADDR", "")
        if not callbacks.address_allowed(connection, remote_addr):
            return Response(
                {"detail": f"{remote_addr} may not deliver callbacks here."}, status=status.HTTP_403_FORBIDDEN
            )
        if not callbacks.basic_auth_ok(connection, *basic_credentials(request)):
            return Response(
                {"detail": "Invalid or missing HTTP Basic credentials."},
                status=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Basic realm="vibes-callbacks"'},
            )
        receipt = callbacks.receive(
            connection, headers=dict(request.headers), body=request.body, remote_addr=remote_addr or None
        )
        return Response({"detail": receipt.detail}, status=receipt.status)
