"""Words (issue 24, finding 6): plurals that read, identical messages for several objects said with their count, the
demo's next step pointing at a README section that exists, log redaction that leaves ordinary words alone, audit
entries that do not take filled-in defaults for the admin's changes, the First Orion confirmation page, and the
sandbox credential box showing labels, not form field names."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.template import Context, Template
from django.test import RequestFactory
from django.urls import reverse

from integrations import audit
from integrations.admin.base import report_outcomes
from integrations.management.commands import seed_demo
from integrations.models import AuditEntry, Connection
from integrations.outcome import Outcome
from portal.logging import REDACTED, redact_text, register_secret_values, secret_forms
from tests.factories import ConnectionFactory

README = Path(__file__).resolve().parent.parent / "README.md"


def test_a_short_secret_never_redacts_an_ordinary_word():
    assert redact_text("Should we ask Attentive again?", secret_forms(("ask",))) == "Should we ask Attentive again?"
    register_secret_values(["basket"])  # six characters: redacted only as a whole token
    assert redact_text("a basketball and a mybasket") == "a basketball and a mybasket"
    assert redact_text("the key is basket.") == f"the key is {REDACTED}."
    register_secret_values(["long-secret-value-1234"])
    assert redact_text("xlong-secret-value-1234x") == f"x{REDACTED}x"  # a long one wherever it is


def test_the_demos_next_step_names_a_readme_section_that_exists():
    sections = {line.lstrip("#").strip() for line in README.read_text().splitlines() if line.startswith("#")}
    active = seed_demo.next_step(Connection(vendor="attentive", status=Connection.Status.ACTIVE))
    (named,) = re.findall(r"README, '([^']+)'", active)
    assert named in sections, named


def test_identical_outcomes_of_several_objects_are_one_line_with_their_count(rf: RequestFactory):
    request = rf.post("/")
    request.session = {}
    request._messages = FallbackStorage(request)

    class Admin:
        def message_user(self, request, text, level):
            request._messages.add(level, text)

    same = Outcome.failure("Annex Cloud answered: not a member.")
    report_outcomes(Admin(), request, [same, same, same, Outcome.success("Ann: refreshed.")])
    lines = [str(m) for m in get_messages(request)]
    assert lines == ["Annex Cloud answered: not a member. (3 of the selected, the same answer)", "Ann: refreshed."]


@pytest.mark.django_db
def test_defaults_filled_in_on_save_are_not_recorded_as_the_admins_changes(admin_http, client_a):
    connection = ConnectionFactory(client=client_a, vendor="bazaarvoice", settings={})
    before = audit.connection_state(connection)
    connection.settings = {"look_back_hours": 72, "points_per_review": 50, "email_key_derivation": "plain16"}
    connection.save()
    assert audit.differences(before, audit.connection_state(connection)) == []
    connection.settings = {**connection.settings, "look_back_hours": 24}
    changed = audit.differences(before, audit.connection_state(connection))
    assert changed == [("settings.look_back_hours", "settings.look_back_hours: 'default 72' → '24'")]
    assert not AuditEntry.objects.exists()


@pytest.mark.django_db
def test_the_sandbox_credential_box_shows_labels_not_field_names(admin_http, client_a):
    connection = ConnectionFactory(client=client_a, vendor="vibes", environment="sandbox", secrets={}, settings={})
    page = admin_http.get(reverse("admin:integrations_connection_change", args=[connection.pk])).content.decode()
    box = page.split("sandbox-fill-box", 1)[1].split("<ul>", 1)[1].split("</ul>", 1)[0]  # what people read
    assert "secret__" not in box and "setting__" not in box
    assert "API password" in box or "api password" in box.lower()
    assert "data-sandbox-fill" in page  # the button still fills the form's fields by name


@pytest.mark.django_db
def test_the_first_orion_confirmation_page_says_its_title_once_with_styled_buttons_and_plurals():
    template = Path(__file__).resolve().parent.parent / "templates/admin/first_orion/confirm_push.html"
    text = template.read_text().replace('{% extends "admin/base_site.html" %}', "")
    text = text.replace("{% block content %}", "").replace("{% endblock %}", "")
    text = text.replace('{% include "admin/includes/aligned_form_fields.html" %}', "")
    plan = {"destinations": ["+14155550100"], "shortened": 0, "sent_long": 0, "long_values": []}
    html = Template(text).render(Context({"title": "Push branded call content", "plan": plan, "batches": 1}))
    assert "Push branded call content" not in html  # the admin's own heading says it, once
    assert "(s)" not in html and "(es)" not in html
    assert "1</strong> destination in <strong>1</strong> batch to" in html
    assert "Push to 1 destination<" in html
    for button in re.findall(r"<button[^>]*>", html):
        assert 'class="button' in button, button


def test_model_names_read_in_the_plural():
    from integrations.first_orion.models import Push, PushBatch

    assert (str(Push._meta.verbose_name_plural), str(PushBatch._meta.verbose_name_plural)) == (
        "pushes",
        "push batches",
    )


# --- Issue 24, words left over: plurals by count, times in the viewer's zone with the zone -------------------------


def test_a_job_runs_counts_say_one_in_the_singular():
    from integrations.models import JobRun

    run = JobRun(counts={"passes_completed": 1, "members_read": 2, "batches": 1, "sent": 1, "status_checks": 0})
    assert run.counts_in_words == "1 pass completed, 2 members read, 1 batch, 1 sent, 0 status checks"


@pytest.mark.django_db
def test_admin_messages_say_one_token_and_two_tokens(admin_http, client_a):
    from integrations.models import ApiToken

    tokens = [ApiToken.issue(client_a, f"token {n}")[0] for n in range(3)]
    url = reverse("admin:integrations_apitoken_changelist")
    said = []
    for chosen in (tokens[:1], tokens[1:]):
        response = admin_http.post(url, {"action": "revoke", "_selected_action": [t.pk for t in chosen]}, follow=True)
        said += [str(message) for message in get_messages(response.wsgi_request)]
    assert said == ["Revoked 1 token.", "Revoked 2 tokens."]


@pytest.mark.django_db
def test_the_sessionm_wallet_scan_says_one_pass(client_a):
    from integrations.sessionm.admin import wallet_scan
    from integrations.sessionm.models import OfferScan

    connection = ConnectionFactory(client=client_a, vendor="sessionm", secrets={})
    OfferScan.objects.create(connection=connection, passes=1, last_member_id=7)
    assert wallet_scan(connection).startswith("1 complete pass; next from member 7")


@pytest.mark.django_db
def test_the_bazaarvoice_pull_state_shows_times_in_the_viewers_zone_with_the_zone(alice_http, admin_http, client_a):
    from datetime import UTC, datetime

    from integrations.bazaarvoice.models import PullState

    client_a.time_zone = "America/New_York"
    client_a.save()
    connection = ConnectionFactory(client=client_a, vendor="bazaarvoice", secrets={})
    PullState.objects.create(connection=connection, cursor=datetime(2026, 12, 6, 23, 6, 59, 990148, tzinfo=UTC))
    url = reverse("admin:integrations_connection_change", args=[connection.pk])
    for http in (alice_http, admin_http):  # each sees one client, in New York
        page = http.get(url).content.decode()
        assert "23:06:59.990148" not in page and "+00:00" not in page
        assert "2026-12-06 18:06:59 EST" in page


@pytest.mark.django_db
def test_the_schedule_preview_shows_the_schedules_zone_and_the_viewers(admin_http, client_a):
    from django_celery_beat.models import PeriodicTask

    from integrations.jobs import ensure_schedules

    client_a.time_zone = "America/New_York"
    client_a.save()
    ensure_schedules()
    task = PeriodicTask.objects.filter(crontab__isnull=False).first()
    url = reverse("admin:jobs_schedule", args=[task.pk])
    for zone in ("UTC", "America/New_York"):
        form = {"kind": "daily", "daily_at": "09:00", "time_zone": zone, "preview": "Preview"}
        page = admin_http.post(url, form).content.decode()
        runs = re.findall(r"<li>([^<]*)</li>", page.split('id="next-runs"', 1)[1].split("</ol>", 1)[0])
        assert len(runs) == 5
        # Each run at 09:00 in the zone chosen, and (a UTC schedule) in the viewer's New York time as well.
        assert all(f"09:00 ({zone})" in run for run in runs), runs
        if zone == "UTC":
            assert all(re.search(r", that is .* 0[34]:00 \(America/New_York\)$", run) for run in runs), runs
        else:
            assert all("that is" not in run for run in runs), runs
