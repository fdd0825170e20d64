"""Attentive in the client API: subscribe, unsubscribe and check the eligibility of one member
(`POST /api/members/{id}/subscribe/` and so on), answering with the flow's outcome. Unsubscribe takes the channels
to leave: `{"channels": ["sms"]}` (the default, also with no body), `["email"]` or `["sms", "email"]`."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.api_shared import NamesItsChanges, OutcomeSerializer, outcome_response
from integrations.attentive import flows as attentive
from integrations.tenancy import scope_to_clients
from members.models import Member


class UnsubscribeSerializer(serializers.Serializer):
    channels = serializers.ListField(
        child=serializers.ChoiceField(choices=sorted(attentive.ATTENTIVE_CHANNELS)),
        allow_empty=False,
        required=False,
        default=[attentive.SMS],
        help_text='Which channels to leave at Attentive: "sms", "email" or both. Default: ["sms"] (e-mail stays).',
    )


class AttentiveMemberViewSet(NamesItsChanges, viewsets.GenericViewSet):
    """Attentive actions on a member of the caller's clients."""

    serializer_class = OutcomeSerializer

    def get_queryset(self) -> QuerySet[Member]:
        return scope_to_clients(Member.objects.select_related("client"), self.request.user)

    @extend_schema(request=None, responses=OutcomeSerializer)
    @action(detail=True, methods=["post"])
    def subscribe(self, request: Request, pk: str | None = None) -> Response:
        return outcome_response(attentive.subscribe, self.get_object())

    @extend_schema(request=UnsubscribeSerializer, responses=OutcomeSerializer)
    @action(detail=True, methods=["post"])
    def unsubscribe(self, request: Request, pk: str | None = None) -> Response:
        member = self.get_object()
        choice = UnsubscribeSerializer(data=request.data)
        choice.is_valid(raise_exception=True)
        channels = choice.validated_data["channels"]
        return outcome_response(lambda chosen: attentive.unsubscribe(chosen, channels), member)

    @extend_schema(request=None, responses=OutcomeSerializer)
    @action(detail=True, methods=["post"])
    def eligibility(self, request: Request, pk: str | None = None) -> Response:
        return outcome_response(attentive.check_eligibility, self.get_object())


# (URL prefix, viewset, basename) registered on the client API's router.
ROUTES = [("members", AttentiveMemberViewSet, "member-attentive")]
