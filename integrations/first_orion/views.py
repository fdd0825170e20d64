"""First Orion in the client API: program contents (`/api/first-orion/program-contents/`, validated as in the
admin) and pushes (`POST /api/first-orion/pushes/` answers 202 with the push's Location; `GET` shows its status and
progress). Everything is scoped to the caller's clients. A push says what becomes of personalised values over 20
characters (`long_values`: `leave_out`, the default, `shorten`, or `send_as_is`, which only a site admin may ask).

The request budget (REQUEST_BUDGET, in the schema): what a caller may store or ask is bounded where it fans out —
a content's personalization (copied into every destination) and a push's size — and a push's destinations and
batches are built by a worker, so the request that asks for a push never reads its members."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db.models import Count, QuerySet, RestrictedError
from django.urls import reverse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_field, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.request import Request
from rest_framework.response import Response

from integrations.api_shared import ClientField, NamesItsChanges, resolve_client
from integrations.first_orion import flows
from integrations.first_orion.models import (
    MAX_A_NUMBERS,
    MAX_PERSONALIZATION_VARIABLES,
    MAX_TEMPLATE_LENGTH,
    MAX_VARIABLE_NAME_LENGTH,
    LongValues,
    ProgramContent,
    Push,
)
from integrations.models import Client
from integrations.outcome import NotReady
from integrations.tenancy import is_site_admin, scope_to_clients
from members.models import Member, Segment

MAX_NUMBERS = 100_000

PERSONALIZATION_BOUNDS = (
    f"At most {MAX_PERSONALIZATION_VARIABLES} variables; names of letters, digits and _ (starting with a letter), at "
    f"most {MAX_VARIABLE_NAME_LENGTH} characters; templates of at most {MAX_TEMPLATE_LENGTH} characters using only "
    "{first_name}, {last_name}, {tier}, {points}, {client_name}. Beyond them: 400 with the field's messages, nothing "
    "stored. A personalised value over 20 characters may not display on every phone: each push chooses what becomes "
    "of it (`long_values`)."
)
REQUEST_BUDGET = (
    f"**Request budget.** Personalization: {PERSONALIZATION_BOUNDS} aNumbers: 1 to {MAX_A_NUMBERS}. A push: one of "
    f"a segment, at most {MAX_NUMBERS:,} member ids, or at most {MAX_NUMBERS:,} numbers (a request body of at most "
    "2.5 MB). The request records the push as `planning` and answers 202 at once: a worker then reads the members "
    "or numbers in chunks and builds the destinations and batches (`planning_read` of `planning_total` show its "
    "progress), then sends them (`batches_sent` of `batches_total`). A push with no destination left ends `failed`, "
    "its `error` and `skipped` saying why."
)


class ProgramContentSerializer(serializers.ModelSerializer):
    client = ClientField()
    a_numbers = serializers.ListField(
        child=serializers.CharField(max_length=20), required=False, max_length=MAX_A_NUMBERS
    )
    personalization = serializers.JSONField(required=False, help_text=PERSONALIZATION_BOUNDS)
    long_value_examples = serializers.SerializerMethodField(
        help_text="Real members whose personalised values exceed 20 characters (each push chooses: leave them out, "
        "shorten at 20, or send as is)."
    )

    class Meta:
        model = ProgramContent
        fields = [
            "id", "client", "name", "program_content_uuid", "a_numbers", "a_number_group_id", "ttl_seconds",
            "keep_after_call", "personalization", "long_value_examples", "created_at",
        ]  # fmt: skip
        # Uniqueness per client is checked in validate() against the resolved client.
        validators: list[Any] = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        client = self.instance.client if self.instance else resolve_client(self, attrs)
        attrs["client"] = client
        candidate = ProgramContent(**{**self._current(), **attrs})
        if self.instance is not None:
            # The stored row itself, so uniqueness is checked against the others only.
            candidate.pk, candidate._state.adding = self.instance.pk, False
        try:
            candidate.full_clean()
        except ValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from exc
        attrs.update(program_content_uuid=candidate.program_content_uuid, a_number_group_id=candidate.a_number_group_id)
        return attrs

    def _current(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        fields = ["name", "program_content_uuid", "a_numbers", "a_number_group_id", "ttl_seconds", "keep_after_call"]
        return {name: getattr(self.instance, name) for name in [*fields, "personalization"]}

    def get_long_value_examples(self, content: ProgramContent) -> list[str]:
        return flows.long_personalization_examples(content)


@extend_schema_view(
    create=extend_schema(description=f"Personalization: {PERSONALIZATION_BOUNDS}"),
    update=extend_schema(description=f"Personalization: {PERSONALIZATION_BOUNDS}"),
    partial_update=extend_schema(description=f"Personalization: {PERSONALIZATION_BOUNDS}"),
)
class ProgramContentViewSet(NamesItsChanges, viewsets.ModelViewSet):
    serializer_class = ProgramContentSerializer

    def get_queryset(self) -> QuerySet[ProgramContent]:
        return scope_to_clients(ProgramContent.objects.select_related("client").order_by("pk"), self.request.user)

    @extend_schema(responses={204: None, 409: OpenApiResponse(description="The content has pushes: kept.")})
    def destroy(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        try:
            return super().destroy(request, *args, **kwargs)
        except RestrictedError:
            return Response(
                {
                    "ok": False,
                    "message": "This program content has pushes, which keep a record of what was pushed: it cannot "
                    "be deleted. Leave it unused, or rename it to show it is retired.",
                },
                status=status.HTTP_409_CONFLICT,
            )


class PushSerializer(serializers.ModelSerializer):
    client: serializers.SlugRelatedField[Client] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    batches = serializers.SerializerMethodField(help_text="Batches by status.")

    class Meta:
        model = Push
        fields = [
            "id", "client", "program_content", "source", "segment", "not_before", "status", "planning_read",
            "planning_total", "planned_at", "destinations", "batches_total", "batches_sent", "failures", "batches",
            "skipped", "long_values", "shortened", "warnings", "error", "created_at", "finished_at",
        ]  # fmt: skip
        read_only_fields = fields

    def get_batches(self, push: Push) -> dict[str, int]:
        return dict(push.batches.values_list("status").annotate(n=Count("pk")).order_by())


@extend_schema_field(OpenApiTypes.INT)
class ScopedPrimaryKeyField(serializers.PrimaryKeyRelatedField):
    """A row by id among those of the caller's clients (another client's id reads as "does not exist")."""

    def __init__(self, model: type[Any], **kwargs: Any) -> None:
        self.model = model
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet[Any]:
        return scope_to_clients(self.model.objects.all(), self.context["request"].user)


class PushRequestSerializer(serializers.Serializer):
    program_content = ScopedPrimaryKeyField(ProgramContent)
    segment = ScopedPrimaryKeyField(Segment, required=False)
    members = serializers.ListField(
        child=serializers.IntegerField(),
        required=False,
        allow_empty=False,
        max_length=MAX_NUMBERS,
        error_messages={"max_length": "At most {max_length} members per push: put them in a segment and push it."},
    )
    numbers = serializers.ListField(
        child=serializers.CharField(max_length=32),
        required=False,
        allow_empty=False,
        max_length=MAX_NUMBERS,
        error_messages={"max_length": "At most {max_length} numbers per push: split the list into several pushes."},
    )
    not_before = serializers.DateTimeField(required=False, allow_null=True)
    long_values = serializers.ChoiceField(
        choices=LongValues.choices,
        default=LongValues.LEAVE_OUT,
        help_text="Personalised values over 20 characters: leave those members out (counted in `skipped`), shorten "
        "them at 20, or send them as they are (site admins only; they may not display on every phone).",
    )

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        given = [name for name in ("segment", "members", "numbers") if attrs.get(name) is not None]
        if len(given) != 1:
            raise serializers.ValidationError({"non_field_errors": ["Give exactly one of: segment, members, numbers."]})
        client_id = attrs["program_content"].client_id
        if "segment" in attrs and attrs["segment"].client_id != client_id:
            raise serializers.ValidationError({"segment": "The segment belongs to another client than the content."})
        if "members" in attrs:
            wanted = set(attrs["members"])
            found = set(Member.objects.filter(client_id=client_id, pk__in=wanted).values_list("pk", flat=True))
            if missing := sorted(wanted - found):
                raise serializers.ValidationError(
                    {"members": f"Not members of the program content's client: {', '.join(map(str, missing[:20]))}."}
                )
            attrs["members"] = sorted(found)
        return attrs


class PushViewSet(NamesItsChanges, mixins.CreateModelMixin, viewsets.ReadOnlyModelViewSet):
    serializer_class = PushSerializer

    def get_queryset(self) -> QuerySet[Push]:
        return scope_to_clients(Push.objects.select_related("client").order_by("-created_at"), self.request.user)

    @extend_schema(
        request=PushRequestSerializer,
        description=REQUEST_BUDGET,
        responses={
            202: OpenApiResponse(
                PushSerializer,
                "Recorded as `planning`, its batches built in the background; the Location header is the push's "
                "status URL.",
            ),
            400: OpenApiResponse(description="Field errors (over the request budget included)."),
            403: OpenApiResponse(description="`send_as_is` asked by a caller who is not a site admin."),
            409: OpenApiResponse(
                description="First Orion is not active for the client, or the content's personalization is over "
                "its bounds (stored before they applied)."
            ),
        },
    )
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        given = PushRequestSerializer(data=request.data, context={"request": request})
        given.is_valid(raise_exception=True)
        data = given.validated_data
        try:
            push = flows.create_push(
                data["program_content"],
                segment=data.get("segment"),
                members=data.get("members"),
                numbers=data.get("numbers"),
                not_before=data.get("not_before"),
                requested_by=f"api:{getattr(request.user, 'api_client_id', '') or request.user}",
                long_values=data["long_values"],
                site_admin=is_site_admin(request.user),
            )
        except flows.LongValuesNotAllowed as exc:
            return Response({"ok": False, "message": str(exc)}, status=status.HTTP_403_FORBIDDEN)
        except NotReady as exc:
            return Response({"ok": False, "message": str(exc)}, status=status.HTTP_409_CONFLICT)
        location = request.build_absolute_uri(reverse("first-orion-push-detail", args=[push.pk]))
        return Response(PushSerializer(push).data, status=status.HTTP_202_ACCEPTED, headers={"Location": location})


# (URL prefix, viewset, basename) registered on the client API's router.
ROUTES = [
    ("first-orion/program-contents", ProgramContentViewSet, "first-orion-program-content"),
    ("first-orion/pushes", PushViewSet, "first-orion-push"),
]
