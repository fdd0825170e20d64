"""Annex Cloud in the client API: credit or debit a member's points once per idempotency key
(`POST /api/members/{id}/points/`), answering with the stored transaction: 201 when it was applied now, 200 with the
same body when the key had already been applied."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.annexcloud import flows as annexcloud
from integrations.annexcloud.flows import MAX_POINTS, AnnexCloudNotReady, KeyReused, PointsResult
from integrations.api_shared import NamesItsChanges
from integrations.tenancy import scope_to_clients
from members.models import Member, PointsTransaction

MAX_KEY_LENGTH = 100
KEY_HEADER = "Idempotency-Key"


class PointsRequestSerializer(serializers.Serializer):
    activity = serializers.ChoiceField(choices=PointsTransaction.Activity.choices)
    points = serializers.IntegerField(min_value=1, max_value=MAX_POINTS)
    action_id = serializers.CharField(
        max_length=50,
        required=False,
        allow_blank=True,
        help_text="The Annex Cloud action id; blank: the connection's setting, else 100 (manual credit/debit).",
    )
    reason = serializers.CharField(max_length=200, required=False, allow_blank=True)
    order_id = serializers.CharField(max_length=100, required=False, allow_blank=True)
    idempotency_key = serializers.CharField(
        max_length=MAX_KEY_LENGTH,
        required=False,
        help_text=f"Unique per adjustment (or send the {KEY_HEADER} header); Annex Cloud's customId.",
    )
    force = serializers.BooleanField(
        required=False,
        default=False,
        help_text="Credit even a member Annex Cloud reported opted out, inactive or unknown (otherwise 409).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        header = self.context.get("header_key", "")
        key = attrs.get("idempotency_key") or header
        if not key:
            raise serializers.ValidationError({"idempotency_key": f"Send an idempotency_key or a {KEY_HEADER} header."})
        if header and key != header:
            raise serializers.ValidationError({"idempotency_key": f"It differs from the {KEY_HEADER} header."})
        if len(key) > MAX_KEY_LENGTH:
            raise serializers.ValidationError(
                {"idempotency_key": f"Ensure the key has no more than {MAX_KEY_LENGTH} characters."}
            )
        return {**attrs, "idempotency_key": key}


class PointsTransactionSerializer(serializers.ModelSerializer):
    member: serializers.PrimaryKeyRelatedField[Member] = serializers.PrimaryKeyRelatedField(read_only=True)
    idempotency_key = serializers.CharField(source="key", read_only=True)
    points_after = serializers.SerializerMethodField(help_text="The member's balance at Annex Cloud afterwards.")
    tier = serializers.SerializerMethodField(help_text="The member's tier at Annex Cloud afterwards.")

    class Meta:
        model = PointsTransaction
        fields = [
            "id", "member", "idempotency_key", "activity", "points", "action_id", "reason", "order_id",
            "status", "detail", "points_after", "tier", "created_at",
        ]  # fmt: skip

    def get_points_after(self, txn: PointsTransaction) -> int | None:
        return annexcloud.whole_number(txn.response.get("updatedAvailablePoints"))

    def get_tier(self, txn: PointsTransaction) -> str:
        return str(txn.response.get("updatedUserTier") or "")


def points_status(result: PointsResult) -> int:
    """201 applied now, 200 applied by an earlier call with the key, 422 refused by Annex Cloud, 502 not answered.

    A refusal (a non-member, a debit beyond the balance) is Annex Cloud's final answer to this request, not a
    failure of the gateway: a 5xx would invite the caller to retry what can never succeed."""
    txn_status = result.transaction.status
    if txn_status == PointsTransaction.Status.FAILED:
        return status.HTTP_422_UNPROCESSABLE_ENTITY
    if txn_status != PointsTransaction.Status.APPLIED:
        return status.HTTP_502_BAD_GATEWAY
    return status.HTTP_200_OK if result.repeated else status.HTTP_201_CREATED


class AnnexCloudMemberViewSet(NamesItsChanges, viewsets.GenericViewSet):
    """Annex Cloud actions on a member of the caller's clients."""

    serializer_class = PointsRequestSerializer

    def get_queryset(self) -> QuerySet[Member]:
        return scope_to_clients(Member.objects.select_related("client"), self.request.user)

    @extend_schema(
        request=PointsRequestSerializer,
        parameters=[OpenApiParameter(KEY_HEADER, str, OpenApiParameter.HEADER, required=False)],
        responses={
            201: OpenApiResponse(
                PointsTransactionSerializer,
                "Applied now: also when Annex Cloud's first answer was lost and it answered the repeat of the same "
                "customId with AC1006 (already exists) — applied once, never refused.",
            ),
            200: OpenApiResponse(PointsTransactionSerializer, "Already applied with this key: nothing sent again."),
            400: OpenApiResponse(description="Field errors."),
            409: OpenApiResponse(
                description="Annex Cloud is not set up for the member's client; or Annex Cloud reported the member "
                "opted out, inactive or unknown (`reasons`) and the credit was not sent: repeat with `force: true` "
                "to credit anyway."
            ),
            422: OpenApiResponse(
                PointsTransactionSerializer,
                "Annex Cloud refused it (status `failed`, see detail), or the key was already used for another "
                "adjustment (an `idempotency_key` error).",
            ),
            502: OpenApiResponse(
                PointsTransactionSerializer, "Annex Cloud did not answer (status `pending`): repeat with the same key."
            ),
        },
    )
    @action(detail=True, methods=["post"])
    def points(self, request: Request, pk: str | None = None) -> Response:
        member = self.get_object()
        given = PointsRequestSerializer(data=request.data, context={"header_key": request.headers.get(KEY_HEADER, "")})
        given.is_valid(raise_exception=True)
        data = given.validated_data
        reasons = annexcloud.reasons_to_confirm(member, data["activity"], data["idempotency_key"])
        if reasons and not data["force"]:
            return Response(unconfirmed_credit(member, reasons), status=status.HTTP_409_CONFLICT)
        try:
            result = annexcloud.adjust_points(
                member,
                activity=data["activity"],
                points=data["points"],
                key=data["idempotency_key"],
                action_id=data.get("action_id", ""),
                reason=data.get("reason", ""),
                order_id=data.get("order_id", ""),
            )
        except AnnexCloudNotReady as exc:
            return Response({"ok": False, "message": str(exc)}, status=status.HTTP_409_CONFLICT)
        except KeyReused as exc:
            # As the IETF Idempotency-Key draft says: a key reused with a different request is 422.
            return Response({"idempotency_key": [str(exc)]}, status=status.HTTP_422_UNPROCESSABLE_ENTITY)
        return Response(PointsTransactionSerializer(result.transaction).data, status=points_status(result))


def unconfirmed_credit(member: Member, reasons: list[str]) -> dict[str, Any]:
    message = (
        f'Not sent: {member} is {" and ".join(reasons)}. Send the same request with "force": true to credit them '
        "anyway."
    )
    return {"ok": False, "message": message, "reasons": reasons}


# (URL prefix, viewset, basename) registered on the client API's router.
ROUTES = [("members", AnnexCloudMemberViewSet, "member-annexcloud")]
