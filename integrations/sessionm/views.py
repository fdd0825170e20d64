"""SessionM in the client API: relay a member's purchase to SessionM once per transaction id
(`POST /api/members/{id}/transactions/`), answering with the stored transaction: 201 when relayed now, 200 with the
same body for a repeated id (nothing sent again)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.api_shared import NamesItsChanges
from integrations.outcome import NotReady
from integrations.sessionm.models import SessionMTransaction
from integrations.sessionm.transactions import TransactionIdReused, TransactionResult, send_transaction
from integrations.tenancy import scope_to_clients
from members.models import Member


class ItemSerializer(serializers.Serializer):
    sku = serializers.CharField(max_length=100)
    name = serializers.CharField(max_length=200, required=False, allow_blank=True)
    quantity = serializers.IntegerField(min_value=1, max_value=10_000)
    price = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))


class TransactionRequestSerializer(serializers.Serializer):
    transaction_id = serializers.CharField(
        max_length=100, help_text="Your id of the purchase, unique per client: SessionM's request_id."
    )
    amount = serializers.DecimalField(max_digits=12, decimal_places=2, min_value=Decimal("0"))
    currency = serializers.RegexField(r"^[A-Z]{3}$", default="USD", help_text="ISO 4217, e.g. USD.")
    occurred_at = serializers.DateTimeField(required=False)
    store_number = serializers.CharField(max_length=50, required=False, allow_blank=True)
    items = ItemSerializer(many=True, required=False)

    def details(self) -> dict[str, Any]:
        """The transaction as sent to SessionM (JSON: amounts as strings, times in ISO 8601)."""
        data = self.validated_data
        details: dict[str, Any] = {"amount": str(data["amount"]), "currency": data["currency"]}
        if data.get("occurred_at"):
            details["occurred_at"] = data["occurred_at"].isoformat()
        if data.get("store_number"):
            details["store_number"] = data["store_number"]
        if data.get("items"):
            details["items"] = [{**item, "price": str(item["price"])} for item in data["items"]]
        return details


class TransactionSerializer(serializers.ModelSerializer):
    member: serializers.PrimaryKeyRelatedField[Member] = serializers.PrimaryKeyRelatedField(read_only=True)
    transaction_id = serializers.CharField(source="request_id", read_only=True)

    class Meta:
        model = SessionMTransaction
        fields = ["id", "member", "transaction_id", "status", "detail", "response", "created_at"]


def transaction_status(result: TransactionResult) -> int:
    """201 relayed now, 200 a repeat of a stored answer, 422 refused by SessionM, 502 no answer (repeat the id)."""
    txn_status = result.transaction.status
    if txn_status == SessionMTransaction.Status.REJECTED:
        return status.HTTP_422_UNPROCESSABLE_ENTITY
    if txn_status == SessionMTransaction.Status.PENDING:
        return status.HTTP_502_BAD_GATEWAY
    return status.HTTP_200_OK if result.repeated else status.HTTP_201_CREATED


class SessionMMemberViewSet(NamesItsChanges, viewsets.GenericViewSet):
    """SessionM actions on a member of the caller's clients."""

    serializer_class = TransactionRequestSerializer

    def get_queryset(self) -> QuerySet[Member]:
        return scope_to_clients(Member.objects.select_related("client"), self.request.user)

    @extend_schema(
        request=TransactionRequestSerializer,
        responses={
            201: TransactionSerializer,
            200: OpenApiResponse(TransactionSerializer, "Already relayed with this id: the stored answer."),
            400: OpenApiResponse(description="Field errors."),
            409: OpenApiResponse(description="SessionM is not set up for the client, or the member has no profile."),
            422: OpenApiResponse(TransactionSerializer, "SessionM refused it, or the id was used for another one."),
            502: OpenApiResponse(TransactionSerializer, "SessionM did not answer: repeat with the same id."),
        },
    )
    @action(detail=True, methods=["post"])
    def transactions(self, request: Request, pk: str | None = None) -> Response:
        member = self.get_object()
        given = TransactionRequestSerializer(data=request.data)
        given.is_valid(raise_exception=True)
        try:
            result = send_transaction(member, given.validated_data["transaction_id"], given.details())
        except NotReady as exc:
            return Response({"ok": False, "message": str(exc)}, status=status.HTTP_409_CONFLICT)
        except TransactionIdReused as exc:
            return Response({"transaction_id": [str(exc)]}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        return Response(TransactionSerializer(result.transaction).data, status=transaction_status(result))


# (URL prefix, viewset, basename) registered on the client API's router.
ROUTES = [("members", SessionMMemberViewSet, "member-sessionm")]
