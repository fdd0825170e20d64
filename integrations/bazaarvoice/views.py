"""Bazaarvoice in the client API: `GET /api/reviews/` lists the caller's clients' reviews with what became of each
(filters: `outcome`, `moderated_after`, `moderated_before`). Read-only; the pull and the awards are the portal's."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils.dateparse import parse_datetime
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, viewsets
from rest_framework.exceptions import ValidationError

from integrations.bazaarvoice.models import Review
from integrations.models import Client
from integrations.tenancy import scope_to_clients
from members.models import Member


class ReviewSerializer(serializers.ModelSerializer):
    client: serializers.SlugRelatedField[Client] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    member: serializers.PrimaryKeyRelatedField[Member] = serializers.PrimaryKeyRelatedField(read_only=True)
    reviewer = serializers.CharField(source="masked_email", read_only=True)
    outcome_label = serializers.CharField(source="get_outcome_display", read_only=True)

    class Meta:
        model = Review
        fields = [
            "id",
            "client",
            "review_id",
            "product_id",
            "rating",
            "ratings_only",
            "moderated_at",
            "reviewer",
            "member",
            "outcome",
            "outcome_label",
            "points",
            "detail",
            "annex_cloud_answer",
            "reversed_at",
            "reversal_reason",
        ]


def moment_or_none(value: str) -> datetime | None:
    try:
        return parse_datetime(value)
    except ValueError:  # well-formed but impossible, e.g. month 13
        return None


@extend_schema(
    parameters=[
        OpenApiParameter(
            "outcome",
            description="awarded, not_member, not_eligible, not_counted, undecryptable, failed, reversed or pending",
        ),
        OpenApiParameter("moderated_after", description="ISO 8601 date-time"),
        OpenApiParameter("moderated_before", description="ISO 8601 date-time"),
    ]
)
class ReviewViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ReviewSerializer

    def get_queryset(self) -> QuerySet[Review]:
        reviews = scope_to_clients(
            Review.objects.select_related("client").order_by("-moderated_at", "-pk"), self.request.user
        )
        return self.filtered(reviews)

    def filtered(self, reviews: QuerySet[Review]) -> QuerySet[Review]:
        params = self.request.query_params
        if outcome := params.get("outcome"):
            if outcome not in Review.Outcome.values:
                raise ValidationError({"outcome": f"Must be one of: {', '.join(Review.Outcome.values)}."})
            reviews = reviews.filter(outcome=outcome)
        for name, lookup in (("moderated_after", "moderated_at__gte"), ("moderated_before", "moderated_at__lt")):
            if value := params.get(name):
                moment = moment_or_none(value)
                if moment is None or moment.tzinfo is None:
                    raise ValidationError(
                        {name: "Must be an ISO 8601 date-time with a time zone, e.g. 2026-11-01T00:00:00Z."}
                    )
                reviews = reviews.filter(**{lookup: moment})
        return reviews


ROUTES = [("reviews", ReviewViewSet, "review")]
