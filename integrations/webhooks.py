"""The DRF view that receives vendor callbacks, one URL per receiving vendor. Thin: find the connection by the
URL's token, let the vendor's handler check its per-connection guards, hand the raw delivery to `inbound.receive`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, cast

from django.conf import settings
from django.db import DatabaseError, InterfaceError, transaction
from django.http import Http404
from django.urls import URLPattern, clear_url_caches, path
from django.utils.decorators import method_decorator
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.permissions import AllowAny
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations import inbound
from integrations.alerts import alert
from integrations.vendors import VENDORS, registry_changed

DRAIN_CHUNK_BYTES = 64 * 1024


class JsonOnly(BaseContentNegotiation):
    """Vendors take JSON answers whatever they send in Accept: no negotiation to spend time on per delivery."""

    def select_parser(self, request: Request, parsers: Iterable[BaseParser]) -> BaseParser | None:
        return next(iter(parsers), None)

    def select_renderer(
        self, request: Request, renderers: Iterable[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        renderer = next(iter(renderers))
        return renderer, renderer.media_type


# Not atomic: the raw delivery row must survive whatever happens after it is stored (as dj-stripe does).
@method_decorator(transaction.non_atomic_requests, name="dispatch")
class CallbackView(APIView):
    """Callbacks for one connection of `vendor`, addressed by the connection's unguessable token."""

    vendor = ""
    # The request is checked by its URL token and the connection's own guards; nothing else runs on it.
    authentication_classes: list[type] = []
    permission_classes = [AllowAny]
    throttle_classes: list[type] = []
    parser_classes: list[type] = []  # the raw body is what is stored
    renderer_classes = [JSONRenderer]
    content_negotiation_class = JsonOnly

    @extend_schema(
        request={"application/json": dict},
        responses={
            200: OpenApiResponse(description="accepted or duplicate"),
            400: OpenApiResponse(description="bad delivery"),
            401: OpenApiResponse(description="HTTP Basic required"),
            403: OpenApiResponse(description="address not allowed"),
            413: OpenApiResponse(description="body larger than WEBHOOK_MAX_BODY_BYTES (kept truncated)"),
            503: OpenApiResponse(description="the delivery could not be stored; send it again after Retry-After"),
        },
    )
    def post(self, request: Request, token: str) -> Response:
        try:
            response = self.receive(request, token)
        except (DatabaseError, InterfaceError):
            # Nothing could be stored: ask the vendor to send it again later, as every vendor does on a 503. A
            # connection the server closed under Django surfaces as InterfaceError, which is no DatabaseError.
            request_body_drained(request)
            response = Response(
                {"detail": "The portal cannot store deliveries right now; send this one again later."},
                status=503,
                headers={"Retry-After": str(settings.WEBHOOK_RETRY_AFTER_SECONDS)},
            )
        if response.status_code >= 500:
            alert_callbacks_refused(self.vendor, response)
        return response

    def receive(self, request: Request, token: str) -> Response:
        # From memory for a few seconds; without secrets, which load only if a guard needs one.
        connection = inbound.connection_for_inbound_token(self.vendor, token)
        if connection is None:
            raise Http404("No such callback URL.")
        handler = inbound.handler_for(self.vendor)
        if (refusal := handler.refusal(connection, request)) is not None:
            return Response({"detail": refusal.detail}, status=refusal.status, headers=refusal.headers)
        receipt = inbound.receive(
            connection,
            headers=dict(request.headers),
            body=bounded_body(request),
            remote_addr=inbound.client_address(request) or None,
        )
        return Response({"detail": receipt.detail}, status=receipt.status)


def alert_callbacks_refused(vendor: str, response: Response) -> None:
    """A 5xx makes the vendor send the delivery again later; a person should know it is happening (throttled)."""
    label = VENDORS[vendor].label
    alert(
        f"callbacks-5xx:{vendor}",
        f"{label} callbacks are being answered {response.status_code}",
        f"{response.data.get('detail', '')} {label} sends them again later; nothing is applied until the portal "
        "can store them.",
    )


def bounded_body(request: Request) -> bytes:
    """The body read as a stream, up to one byte past the limit: a huge delivery is kept truncated (and refused
    with a reason), never held whole nor answered with Django's generic 400. The rest is read and dropped, so the
    sender gets the answer instead of a connection reset."""
    stream = request.stream
    if stream is None:
        return b""
    body = stream.read(settings.WEBHOOK_MAX_BODY_BYTES + 1)
    request_body_drained(request)
    return body


def request_body_drained(request: Request) -> None:
    """Whatever of the body is still unread, read in chunks and dropped (bounded by the server's request size)."""
    stream = request.stream
    while stream is not None and stream.read(DRAIN_CHUNK_BYTES):
        pass


# The URLconf includes this very list; it is filled again in place whenever the registry changes.
CALLBACK_URLPATTERNS: list[URLPattern] = []


def callback_urlpatterns() -> list[URLPattern]:
    """`api/webhooks/<vendor>/<token>/` (named `<vendor>-callback`) for every vendor that has a webhooks module."""
    mount_callbacks()
    return CALLBACK_URLPATTERNS


def mount_callbacks(**kwargs: Any) -> None:
    patterns = []
    for key, spec in VENDORS.items():
        if spec.receives_callbacks:
            # A subclass per vendor, named after it; type() is typed as making a plain type, hence the cast.
            view_class = cast(
                "type[CallbackView]", type(f"{key.title()}CallbackView", (CallbackView,), {"vendor": key})
            )
            view: Any = view_class.as_view()
            patterns.append(path(f"webhooks/{key}/<str:token>/", view, name=f"{key}-callback"))
    CALLBACK_URLPATTERNS[:] = patterns
    clear_url_caches()


registry_changed.connect(mount_callbacks, dispatch_uid="integrations.webhooks.mount_callbacks")
