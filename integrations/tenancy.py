"""Tenancy: who sees which client. Site admins see every client; client users only the clients they belong to.

Every queryset that serves a person or an API token goes through `scope_to_clients`.
"""

from __future__ import annotations

from typing import Any, TypeVar

from django.contrib.auth.models import Group, Permission
from django.db.models import Model, Q, QuerySet

from integrations.models import Client
from integrations.vendors import VENDORS

M = TypeVar("M", bound=Model)

SITE_ADMIN_PERMISSION = "integrations.view_all_clients"


def is_site_admin(user: Any) -> bool:
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(SITE_ADMIN_PERMISSION))


def visible_clients(user: Any) -> QuerySet[Client]:
    api_client_id = getattr(user, "api_client_id", None)
    if api_client_id is not None:
        return Client.objects.filter(pk=api_client_id, active=True)
    if is_site_admin(user):
        return Client.objects.all()
    if not (user and user.is_authenticated and user.is_active):
        return Client.objects.none()
    return Client.objects.filter(users=user)


def scope_to_clients(queryset: QuerySet[M], user: Any, client_path: str = "client") -> QuerySet[M]:
    """Limit `queryset` to rows whose client (reached through `client_path`) the user may see."""
    if is_site_admin(user):
        return queryset
    if not client_path:
        return queryset.filter(pk__in=visible_clients(user).values("pk"))
    return queryset.filter(**{f"{client_path}__in": visible_clients(user).values("pk")})


CLIENT_USERS_GROUP = "Client users"
# What a client user may do in the admin, always within their own clients.
CLIENT_USER_PERMISSIONS = (
    "view_client",
    "view_connection",
    "change_connection",
    "view_vendorcall",
    "view_jobrun",
    "view_apitoken",
    "add_apitoken",
    "delete_apitoken",
    "view_webhookevent",
    "view_member",
    "add_member",
    "change_member",
    "view_channelsubscription",
    "view_loyaltyevent",
    "view_messagetemplate",
    "add_messagetemplate",
    "change_messagetemplate",
    "view_outboundmessage",
    "view_segment",
    "add_segment",
    "change_segment",
    "view_segmentexport",
    "view_membervendorstate",
    "view_pointstransaction",
)


def ensure_client_users_group() -> None:
    """Create or complete the group that gives client users their admin permissions (idempotent)."""
    group, _ = Group.objects.get_or_create(name=CLIENT_USERS_GROUP)
    granted = Q(content_type__app_label__in=["integrations", "members"], codename__in=CLIENT_USER_PERMISSIONS)
    for spec in VENDORS.values():
        # A vendor package that keeps records of its own is an app labelled with the vendor's key.
        granted |= Q(content_type__app_label=spec.key, codename__in=spec.client_user_permissions)
    group.permissions.add(*Permission.objects.filter(granted))
