"""First Orion in the admin: program contents (outbound numbers and personalization, validated, with a warning and
real examples when a personalised value would exceed 20 characters), pushes with their progress and batches, and the
segment and member actions that push branded call content after a confirmation page, where the person pushing
chooses what becomes of personalised values over 20 characters (sending them as they are: site admins only)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.loader import render_to_string
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from integrations.activity import Trouble
from integrations.admin.base import ClientFilter, ClientScopedAdmin, ReadOnlyAdmin, VendorAdmin
from integrations.connections import usable_connection
from integrations.first_orion import flows
from integrations.first_orion.models import MAX_PERSONALIZATION_LENGTH, LongValues, ProgramContent, Push, PushBatch
from integrations.first_orion.numbers import diallable
from integrations.first_orion.spec import DEFAULT_BATCH_SIZE
from integrations.models import JobRun
from integrations.outcome import NotReady
from integrations.tenancy import is_site_admin, scope_to_clients
from members.models import Member, Segment
from portal.admin_filters import since_filter

# --- Program contents --------------------------------------------------------------------------------------------


def lines(text: str) -> list[str]:
    return [line.strip() for line in text.replace(",", "\n").splitlines() if line.strip()]


class ProgramContentForm(forms.ModelForm):
    """aNumbers one per line; personalization one `NAME = template` per line. The model validates the rest
    (exactly one of aNumbers / group, E.164, 1-400, UUIDs, placeholders)."""

    a_numbers_text = forms.CharField(
        label="aNumbers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 4, "cols": 40, "placeholder": "+15014008029"}),
        help_text="One outbound number per line (E.164, up to 400), as uploaded in the Content Portal; "
        "or leave empty and give the aNumber group UUID.",
    )
    personalization_text = forms.CharField(
        label="Personalization",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60, "placeholder": "MY_VAR = Hi {first_name}"}),
        help_text="One variable per line: NAME = template with {first_name}, {last_name}, {tier}, {points}, "
        f"{{client_name}}. Values over {MAX_PERSONALIZATION_LENGTH} characters may not display on every phone.",
    )

    class Meta:
        model = ProgramContent
        fields = ["client", "name", "program_content_uuid", "a_number_group_id", "ttl_seconds", "keep_after_call"]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["a_numbers_text"].initial = "\n".join(self.instance.a_numbers or [])
        self.fields["personalization_text"].initial = "\n".join(
            f"{name} = {template}" for name, template in (self.instance.personalization or {}).items()
        )

    def clean_personalization_text(self) -> dict[str, str]:
        variables: dict[str, str] = {}
        for number, line in enumerate(self.cleaned_data["personalization_text"].splitlines(), start=1):
            if not line.strip():
                continue
            name, sep, template = line.partition("=")
            if not sep:
                raise forms.ValidationError(f"Line {number}: write NAME = template, e.g. MY_VAR = Hi {{first_name}}.")
            variables[name.strip()] = template.strip()
        return variables

    def _post_clean(self) -> None:
        # The model's own validation sees the parsed lists (before it runs in super()._post_clean()).
        self.instance.a_numbers = lines(self.cleaned_data.get("a_numbers_text", ""))
        self.instance.personalization = self.cleaned_data.get("personalization_text", {})
        super()._post_clean()  # type: ignore[misc]  # BaseModelForm's hook, private so not in django-stubs

    def _update_errors(self, errors: Any) -> None:
        # Model errors on the JSON fields belong to the text inputs that hold them here.
        renamed = {"a_numbers": "a_numbers_text", "personalization": "personalization_text"}
        if hasattr(errors, "error_dict"):
            errors.error_dict = {renamed.get(k, k): v for k, v in errors.error_dict.items()}
        super()._update_errors(errors)  # type: ignore[misc]  # BaseModelForm's hook, private so not in django-stubs


@admin.register(ProgramContent)
class ProgramContentAdmin(ClientScopedAdmin):
    form = ProgramContentForm
    list_display = ["name", "client", "program_content_uuid", "numbers", "ttl_seconds", "keep_after_call"]
    list_filter = [ClientFilter]
    search_fields = ["name", "program_content_uuid"]
    fields = [
        "client", "name", "program_content_uuid", "a_numbers_text", "a_number_group_id", "ttl_seconds",
        "keep_after_call", "personalization_text",
    ]  # fmt: skip

    @admin.display(description="outbound numbers")
    def numbers(self, content: ProgramContent) -> str:
        if content.a_number_group_id:
            return f"group {content.a_number_group_id}"
        return f"{len(content.a_numbers)} {ngettext('aNumber', 'aNumbers', len(content.a_numbers))}"

    def save_model(self, request: HttpRequest, obj: ProgramContent, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        warn_about_long_values(self, request, obj)
        warn_about_undiallable_a_numbers(self, request, obj)


def warn_about_long_values(model_admin: admin.ModelAdmin, request: HttpRequest, content: ProgramContent) -> None:
    """First Orion's best practice is 20 characters: say which real members would exceed it (never cut silently:
    each push chooses)."""
    examples = flows.long_personalization_examples(content)
    if examples:
        model_admin.message_user(
            request,
            f"Some personalised values are over {MAX_PERSONALIZATION_LENGTH} characters and may not display on every "
            f"phone: {'; '.join(examples)}. Each push asks what to do with them (leave those members out, the "
            "default; shorten at 20; or, site admins only, send as they are). Consider a shorter template.",
            messages.WARNING,
        )


def warn_about_undiallable_a_numbers(
    model_admin: admin.ModelAdmin, request: HttpRequest, content: ProgramContent
) -> None:
    """aNumbers are E.164 by syntax; one the phone-number metadata calls invalid is kept, with a word."""
    doubtful = [number for number in content.a_numbers if not diallable(number)]
    if doubtful:
        model_admin.message_user(
            request,
            f"Kept, as they are E.164: {', '.join(doubtful)} — but not valid for dialling as far as the phone-number "
            "metadata knows. Check them against the numbers uploaded in the Content Portal.",
            messages.WARNING,
        )


# --- Pushes ------------------------------------------------------------------------------------------------------


class ProgramContentFilter(admin.SimpleListFilter):
    """Program contents of the clients the user may see (a plain related filter would list every client's)."""

    title = "program content"
    parameter_name = "program_content"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, str]]:
        contents = scope_to_clients(ProgramContent.objects.select_related("client"), request.user)
        return [(str(c.pk), f"{c.name} ({c.client})") for c in contents]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        return queryset.filter(program_content_id=self.value()) if self.value() else queryset


class BatchNumberMixin:
    @admin.display(description="batch", ordering="index")
    def batch_number(self, batch: PushBatch) -> int:
        """Counted from 1, as the batch's title says ("Batch 1 of push 125"); `index` is stored from 0."""
        return batch.index + 1


class PushBatchInline(BatchNumberMixin, admin.TabularInline):
    model = PushBatch
    fields = readonly_fields = ("batch_number", "status", "size", "request_id", "error", "attempted_at", "settled_at")
    extra = 0
    can_delete = False
    show_change_link = True

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def counts_by_reason(counts: dict[str, int]) -> str:
    """A push's counters by reason as its confirmation page says them, the largest first; "none" when empty."""
    if not counts:
        return "none"
    lines = sorted(counts.items(), key=lambda item: -item[1])
    return format_html_join("", "<div>{} · {}</div>", ((count, reason) for reason, count in lines))


@admin.register(Push)
class PushAdmin(ReadOnlyAdmin):
    list_display = ["created_at", "client", "program_content", "source", "status", "progress", "destinations"]
    list_filter = [ClientFilter, ProgramContentFilter, "status", ("created_at", admin.DateFieldListFilter)]
    list_select_related = ["client", "program_content", "job_run"]
    date_hierarchy = "created_at"
    inlines = [PushBatchInline]
    fields = readonly_fields = (
        "client", "program_content", "source", "segment", "not_before", "status", "progress", "destinations",
        "skipped_by_reason", "long_values", "shortened", "warnings_by_reason", "error", "requested_by", "created_at",
        "finished_at",
    )  # fmt: skip
    actions = ["resend_uncertain_batches"]

    @admin.display(description="skipped")
    def skipped_by_reason(self, push: Push) -> str:
        """Members left out, one line per reason ("1 · no mobile number"), not the stored JSON."""
        return counts_by_reason(push.skipped)

    @admin.display(description="warnings")
    def warnings_by_reason(self, push: Push) -> str:
        return counts_by_reason(push.warnings)

    def has_resend_permission(self, request: HttpRequest) -> bool:
        # Sending again may push a phone twice: a site admin's decision, after checking with First Orion.
        return is_site_admin(request.user)

    @admin.action(
        description="Send uncertain batches again (First Orion confirmed they were not pushed)…", permissions=["resend"]
    )
    def resend_uncertain_batches(self, request: HttpRequest, queryset: QuerySet[Push]) -> TemplateResponse | None:
        pushes = list(queryset.filter(status=Push.Status.UNCERTAIN))
        if "confirm" not in request.POST:
            context = {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "title": "Send uncertain batches again?",
                "pushes": pushes,
                "action": request.POST["action"],
            }
            return TemplateResponse(request, "admin/first_orion/confirm_resend.html", context)
        who = request.user.get_username()
        sent = sum(flows.resend_uncertain_batches(push, who) for push in pushes)
        self.message_user(
            request,
            f"{sent} uncertain {ngettext('batch', 'batches', sent)} of {len(pushes)} "
            f"{ngettext('push', 'pushes', len(pushes))} queued to be sent again.",
        )
        return None

    class Media:
        js = ["integrations/job_progress.js"]

    @admin.display(description="progress")
    def progress(self, push: Push) -> str:
        if push.planned_at is None:
            # Its worker is still reading the members or numbers and building the batches (a segment's members are
            # counted when it starts).
            words = f"planning: {push.planning_read} / {push.planning_total or '?'} read"
        else:
            failures = f", {push.failures} failed or uncertain" if push.failures else ""
            words = f"{push.batches_sent} / {push.batches_total} batches sent{failures}"
        since = flows.push_running_since(push)
        if since:
            words = f"{words}; {since}"
        run = push.job_run
        if run is None or run.outcome != JobRun.Outcome.RUNNING:
            return words
        # While it is being sent: a bar that follows the run, without reloading the page.
        return format_html("{}{}", render_to_string("admin/includes/job_progress.html", {"run": run}), words)


@admin.register(PushBatch)
class PushBatchAdmin(BatchNumberMixin, ReadOnlyAdmin):
    client_path = "push__client"
    list_display = ["__str__", "status", "size", "request_id", "settled_at"]
    list_filter = ["status", since_filter("settled_at", "settled")]
    search_fields = ["request_id"]
    fields = readonly_fields = (
        "push", "batch_number", "status", "size", "request_id", "error", "attempted_at", "settled_at", "destinations",
    )  # fmt: skip


# --- Pushing from segments and members ---------------------------------------------------------------------------


class PushForm(forms.Form):
    program_content = forms.ModelChoiceField(queryset=ProgramContent.objects.none())
    not_before = forms.DateTimeField(
        required=False, help_text="Optional (UTC): First Orion shows the content from then on, e.g. 2026-11-24 16:00."
    )
    long_values = forms.ChoiceField(
        label=f"Personalised values over {MAX_PERSONALIZATION_LENGTH} characters",
        choices=LongValues.choices,
        initial=LongValues.LEAVE_OUT,
        required=False,  # not chosen: left out, the default
        widget=forms.RadioSelect,
        help_text=f"They may not display on every phone. Left out, members are counted with the reason; shortened, "
        f"values are cut at {MAX_PERSONALIZATION_LENGTH} characters.",
    )

    def __init__(self, *args: Any, client_id: int, site_admin: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # self.fields holds copies of the fields declared above, typed as plain Fields.
        field = cast("forms.ModelChoiceField[ProgramContent]", self.fields["program_content"])
        field.queryset = ProgramContent.objects.filter(client_id=client_id)
        field.empty_label = None
        if not site_admin:
            # Sending values that may not display is a site admin's decision: the choice is not offered.
            choices = [(value, label) for value, label in LongValues.choices if value != LongValues.AS_IS]
            cast(forms.ChoiceField, self.fields["long_values"]).choices = choices

    def clean_not_before(self) -> datetime | None:
        # Read as UTC, as its help says, whatever the viewer's zone the admin page is shown in (Django's form field
        # reads a time without an offset in the active zone).
        moment: datetime | None = self.cleaned_data.get("not_before")
        if moment is None:
            return None
        wall_clock = timezone.make_naive(moment) if timezone.is_aware(moment) else moment
        return wall_clock.replace(tzinfo=UTC)

    @property
    def chosen_long_values(self) -> str:
        return str(self.cleaned_data.get("long_values") or LongValues.LEAVE_OUT)


def confirm_push(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    selected: list[Any],
    *,
    segment: Segment | None = None,
    members: QuerySet[Member] | None = None,
    client_id: int,
    title: str,
) -> TemplateResponse | None:
    """Choose the program content, see what the push would do (destinations, members skipped and why, batches,
    long personalised values and what becomes of them), then confirm; the push is queued and its page shows the
    progress."""
    if not request.user.has_perm("first_orion.add_push"):
        model_admin.message_user(request, "You may not push branded call content (ask a site admin).", messages.ERROR)
        return None
    site_admin = is_site_admin(request.user)
    form = PushForm(request.POST if "push_step" in request.POST else None, client_id=client_id, site_admin=site_admin)
    plan = None
    if form.is_valid():
        content = form.cleaned_data["program_content"]
        if request.POST.get("push_step") == "confirm":
            create_push(model_admin, request, content, segment, members, form)
            return None
        plan = flows.preview(content, segment=segment, members=members, long_values=form.chosen_long_values)
    connection = usable_connection(client_id, flows.VENDOR)
    size = flows.batch_size(connection) if connection else DEFAULT_BATCH_SIZE
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": title,
        "form": form,
        "plan": plan,
        "skipped": sorted((plan.skipped.items() if plan else []), key=lambda item: -item[1]),
        # Counters as lists: a template's `counter.items` would read the (missing, so 0) key "items".
        "warnings": sorted((plan.warnings.items() if plan else []), key=lambda item: -item[1]),
        "batches": plan.batches(size) if plan else 0,
        "selected": selected,
        "action": request.POST["action"],
        "limit": MAX_PERSONALIZATION_LENGTH,
    }
    return TemplateResponse(request, "admin/first_orion/confirm_push.html", context)


def create_push(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    content: ProgramContent,
    segment: Segment | None,
    members: QuerySet[Member] | None,
    form: PushForm,
) -> None:
    try:
        push = flows.create_push(
            content,
            segment=segment,
            members=members,
            not_before=form.cleaned_data["not_before"],
            requested_by=request.user.get_username(),
            long_values=form.chosen_long_values,
            site_admin=is_site_admin(request.user),
        )
    except (NotReady, flows.LongValuesNotAllowed) as exc:
        model_admin.message_user(request, str(exc), messages.ERROR)
        return None
    url = reverse("admin:first_orion_push_change", args=[push.pk])
    model_admin.message_user(
        request,
        format_html(
            'Queued push {} of “{}”: its batches are being built, then sent. <a href="{}">Follow its progress</a>.',
            push.pk,
            content,
            url,
        ),
    )
    return None


def one_client(model_admin: admin.ModelAdmin, request: HttpRequest, objects: list[Any], what: str) -> int | None:
    clients = {obj.client_id for obj in objects}
    if len(clients) != 1:
        model_admin.message_user(request, f"Select {what} of one client at a time.", messages.ERROR)
        return None
    return clients.pop()


@admin.action(description="Push branded call content…", permissions=["view"])
def push_segment_content(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Segment]
) -> TemplateResponse | None:
    segments = list(queryset[:2])
    if len(segments) != 1:
        model_admin.message_user(request, "Select one segment to push branded call content to.", messages.ERROR)
        return None
    segment = segments[0]
    return confirm_push(
        model_admin,
        request,
        segments,
        segment=segment,
        client_id=segment.client_id,
        title=f"Push branded call content to segment “{segment}”",
    )


@admin.action(description="Push branded call content to the selected members…", permissions=["view"])
def push_members_content(
    model_admin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[Member]
) -> TemplateResponse | None:
    members = list(queryset.only("pk", "client_id"))
    client_id = one_client(model_admin, request, members, "members")
    if client_id is None:
        return None
    return confirm_push(
        model_admin,
        request,
        members,
        members=Member.objects.filter(pk__in=[m.pk for m in members]),
        client_id=client_id,
        title=f"Push branded call content to {len(members)} selected {ngettext('member', 'members', len(members))}",
    )


def failed_pushes(since: datetime) -> Iterator[Trouble]:
    """The dashboard's "Needs attention": pushes of the last 24 hours that failed or whose outcome is uncertain.
    Not sliced here: the dashboard keeps the viewer's clients' lines first and slices after (a slice here would let
    other clients' pushes crowd out the viewer's)."""
    for push in flows.failed_pushes_since(since):
        yield Trouble(
            client_id=push.client_id,
            label=f"First Orion push #{push.pk} · {push.client}",
            url=reverse("admin:first_orion_push_change", args=[push.pk]),
            detail=f"{push.get_status_display()}: {push.error or push.program_content}",
        )


ADMIN = VendorAdmin(
    segment_actions=(push_segment_content,),
    member_actions=(push_members_content,),
    dashboard_troubles=failed_pushes,
)
