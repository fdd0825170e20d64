"""DRF views that receive vendor callbacks. Thin: find the connection by the URL's token, check the optional
per-connection guards, hand the raw delivery to the vendor's receive flow."""

from __future__ import annotations

import base64
import binascii

from django.db import transaction
from django.shortcuts import get_object_or_404
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.models import Connection
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

    authentication_classes: list[type] = []
    permission_classes = [AllowAny]

    @extend_schema(
        request={"application/json": dict},
        responses={
            200: OpenApiResponse(description="accepted or duplicate"),
            400: OpenApiResponse(description="bad delivery"),
        },
    )
    def post(self, request: Request, token: str) -> Response:
        connection = get_object_or_404(Connection.objects.select_related("client"), vendor="vibes", inbound_token=token)
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
