"""Attentive in the client API: subscribe, unsubscribe and check the eligibility of one member
(`POST /api/members/{id}/subscribe/` and so on), answering with the flow's outcome."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.attentive import flows as attentive
from integrations.tenancy import scope_to_clients
from integrations.views import OutcomeSerializer, outcome_response
from members.models import Member


class AttentiveMemberViewSet(viewsets.GenericViewSet):
    """Attentive actions on a member of the caller's clients."""

    serializer_class = OutcomeSerializer

    def get_queryset(self) -> QuerySet[Member]:
        return scope_to_clients(Member.objects.select_related("client"), self.request.user)

    @extend_schema(request=None, responses=OutcomeSerializer)
    @action(detail=True, methods=["post"])
    def subscribe(self, request: Request, pk: str | None = None) -> Response:
        return outcome_response(attentive.subscribe, self.get_object())

    @extend_schema(request=None, responses=OutcomeSerializer)
    @action(detail=True, methods=["post"])
    def unsubscribe(self, request: Request, pk: str | None = None) -> Response:
        return outcome_response(attentive.unsubscribe, self.get_object())

    @extend_schema(request=None, responses=OutcomeSerializer)
    @action(detail=True, methods=["post"])
    def eligibility(self, request: Request, pk: str | None = None) -> Response:
        return outcome_response(attentive.check_eligibility, self.get_object())


# (URL prefix, viewset, basename) registered on the client API's router.
ROUTES = [("members", AttentiveMemberViewSet, "member-attentive")]
