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
