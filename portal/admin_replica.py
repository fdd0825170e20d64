"""Admin lists of the large tables read from the read replica (portal/db_router.py), so browsing millions of log rows
never loads the primary.

Only the list as shown on a GET reads from the replica: its rows, its count and its filters' choices. An action is a
POST, and its queryset (the selected rows) is the one it updates or deletes, which must be the primary's. The change
page, and everything else, reads the primary as before."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from django.contrib.admin.views.main import ChangeList
from django.db.models import QuerySet
from django.http import HttpRequest

from portal.db_router import read_alias

SAFE_METHODS = frozenset({"GET", "HEAD"})

# Set while a change list for a GET is being built: the admin's querysets made meanwhile read from the replica.
_listing: ContextVar[bool] = ContextVar("admin_listing_from_replica", default=False)


if TYPE_CHECKING:
    from django.contrib import admin

    # What the mixin's super() calls reach: the ModelAdmin it is listed before.
    _ModelAdminBase = admin.ModelAdmin
else:
    _ModelAdminBase = object


class ReplicaChangeListMixin(_ModelAdminBase):
    """For a ModelAdmin (before it in the bases): its change list reads from the replica when there is one."""

    def get_changelist_instance(self, request: HttpRequest) -> ChangeList:
        if request.method not in SAFE_METHODS:
            return super().get_changelist_instance(request)
        token = _listing.set(True)
        try:
            # The list's querysets are bound to the replica here; rows are fetched later, when the page renders.
            return super().get_changelist_instance(request)
        finally:
            _listing.reset(token)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        queryset = super().get_queryset(request)
        return queryset.using(read_alias()) if _listing.get() else queryset
