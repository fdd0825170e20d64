"""Forms behind the admin's activation pages (Attentive, Annex Cloud site credentials)."""

from __future__ import annotations

from django import forms

from integrations.attentive.flows import SignUpSourceInput
from integrations.models import Connection


def secret_input(label: str, *, required: bool, help_text: str = "") -> forms.CharField:
    return forms.CharField(
        label=label,
        required=required,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password", "size": 50}),
        help_text=help_text,
    )


class AttentiveActivationForm(forms.Form):
    environment = forms.ChoiceField(
        choices=Connection.Environment.choices,
        initial=Connection.Environment.PRODUCTION,
        help_text="Sandbox talks to the portal's own Attentive simulator.",
    )
    sign_up_sources = forms.CharField(
        error_messages={"required": "Add at least one sign-up source: Attentive needs one to subscribe members."},
        label="Sign-up sources",
        widget=forms.Textarea(attrs={"rows": 4, "cols": 50, "placeholder": "132109, Loyalty sign-up"}),
        help_text="One per line: the sign-up flow id from Attentive's Subscribers tab, a comma, a name. "
        "The first line is the default used for subscriptions.",
    )

    def __init__(self, *args: object, has_api_key: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        keep = " Leave blank to keep the stored one." if has_api_key else ""
        self.fields["api_key"] = secret_input(
            "API key",
            required=not has_api_key,
            help_text="From a private app created in Attentive's Integrations tab." + keep,
        )
        self.fields["legacy_token"] = secret_input(
            "Legacy messages token",
            required=False,
            help_text="Needed to send messages; Attentive activates it on request (legacyapi@attentivemobile.com)."
            + (" Leave blank to keep the stored one." if has_api_key else ""),
        )
        self.order_fields(["environment", "api_key", "legacy_token", "sign_up_sources"])

    def clean_sign_up_sources(self) -> list[SignUpSourceInput]:
        sources: list[SignUpSourceInput] = []
        for number, line in enumerate(self.cleaned_data["sign_up_sources"].splitlines(), start=1):
            if not line.strip():
                continue
            source_id, _, name = (part.strip() for part in line.partition(","))
            if not source_id.isdigit():
                raise forms.ValidationError(f"Line {number}: {source_id!r} is not a sign-up flow id (digits only).")
            if any(s.source_id == source_id for s in sources):
                raise forms.ValidationError(f"Line {number}: sign-up source {source_id} is listed twice.")
            sources.append(SignUpSourceInput(source_id, name, is_default=not sources))
        if not sources:
            raise forms.ValidationError("Add at least one sign-up source: Attentive needs one to subscribe members.")
        return sources


class AnnexCloudCredentialsForm(forms.Form):
    site_id = forms.RegexField(
        regex=r"^\d+$", label="Site id", error_messages={"invalid": "The site id is a number given by Annex Cloud."}
    )

    def __init__(self, *args: object, has_secrets: bool = False, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        keep = " Leave blank to keep the stored one." if has_secrets else ""
        self.fields["loyalty_token"] = secret_input("Loyalty token", required=not has_secrets, help_text=keep.strip())
        self.fields["api_secret"] = secret_input(
            "API shared secret", required=False, help_text="Signs Loyalty API v3 calls." + keep
        )
