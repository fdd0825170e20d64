"""The client-facing API of the vendor side: the clients and connections a caller may see (read-only)."""

from __future__ import annotations

from typing import TypeVar

from django.db.models import QuerySet
from rest_framework import serializers, viewsets

from integrations.models import Client, Connection
from integrations.tenancy import scope_to_clients, visible_clients

T = TypeVar("T")


class ClientSerializer(serializers.ModelSerializer):
    class Meta:
        model = Client
        fields = ["id", "name", "slug", "site_id", "default_region", "active"]


class ConnectionSerializer(serializers.ModelSerializer):
    """Never carries secrets: only whether each one is set."""

    client: serializers.SlugRelatedField[Client] = serializers.SlugRelatedField(slug_field="slug", read_only=True)
    base_url = serializers.CharField(source="effective_base_url", read_only=True)
    secrets_set = serializers.SerializerMethodField()

    class Meta:
        model = Connection
        fields = [
            "id",
            "client",
            "vendor",
            "environment",
            "base_url",
            "status",
            "last_checked_at",
            "last_check_ok",
            "last_check_result",
            "secrets_set",
        ]

    def get_secrets_set(self, connection: Connection) -> dict[str, bool]:
        """Whether each secret is set; a secret no key can open counts as not set (it must be entered again)."""
        return {spec.name: bool(connection.secrets.get(spec.name)) for spec in connection.spec.secrets}


class ClientViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ClientSerializer

    def get_queryset(self) -> QuerySet[Client]:
        return visible_clients(self.request.user).order_by("name")


class ConnectionViewSet(viewsets.ReadOnlyModelViewSet):
    serializer_class = ConnectionSerializer

    def get_queryset(self) -> QuerySet[Connection]:
        queryset = Connection.objects.select_related("client").order_by("client__name", "vendor")
        return scope_to_clients(queryset, self.request.user)
