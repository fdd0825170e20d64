"""The client API of the loyalty side: members, loyalty events and segments (vendors add their own member actions,
e.g. integrations/attentive/views.py). A client token sees its own client only; site admins name the client."""

from __future__ import annotations

from typing import Any

from django.db import IntegrityError, transaction
from django.db.models import Count, QuerySet
from django.http import FileResponse, StreamingHttpResponse
from django.urls import reverse
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.api_shared import ClientField, NamesItsChanges, resolve_client
from integrations.models import Client
from integrations.tenancy import scope_to_clients
from members import flows, sync
from members import timeline as member_timeline
from members.exports import csv_download, should_export_in_background
from members.models import (
    EventType,
    LoyaltyEvent,
    Member,
    Segment,
    SegmentExport,
    annex_cloud_id_holder,
    annex_cloud_id_taken,
    event_data_errors,
)
from members.phones import InvalidPhone, to_e164
from members.segments import request_background_export

PHONE_TAKEN = "Another member of this client has this mobile number."


class SubscriptionStateSerializer(serializers.Serializer):
    vendor = serializers.CharField()
    type = serializers.CharField()
    channel = serializers.CharField()
    state = serializers.CharField()
    last_result = serializers.CharField()


class MemberSerializer(serializers.ModelSerializer):
    client = ClientField()
    subscriptions = SubscriptionStateSerializer(many=True, read_only=True)

    class Meta:
        model = Member
        fields = [
            "id", "client", "annex_cloud_id", "email", "phone", "first_name", "last_name", "zip_code",
            "opted_in", "loyalty_opted_in", "status", "tier", "points", "subscriptions",
        ]  # fmt: skip
        extra_kwargs = {
            "opted_in": {"help_text": "Consent to texts, from the client's own sign-up (never from Annex Cloud)."},
            "loyalty_opted_in": {"help_text": "Annex Cloud's optInStatus as last read (null: not read yet)."},
        }
        # Uniqueness is checked in validate() against the resolved client, with a message that says what clashed.
        validators: list[Any] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        client = self.instance.client if self.instance else resolve_client(self, attrs)
        attrs["client"] = client
        holder = annex_cloud_id_holder(client.pk, attrs.get("annex_cloud_id", ""), exclude_pk=self.instance_pk)
        if holder is not None:
            raise serializers.ValidationError({"annex_cloud_id": annex_cloud_id_taken(holder)})
        if attrs.get("phone"):
            try:
                attrs["phone"] = to_e164(attrs["phone"], client.default_region)
            except InvalidPhone as exc:
                raise serializers.ValidationError({"phone": str(exc)}) from exc
            clash = Member.objects.filter(client=client, phone=attrs["phone"])
            if self.instance:
                clash = clash.exclude(pk=self.instance.pk)
            if clash.exists():
                raise serializers.ValidationError({"phone": PHONE_TAKEN})
        return attrs

    @property
    def instance_pk(self) -> int | None:
        return self.instance.pk if self.instance else None

    def save(self, **kwargs: Any) -> Member:
        """Save and record the vendor work the change needs, in one transaction. Another request that took the
        number or the Annex Cloud id since validate() is a field error too, not a 500."""
        before = self.instance or Member()  # a new member starts from the model's defaults
        previous = {name: getattr(before, name) for name in self.validated_data if name != "client"}
        try:
            with transaction.atomic():
                member = super().save(**kwargs)
                changed = {name for name, value in previous.items() if getattr(member, name) != value}
                sync.record_change(member, changed, previous)
        except IntegrityError as exc:
            raise serializers.ValidationError(self.clash_after_validation()) from exc
        return member

    def clash_after_validation(self) -> dict[str, list[str]]:
        data = self.validated_data
        holder = annex_cloud_id_holder(data["client"].pk, data.get("annex_cloud_id", ""), exclude_pk=self.instance_pk)
        return {"annex_cloud_id": [annex_cloud_id_taken(holder)]} if holder else {"phone": [PHONE_TAKEN]}


class TimelineLinkSerializer(serializers.Serializer):
    # DRF's metaclass takes declared fields off the class, so this does not replace Field.label (what mypy sees).
    label = serializers.CharField()  # type: ignore[assignment]
    url = serializers.CharField(help_text="The record's admin page.")


class TimelineEntrySerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    kind = serializers.CharField(
        help_text="joined, change, event, vendor, action, subscription, callback, message, points, offer, "
        "transaction, review, push"
    )
    vendor = serializers.CharField(help_text="The vendor's name; empty for the portal's own.")
    title = serializers.CharField()
    status = serializers.CharField(help_text="e.g. a message's sent, held, uncertain.")
    detail = serializers.CharField(help_text="Why: a held message's reason, a callback's outcome.")
    url = serializers.CharField(help_text="The record's admin page.")
    related = TimelineLinkSerializer(
        many=True,
        help_text="e.g. the vendor call behind a held message, the calls of a vendor's last sync or of an action.",
    )


class TimelineSerializer(serializers.Serializer):
    member = serializers.IntegerField()
    per_source = serializers.IntegerField(help_text="The newest records read from each source.")
    entries = TimelineEntrySerializer(many=True)


class MemberViewSet(
    NamesItsChanges,
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    serializer_class = MemberSerializer

    def get_queryset(self) -> QuerySet[Member]:
        queryset = Member.objects.select_related("client").prefetch_related("subscriptions").order_by("pk")
        return scope_to_clients(queryset, self.request.user)

    @extend_schema(responses=TimelineSerializer)
    @action(detail=True, methods=["get"])
    def timeline(self, request: Request, pk: str | None = None) -> Response:
        """Everything that happened to the member across vendors, newest first (members/timeline.py)."""
        member = self.get_object()
        entries = member_timeline.timeline(member)
        body = {"member": member.pk, "per_source": member_timeline.PER_SOURCE, "entries": entries}
        return Response(TimelineSerializer(body).data)


class MemberRefSerializer(serializers.Serializer):
    """How the sender names the member: any one of these."""

    annex_cloud_id = serializers.CharField(required=False)
    email = serializers.EmailField(required=False)
    phone = serializers.CharField(required=False)


class LoyaltyEventSerializer(serializers.ModelSerializer):
    client = ClientField()
    event_id = serializers.CharField(source="external_id", max_length=100)
    event_type = serializers.ChoiceField(choices=EventType.choices)
    member = MemberRefSerializer(write_only=True)
    member_id = serializers.IntegerField(read_only=True)

    class Meta:
        model = LoyaltyEvent
        fields = ["id", "client", "event_id", "event_type", "member", "member_id", "occurred_at", "data"]
        extra_kwargs = {
            "data": {
                "help_text": 'What messages may state, e.g. {"points": 50, "balance": 1250}: the points of this event '
                "and the member's balance after it (whole numbers; `points_balance` is accepted for `balance`), "
                "`tier`, `reward`, `offer_name`, `expires_on`. A template that states the balance is sent only when "
                "the event carries it or the member's balance was read from Annex Cloud."
            }
        }
        # A repeated event id is not an error here: the view answers it with the stored event.
        validators: list[Any] = []

    def validate_data(self, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise serializers.ValidationError('Must be a JSON object, e.g. {"points": 50, "balance": 1250}.')
        if errors := event_data_errors(value):
            # Answered as {"data": {"balance": ["Must be a whole number..."]}}, like every other field error.
            raise serializers.ValidationError({key: [error] for key, error in errors.items()})
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        client = resolve_client(self, attrs)
        attrs["client"] = client
        attrs["member"] = find_member(client, attrs["member"])
        return attrs


def find_member(client: Client, ref: dict[str, str]) -> Member:
    members = Member.objects.filter(client=client)
    if ref.get("annex_cloud_id"):
        match = members.filter(annex_cloud_id=ref["annex_cloud_id"]).first()
    elif ref.get("email"):
        match = members.filter(email__iexact=ref["email"]).first()
    elif ref.get("phone"):
        try:
            match = members.filter(phone=to_e164(ref["phone"], client.default_region)).first()
        except InvalidPhone as exc:
            raise serializers.ValidationError({"member": {"phone": str(exc)}}) from exc
    else:
        raise serializers.ValidationError({"member": "Give the member's annex_cloud_id, email or phone."})
    if match is None:
        raise serializers.ValidationError({"member": f"{client} has no member {next(iter(ref.values()))}."})
    return match


class LoyaltyEventViewSet(NamesItsChanges, mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Loyalty events drive messages. POST is idempotent on `event_id`: a repeat answers 200 with the stored event
    and changes nothing."""

    serializer_class = LoyaltyEventSerializer

    def get_queryset(self) -> QuerySet[LoyaltyEvent]:
        return scope_to_clients(LoyaltyEvent.objects.select_related("client").order_by("-pk"), self.request.user)

    @extend_schema(responses={201: LoyaltyEventSerializer, 200: LoyaltyEventSerializer})
    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        fields = dict(serializer.validated_data)
        event, created = flows.record_loyalty_event(fields.pop("client"), fields.pop("member"), **fields)
        return Response(
            self.get_serializer(event).data, status=status.HTTP_201_CREATED if created else status.HTTP_200_OK
        )


class SegmentSerializer(serializers.ModelSerializer):
    client: serializers.SlugRelatedField[Client] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    size = serializers.IntegerField(read_only=True)

    class Meta:
        model = Segment
        fields = [
            "id", "client", "name", "type", "from_date", "to_date", "status", "external_id", "external_name",
            "annex_cloud_segment_id", "size",
        ]  # fmt: skip


class SegmentExportSerializer(serializers.ModelSerializer):
    download_url = serializers.SerializerMethodField()

    class Meta:
        model = SegmentExport
        fields = ["id", "segment", "status", "rows", "error", "created_at", "finished_at", "download_url"]

    def get_download_url(self, export: SegmentExport) -> str | None:
        if export.status != SegmentExport.Status.READY:
            return None
        return self.context["request"].build_absolute_uri(reverse("segment-export-download", args=[export.pk]))


class SegmentViewSet(viewsets.ReadOnlyModelViewSet):
    """A client's segments. `export` streams the CSV (phone E.164, email, first and last name, member id); a
    segment too large to stream is exported by a job instead: 202 with the export to poll."""

    serializer_class = SegmentSerializer

    def get_queryset(self) -> QuerySet[Segment]:
        queryset = Segment.objects.select_related("client").annotate(size=Count("links")).order_by("pk")
        return scope_to_clients(queryset, self.request.user)

    @extend_schema(responses={(200, "text/csv"): bytes, 202: SegmentExportSerializer})
    @action(detail=True, methods=["get"])
    def export(self, request: Request, pk: str | None = None) -> Response | StreamingHttpResponse:
        segment = self.get_object()
        if should_export_in_background(segment):
            export = request_background_export(segment)
            body = SegmentExportSerializer(export, context={"request": request}).data
            status_url = reverse("segment-export-detail", args=[export.pk])
            return Response(body, status=status.HTTP_202_ACCEPTED, headers={"Location": status_url})
        return csv_download(segment)


class SegmentExportViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = SegmentExportSerializer

    def get_queryset(self) -> QuerySet[SegmentExport]:
        return scope_to_clients(SegmentExport.objects.order_by("-pk"), self.request.user, "segment__client")

    @extend_schema(responses={(200, "text/csv"): bytes})
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str | None = None) -> FileResponse | Response:
        export = self.get_object()
        if export.status != SegmentExport.Status.READY:
            return Response({"detail": f"The export is {export.status}."}, status=status.HTTP_409_CONFLICT)
        return FileResponse(export.file.open("rb"), as_attachment=True, filename=export.file.name.rsplit("/", 1)[-1])
