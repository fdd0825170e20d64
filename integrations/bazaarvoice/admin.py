"""Bazaarvoice in the admin: the reviews (what became of each; "Retry" for failed ones and "Reverse award" for site
admins), and on the connection's page where its pull stands — cursor, last run, quota, next run — with "Pull now" and,
for site admins, "Re-read from…" (the cursor moved back to a chosen moment, recorded in the audit trail)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, cast

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.models import User
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext
from django_celery_beat.models import PeriodicTask

from integrations import audit
from integrations.admin.base import (
    SYNC_ACTION_LIMIT,
    ClientFilter,
    ReadOnlyAdmin,
    VendorAdmin,
    first_few,
    rendering_request,
    report_outcomes,
)
from integrations.bazaarvoice import flows as bazaarvoice
from integrations.bazaarvoice.models import PullState, Review
from integrations.bazaarvoice.spec import SPEC
from integrations.connections import USABLE_STATUSES
from integrations.models import Connection
from integrations.queue import enqueue
from integrations.tenancy import is_site_admin
from portal import zones
from portal.admin_filters import since_filter

PULL_TASK = "bazaarvoice.pull_reviews"
PULL_URL_NAME = "integrations_connection_bazaarvoice_pull"
REREAD_URL_NAME = "integrations_connection_bazaarvoice_reread"


# --- The connection's page -----------------------------------------------------------------------------------------


def next_run_due(now: datetime | None = None) -> datetime | None:
    """When beat next runs the pull (its schedule is editable in Periodic tasks), or None when it is off."""
    now = now or timezone.now()
    names = [schedule.name for schedule in SPEC.schedules]
    task = PeriodicTask.objects.filter(name__in=names, enabled=True).select_related("crontab").first()
    if task is None or task.crontab is None:
        return None
    return now + task.crontab.schedule.remaining_estimate(now)


NOT_STARTED = "not started: the first run looks back"


def moment_words(moment: datetime | None, otherwise: str) -> str:
    """A moment in the viewer's time zone with the zone named (format_html_join would show str(datetime): a raw
    "23:06:59.990148+00:00")."""
    if moment is None:
        return otherwise
    request = rendering_request()
    return zones.local_time(moment, zones.viewer_zone(request.user) if request is not None else zones.UTC_ZONE)


def audit_moment(moment: datetime | None) -> str:
    """A cursor as the audit trail keeps it: in UTC, to the second (as the re-read form takes it, so a move within
    one minute still reads as a change), the zone named — not str(datetime)'s "…:59.990148+00:00". Every reader of
    the entry sees the same words, so not in the viewer's zone."""
    return zones.local_time(moment, zones.UTC_ZONE) if moment is not None else ""


def count_words(name: str) -> str:
    """A run's counter in words: an outcome as the reviews list names it ("not a member"), else "not_x" as "not x"."""
    return dict(Review.Outcome.choices).get(name, name.replace("_", " "))


@admin.display(description="review pull")
def pull_state(connection: Connection) -> str:
    """Where the pull stands, with its buttons (Pull now…, and Re-read from… for site admins)."""
    table = pull_state_table(connection)
    if connection.pk is None:
        return table
    url = reverse(f"admin:{PULL_URL_NAME}", args=[connection.pk])
    buttons = format_html('<a class="button" href="{}">Pull now…</a>', url)
    request = rendering_request()
    if request is not None and is_site_admin(request.user):
        reread_url = reverse(f"admin:{REREAD_URL_NAME}", args=[connection.pk])
        buttons = format_html('{} <a class="button" href="{}">Re-read from…</a>', buttons, reread_url)
    return format_html("{}<p>{}</p>", table, buttons)


def pull_state_table(connection: Connection) -> str:
    """Where the pull stands, without buttons: the "Pull now?" page shows it above its own Yes / No."""
    state = PullState.objects.filter(connection=connection).first() or PullState(connection=connection)
    due = next_run_due()
    counts = ", ".join(f"{count_words(name)} {value}" for name, value in sorted(state.last_run_counts.items())) or "—"
    rows = [
        ("Cursor (moderated before this is taken)", moment_words(state.cursor, NOT_STARTED)),
        ("Last run", moment_words(state.last_run_at, "never")),
        ("Last run's result", state.last_run_result or "—"),
        ("Last run's counts", counts),
        ("Quota used up until", moment_words(state.quota_reset_at, "—")),
        ("Now", (bazaarvoice.pull_running_since(connection) if connection.pk else "") or "not running"),
        ("Next run due", moment_words(due, "the schedule is off (Periodic tasks)")),
    ]
    return format_html_join("", "<div><strong>{}:</strong> {}</div>", rows)


def pull_now_url(model_admin: admin.ModelAdmin) -> Any:
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        return pull_now_view(model_admin, request, pk)

    return path("bazaarvoice/<int:pk>/pull/", model_admin.admin_site.admin_view(view), name=PULL_URL_NAME)


def pull_now_view(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    """GET asks to confirm; POST queues a pull of this connection's client (the same job as the hourly one)."""
    connection = get_object_or_404(model_admin.get_queryset(request), pk=pk, vendor=bazaarvoice.VENDOR)
    change_url = reverse("admin:integrations_connection_change", args=[connection.pk])
    if request.method == "POST":
        if not model_admin.has_change_permission(request, connection):
            raise PermissionDenied
        if connection.status not in USABLE_STATUSES:
            model_admin.message_user(
                request,
                f"{connection} is {connection.status}: verify it first (the pull uses active connections only).",
                messages.ERROR,
            )
            return HttpResponseRedirect(change_url)
        if since := bazaarvoice.pull_running_since(connection):
            # Queued now, the pull would find its own connection held and end with nothing to show for it.
            model_admin.message_user(
                request,
                f"A pull of {connection.client}'s Bazaarvoice reviews is {since}: not queued again. Watch it under "
                "Job runs; the reviews appear under Reviews as they are recorded.",
                messages.WARNING,
            )
            return HttpResponseRedirect(change_url)
        enqueue(PULL_TASK, connection.client_id)
        model_admin.message_user(
            request,
            f"Queued: a pull of {connection.client}'s Bazaarvoice reviews. Watch it under Job runs; the reviews "
            "appear under Reviews as they are recorded.",
        )
        return HttpResponseRedirect(change_url)
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Pull {connection.client}'s Bazaarvoice reviews now?",
        "connection": connection,
        "state": pull_state_table(connection),
        "cancel_url": change_url,
    }
    return TemplateResponse(request, "admin/bazaarvoice/pull_now.html", context)


class RereadForm(forms.Form):
    moment = forms.DateTimeField(
        label="Re-read from (UTC)",
        help_text="A date and time before the cursor, in UTC (e.g. 2026-11-20 00:00). The next run reads from there "
        "(less the connection's look-back).",
        error_messages={"required": "Say from when the reviews are read again.", "invalid": "Enter a date and time."},
    )

    def clean_moment(self) -> datetime:
        # The time as typed, read as UTC whatever the active zone: the cursor and the page showing it are in UTC.
        moment: datetime = self.cleaned_data["moment"]
        wall_clock = timezone.make_naive(moment) if timezone.is_aware(moment) else moment
        return wall_clock.replace(tzinfo=UTC)


def reread_url(model_admin: admin.ModelAdmin) -> Any:
    def view(request: HttpRequest, pk: int) -> HttpResponse:
        return reread_view(model_admin, request, pk)

    return path("bazaarvoice/<int:pk>/reread/", model_admin.admin_site.admin_view(view), name=REREAD_URL_NAME)


def reread_view(model_admin: admin.ModelAdmin, request: HttpRequest, pk: int) -> HttpResponse:
    """Site admins only. GET asks from when (an intermediate page saying what happens); POST moves the cursor back
    through the flow (which refuses while a run holds the pull) and records it in the audit trail."""
    if not is_site_admin(request.user):
        raise PermissionDenied
    connection = get_object_or_404(model_admin.get_queryset(request), pk=pk, vendor=bazaarvoice.VENDOR)
    change_url = reverse("admin:integrations_connection_change", args=[connection.pk])
    form = RereadForm(request.POST if request.method == "POST" else None)
    if form.is_bound and form.is_valid():
        result = bazaarvoice.reread_from(connection, form.cleaned_data["moment"])
        if result.outcome.ok:
            audit.record(
                request.user,
                audit.Action.CHANGED,
                connection,
                {"bazaarvoice.cursor": audit_moment(result.before)},
                {"bazaarvoice.cursor": audit_moment(result.after)},
                note=f"Re-read from…: {result.outcome.message}",
            )
            model_admin.message_user(request, result.outcome.message)
            return HttpResponseRedirect(change_url)
        form.add_error("moment", result.outcome.message)
    state = PullState.objects.filter(connection=connection).first()
    context = {
        **model_admin.admin_site.each_context(request),
        "opts": model_admin.opts,
        "title": f"Re-read {connection.client}'s Bazaarvoice reviews from…",
        "connection": connection,
        "cursor": state.cursor if state else None,
        "look_back_hours": int(bazaarvoice.look_back(connection).total_seconds() // 3600),
        "form": form,
        "cancel_url": change_url,
    }
    return TemplateResponse(request, "admin/bazaarvoice/reread.html", context)


# --- Reviews -------------------------------------------------------------------------------------------------------


class ReverseAwardForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why the points are taken back (kept with the review and sent to Annex Cloud as the reason).",
        error_messages={"required": "Say why the award is reversed: it is kept with the review."},
    )


# How much of "what happened" the review list shows (the review's page shows all of it).
DETAIL_SHOWN = 120


def short_answer(answer: dict[str, Any]) -> str:
    """Annex Cloud's answer to the award in a few words: its error code and message, or the balance and tier."""
    if not answer:
        return "—"
    if answer.get("errorCode"):
        return f"{answer['errorCode']}: {answer.get('errorMessage') or ''}".strip()[:DETAIL_SHOWN]
    balance, tier = answer.get("updatedAvailablePoints"), answer.get("updatedUserTier")
    parts = [f"balance {balance}" if balance not in (None, "") else "", f"tier {tier}" if tier else ""]
    return ", ".join(part for part in parts if part) or "applied"


@admin.register(Review)
class ReviewAdmin(ReadOnlyAdmin):
    # What support looks for first — what became of the review, the points, why, and whose it was — then where it
    # came from; Annex Cloud's raw answer last (the review's page shows it whole).
    list_display = [
        "review_id",
        "outcome",
        "points",
        "what_happened",
        "reviewer",
        "moderated_at",
        "client",
        "rating",
        "product_id",
        "answer",
    ]
    # "last changed": the dashboard's "Reviews rewarded" links to the reviews awarded in its window (a review is
    # last saved when it is settled).
    list_filter = [
        ClientFilter,
        "outcome",
        ("moderated_at", admin.DateFieldListFilter),
        since_filter("updated_at", "last changed"),
    ]
    list_select_related = ["client", "member"]
    search_fields = ["review_id", "product_id"]
    date_hierarchy = "moderated_at"
    actions = ["retry", "reverse_award"]
    exclude = ["encrypted_email"]  # ciphertext of an address: of no use to a reader, and not theirs to see
    readonly_fields = [
        "client",
        "review_id",
        "product_id",
        "rating",
        "ratings_only",
        "moderated_at",
        "masked_email",
        "member_link",
        "outcome",
        "points",
        "detail",
        "annex_cloud_answer",
        "attempts",
        "reversed_by",
        "reversal_reason",
        "reversed_at",
        "first_seen_at",
        "updated_at",
    ]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A review's row is the record that it was rewarded (and reversed): it is never deleted by hand.
        return False

    def has_site_admin_permission(self, request: HttpRequest) -> bool:
        return is_site_admin(request.user)

    @admin.display(description="reviewer")
    def reviewer(self, review: Review) -> str:
        return self.member_link(review) if review.member_id else (review.masked_email or "—")

    @admin.display(description="Annex Cloud's answer")
    def answer(self, review: Review) -> str:
        return short_answer(review.annex_cloud_answer)

    @admin.display(description="what happened")
    def what_happened(self, review: Review) -> str:
        detail = review.detail
        return detail if len(detail) <= DETAIL_SHOWN else f"{detail[: DETAIL_SHOWN - 1]}…"

    @admin.display(description="member")
    def member_link(self, review: Review) -> str:
        if review.member_id is None:
            return "—"
        url = reverse("admin:members_member_change", args=[review.member_id])
        return format_html('<a href="{}">{}</a>', url, review.member)

    @admin.action(description="Retry the selected failed reviews", permissions=["site_admin"])
    def retry(self, request: HttpRequest, queryset: QuerySet[Review]) -> None:
        reviews = first_few(self, request, queryset.select_related("client"), "retried")
        report_outcomes(self, request, [bazaarvoice.retry_review(review) for review in reviews])

    @admin.action(description="Reverse the award of the selected reviews…", permissions=["site_admin"])
    def reverse_award(self, request: HttpRequest, queryset: QuerySet[Review]) -> TemplateResponse | None:
        """Asks why first (an intermediate page); each award is then debited once at Annex Cloud."""
        reviews = list(queryset.select_related("client", "member")[:SYNC_ACTION_LIMIT])
        form = ReverseAwardForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            reason = form.cleaned_data["reason"]
            by = cast(User, request.user)  # admin actions run only for a logged-in site admin
            outcomes = [bazaarvoice.reverse_award(review, by, reason) for review in reviews]
            report_outcomes(self, request, outcomes)
            return None
        if queryset.count() > len(reviews):
            message = f"At most {SYNC_ACTION_LIMIT} awards are reversed at a time: only the first are listed."
            self.message_user(request, message, messages.WARNING)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.opts,
            "title": f"Reverse the award of {len(reviews)} {ngettext('review', 'reviews', len(reviews))}?",
            "reviews": reviews,
            "form": form,
            "action": request.POST.get("action", "reverse_award"),
        }
        return TemplateResponse(request, "admin/bazaarvoice/reverse_award.html", context)


ADMIN = VendorAdmin(connection_fields=(pull_state,), connection_urls=(pull_now_url, reread_url))
