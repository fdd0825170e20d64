"""What the client API's views share, kept out of the views modules so that no entry point imports another: the
client a call is for (`ClientField`, `resolve_client`: a token's own client unless a site admin names one) and how a
vendor's API action answers with a flow's outcome (`OutcomeSerializer`, `outcome_response`), and who a request's
changes to members are by (`NamesItsChanges`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from django.db.models import QuerySet
from django.http import HttpRequest
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from integrations.http import VendorError
from integrations.models import ApiToken, Client
from integrations.outcome import NotReady, Outcome
from integrations.tenancy import visible_clients
from members.changes import changed_by

T = TypeVar("T")


class NamesItsChanges(APIView):
    """A client API view whose requests change members as their caller, named on the members' timelines
    (members/changes.py): "the API, token “CRM”", or the person signed in to the browsable API."""

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # Named when a change is recorded: by then `self.request` is the authenticated request.
        with changed_by(lambda: api_caller(self.request)):
            return super().dispatch(request, *args, **kwargs)


def api_caller(request: Request) -> str:
    if isinstance(request.auth, ApiToken):
        return f"the API, token “{request.auth.name}”"
    return f"{request.user.get_username()} through the API"


class ClientField(serializers.SlugRelatedField):
    """The client, by slug, among those the caller may see; a token's own client when left out."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(slug_field="slug", required=False, **kwargs)

    def get_queryset(self) -> QuerySet[Client]:
        return visible_clients(self.context["request"].user)


def resolve_client(serializer: serializers.Serializer, attrs: dict[str, Any]) -> Client:
    if attrs.get("client"):
        return attrs["client"]
    clients = list(visible_clients(serializer.context["request"].user)[:2])
    if len(clients) != 1:
        raise serializers.ValidationError({"client": "Name the client (its slug)."})
    return clients[0]


class OutcomeSerializer(serializers.Serializer):
    ok = serializers.BooleanField()
    message = serializers.CharField()


def outcome_response(flow: Callable[[T], Outcome], subject: T) -> Response:
    """Run a flow for an API call: its outcome as 200, a missing set-up as 409, a vendor's failure as 502."""
    try:
        outcome = flow(subject)
    except NotReady as exc:
        return Response({"ok": False, "message": str(exc)}, status=status.HTTP_409_CONFLICT)
    except VendorError as exc:
        return Response({"ok": False, "message": exc.for_admin}, status=status.HTTP_502_BAD_GATEWAY)
    return Response({"ok": outcome.ok, "message": outcome.message})
