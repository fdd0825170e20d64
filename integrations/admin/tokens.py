"""Client API tokens: created here, the key shown once, revocable."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.translation import ngettext

from integrations.admin.base import ClientFilter, ClientScopedAdmin
from integrations.models import ApiToken


class ApiTokenForm(forms.ModelForm):
    class Meta:
        model = ApiToken
        fields = ["client", "name"]


def curl_example(request: HttpRequest, key: str) -> str:
    """A first call with the new key, on the host the person is using: the client's members."""
    return f'curl -H "Authorization: Token {key}" {request.build_absolute_uri(reverse("member-list"))}'


@admin.register(ApiToken)
class ApiTokenAdmin(ClientScopedAdmin):
    form = ApiTokenForm
    list_display = ["name", "client", "prefix", "created_at", "last_used_at", "revoked"]
    list_filter = [ClientFilter, "revoked"]
    actions = ["revoke"]

    def get_readonly_fields(self, request: HttpRequest, obj: ApiToken | None = None) -> list[str]:
        return ["client", "name", "prefix", "created_at", "last_used_at", "revoked"] if obj else []

    def has_change_permission(self, request: HttpRequest, obj: ApiToken | None = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ApiToken, form: forms.ModelForm, change: bool) -> None:
        obj.assign_new_key()
        obj.save()

    def response_add(self, request: HttpRequest, obj: ApiToken, post_url_continue: str | None = None) -> Any:
        # The key is shown on this one page and nowhere else (not in a message cookie, not in the list).
        context = {
            **self.admin_site.each_context(request),
            "token": obj,
            "key": obj.issued_key,
            "opts": self.opts,
            "curl_example": curl_example(request, obj.issued_key),
            "api_docs_url": request.build_absolute_uri(reverse("api-docs")),
        }
        response = TemplateResponse(request, "admin/integrations/apitoken/issued.html", context)
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected tokens", permissions=["delete"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        count = queryset.update(revoked=True)
        self.message_user(request, f"Revoked {count} {ngettext('token', 'tokens', count)}.")
