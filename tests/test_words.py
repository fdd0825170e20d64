"""Words (issue 24, finding 6): plurals that read, identical messages for several objects said with their count, the
demo's next step pointing at a README section that exists, log redaction that leaves ordinary words alone, audit
entries that do not take filled-in defaults for the admin's changes, the First Orion confirmation page, and the
sandbox credential box showing labels, not form field names."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.apps import apps
from django.contrib.messages import get_messages
from django.contrib.messages.storage.fallback import FallbackStorage
from django.template import Context, Template
from django.template.loader import get_template
from django.test import RequestFactory
from django.urls import reverse

from integrations import audit
from integrations.admin.base import report_outcomes
from integrations.attentive import demo as attentive_demo
from integrations.models import AuditEntry, Connection
from integrations.outcome import Outcome
from integrations.redaction import REDACTED, redact_text, register_secret_values, secret_forms
from tests.factories import ConnectionFactory
from tests.test_attentive_webhooks import LIST, attentive, member, send_as_attentive  # noqa: F401 (fixtures)
from tests.test_messaging import setup  # noqa: F401 (a fixture)

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
    active = attentive_demo.next_step(Connection(vendor="attentive", status=Connection.Status.ACTIVE))
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


def template_source(name: str) -> str:
    """A template's text, wherever the loaders find it (a vendor's templates are in its package)."""
    return Path(get_template(name).origin.name).read_text()


@pytest.mark.django_db
def test_the_first_orion_confirmation_page_says_its_title_once_with_styled_buttons_and_plurals():
    text = template_source("admin/first_orion/confirm_push.html").replace('{% extends "admin/base_site.html" %}', "")
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

    from integrations.schedules import ensure_schedules

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


# --- Issue 24, words left over (2): no "(s)" left, a count said in the singular or the plural -----------------------


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("member")  # on a Vibes list, subscribed to texts at Attentive (test_attentive_webhooks)
def test_a_stop_at_attentive_says_one_vibes_list_in_both_flows(live_server, vibes_sandbox):
    from integrations.models import WebhookEvent
    from members.models import Member, MemberVendorState

    send_as_attentive(live_server, Connection.objects.get(vendor="attentive"), "sms.unsubscribed")
    told_attentive = WebhookEvent.objects.get().error  # a processed delivery keeps what it did here
    told_vibes = MemberVendorState.objects.get(member=Member.objects.get(), vendor="vibes").detail
    assert told_attentive.endswith("Opted out of 1 Vibes list."), told_attentive
    assert f"unsubscribed from Vibes list {LIST} (opted out elsewhere)" in told_vibes, told_vibes


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("setup", "site_admin")  # messages planned at Attentive (test_messaging); someone to alert
def test_the_uncertain_messages_alert_says_one_message(attentive_sandbox):
    from django.core import mail
    from django.utils import timezone

    from members.messaging import claim_batch, dispatch_messages, mark_attempting, plan_messages
    from members.models import OutboundMessage

    plan_messages()
    [message] = claim_batch(Connection.objects.get(vendor="attentive"), size=1)
    mark_attempting(message)  # a run dies here: the request may have left
    OutboundMessage.objects.filter(pk=message.pk).update(attempted_at=timezone.now() - timedelta(minutes=5))
    assert dispatch_messages()["interrupted"] == 1
    [alert] = [m for m in mail.outbox if "uncertain" in m.subject]
    assert alert.subject.endswith("1 message is uncertain"), alert.subject
    assert "may or may not have sent it." in alert.body


def unknown_names_said(make_error: Callable[[list[str]], str]) -> tuple[str, str]:
    return make_error(["zz"]), make_error(["yy", "zz"])


def raised(function: Callable[..., object], *args: object) -> str:
    try:
        function(*args)
    except Exception as exc:  # each validator raises its own kind; the words are what is checked
        return " ".join(getattr(exc, "messages", [str(exc)]))
    raise AssertionError(f"{function.__name__} accepted {args}")


def header(values: list[str]) -> object:
    from members.imports import Record

    return Record(line=1, values=values, next_offset=0, next_line=2)


def test_validation_errors_name_one_unknown_in_the_singular():
    from integrations.first_orion.models import template_error
    from integrations.vibes.webhooks import parse_callback
    from members.imports import header_columns
    from members.models import validate_template_text
    from portal.storage_url import default_storage_from_url

    said = {
        "column": unknown_names_said(lambda names: raised(header_columns, header(["email", *names]))),
        "repeated": (
            raised(header_columns, header(["email", "phone", "phone"])),
            raised(header_columns, header(["email", "phone", "tier", "phone", "tier"])),
        ),
        "placeholder": unknown_names_said(
            lambda names: raised(validate_template_text, " ".join(f"{{{n}}}" for n in names))
        ),
        "first orion": unknown_names_said(lambda names: template_error("line1", " ".join(f"{{{n}}}" for n in names))),
        "storage": unknown_names_said(
            lambda names: raised(default_storage_from_url, "s3://bucket/p?" + "&".join(f"{n}=1" for n in names))
        ),
        "callback": (
            raised(parse_callback, "application/json", b'{"event_id": "e1", "callback_type": "x", "event_date": "d"}'),
            "",
        ),
    }
    for key, (one, two) in said.items():
        assert "(s)" not in one + two, (key, one, two)
    assert said["column"][0].startswith("Unknown column: zz.") and said["column"][1].startswith(
        "Unknown columns: yy, zz."
    )
    assert said["repeated"][0].startswith("Column named twice") and said["repeated"][1].startswith(
        "Columns named twice"
    )
    assert (
        said["placeholder"][0].startswith("Unknown placeholder: zz.")
        and "placeholders: yy, zz" in said["placeholder"][1]
    )
    assert (
        "unknown placeholder zz;" in said["first orion"][0] and "unknown placeholders yy, zz;" in said["first orion"][1]
    )
    assert "unknown option zz;" in said["storage"][0] and "unknown options yy, zz;" in said["storage"][1]
    assert said["callback"][0] == "Missing field: subscription."


@pytest.mark.django_db
def test_settings_and_segment_filters_name_one_unknown_in_the_singular(client_a):
    from integrations.vendors import VENDORS
    from members.models import Segment
    from members.segments import members_matching

    segment = Segment.objects.create(client=client_a, name="Gold")
    assert raised(VENDORS["bazaarvoice"].clean_settings, {"zz": 1}) == "Unknown setting for Bazaarvoice: zz."
    assert raised(members_matching, segment, {"zz": 1}).startswith("Unknown filter field: zz.")


@pytest.mark.django_db
def test_commands_count_in_the_singular_and_the_plural(client_a, settings):
    from io import StringIO

    from cryptography.fernet import Fernet
    from django.core.management import call_command

    old_key, new_key = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old_key]
    ConnectionFactory(client=client_a, vendor="vibes")  # its secrets: one value to re-encrypt
    settings.FIELD_ENCRYPTION_KEYS = [new_key, old_key]
    out, err = StringIO(), StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    call_command("report_annex_cloud_sms_consent", stdout=StringIO(), stderr=err)
    call_command("check_member_state", stdout=out)
    said = out.getvalue() + err.getvalue()
    assert "(s)" not in said, said
    assert re.search(r"re-encrypted 1 value$", said, re.MULTILINE), said
    assert "0 members have an SMS opt-in" in said and "0 member-vendor states differ." in said


def test_confirmation_pages_count_batches_and_members():
    def rendered(name: str, **context: object) -> str:
        text = template_source(f"admin/{name}").replace('{% extends "admin/base_site.html" %}', "")
        text = text.replace("{% block content %}", "").replace("{% endblock %}", "").replace("{% csrf_token %}", "")
        return " ".join(Template(text).render(Context(context)).split())

    push = {"failures": 1, "client": "Alpha"}
    resend = rendered("first_orion/confirm_resend.html", pushes=[push, {**push, "failures": 2}])
    assert "· 1 uncertain batch<" in resend and "· 2 uncertain batches<" in resend
    assert "Add 1 member to:" in rendered("members/member/add_to_segment.html", pks=[7], segments=[])
    assert "Add 2 members to:" in rendered("members/member/add_to_segment.html", pks=[7, 8], segments=[])


@pytest.mark.django_db
def test_the_re_read_audit_entry_records_the_cursor_in_utc_with_the_zone(admin_http, client_a):
    from datetime import UTC, datetime

    from integrations.bazaarvoice.models import PullState

    connection = ConnectionFactory(client=client_a, vendor="bazaarvoice", secrets={})
    PullState.objects.create(connection=connection, cursor=datetime(2026, 12, 6, 23, 6, 59, 990148, tzinfo=UTC))
    url = reverse("admin:integrations_connection_bazaarvoice_reread", args=[connection.pk])
    admin_http.post(url, {"moment": "2026-12-01 18:00:00"})
    [entry] = AuditEntry.objects.filter(subject_id=connection.pk, fields=["bazaarvoice.cursor"])
    assert entry.changes == ["bazaarvoice.cursor: '2026-12-06 23:06:59 UTC' → '2026-12-01 18:00:00 UTC'"]


@pytest.mark.django_db
def test_the_dashboards_attention_box_shows_times_in_the_viewers_zone_with_the_zone(alice_http, client_a):
    from datetime import UTC, datetime

    from integrations.models import JobRun

    client_a.time_zone = "America/New_York"
    client_a.save()
    moment = datetime.now(UTC).replace(microsecond=0)
    ConnectionFactory(client=client_a, vendor="vibes", status="failing", last_checked_at=moment)
    run = JobRun.objects.create(job="attentive.send", client=client_a, outcome="failed", error="exploded")
    html = alice_http.get(reverse("admin:index")).content.decode()
    box = html.split("needs-attention-box", 1)[1].split("</section>", 1)[0]
    in_new_york = f"{moment.astimezone(ZoneInfo('America/New_York')):%Y-%m-%d %H:%M:%S %Z}"
    started = f"{run.started_at.astimezone(ZoneInfo('America/New_York')):%Y-%m-%d %H:%M:%S %Z}"
    assert f"last check {in_new_york}" in box and f"failed at {started}".lower() in box.lower(), box


def test_a_vendor_message_that_ends_with_a_stop_gets_no_second_one():
    """Finding 6's double "..": the vendor's words closed as a sentence before the portal's own go on."""
    from integrations.connections import explain_auth_failure
    from integrations.http import AuthError
    from integrations.models import Connection

    connection = Connection(vendor="annex_cloud")  # no explanation of its own: the generic one
    for words in ("Invalid credentials.", "Invalid credentials"):
        text = explain_auth_failure(connection, AuthError("Annex Cloud", words, status=401))
        assert "Invalid credentials. " in text and ".." not in text, text


# Abbreviations Django would show as typed from a field's name ("Base url", "Api tokens", "Remote addr", "Mdn").
RAW_ABBREVIATIONS = re.compile(r"\b(url|api|addr|mdn|ip|sms|csv|json|annex cloud)\b")


def test_every_model_and_field_of_the_portal_names_itself_in_words_not_abbreviations_as_typed():
    named = []
    for model in apps.get_models():
        if not model.__module__.startswith(("integrations.", "members.")):
            continue
        opts = model._meta
        named += [(opts.label, str(opts.verbose_name)), (opts.label, str(opts.verbose_name_plural))]
        named += [
            (f"{opts.label}.{field.name}", str(field.verbose_name))
            for field in opts.get_fields()
            if not field.auto_created and hasattr(field, "verbose_name")
        ]
    assert [(where, name) for where, name in named if RAW_ABBREVIATIONS.search(name)] == []


@pytest.mark.django_db
def test_a_list_is_titled_with_what_it_lists_under_its_apps_name(admin_http):
    page = admin_http.get(reverse("admin:members_member_changelist")).content.decode()
    assert "<h1>Members</h1>" in page and "<title>Members |" in page
    assert "Select member to" not in page
    crumbs = re.sub(r"<[^>]+>", "", page.split('class="breadcrumbs"', 1)[1].split("</div>", 1)[0])
    steps = [step.strip(" \n>") for step in html.unescape(crumbs).split("\u203a")]
    assert steps == ["Home", "Loyalty program", "Members"]
