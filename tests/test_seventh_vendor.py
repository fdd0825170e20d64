"""A seventh vendor is one package and one registry line (issue 23's proof): Parrot (tests/parrot_vendor/), registered
by the single settings override below and touching no other file, is verified over HTTP, keeps a member in sync,
has its pull recorded as a job, shows on the dashboard, the Jobs page and /sandbox/, and has its callbacks stored
and applied — all through the shared code, which finds it in the registry alone."""

from __future__ import annotations

import re

import pytest
import requests
from django.urls import resolve, reverse

from integrations.checks import problems_of
from integrations.connections import verify
from integrations.models import Connection, JobRun, VendorCall, WebhookEvent
from integrations.schedules import ensure_schedules
from integrations.vendors import VENDORS, route_vendor_task
from members.models import MemberVendorState
from members.sync import change_member, reconcile
from tests.factories import ConnectionFactory, MemberFactory
from tests.parrot_vendor import sandbox as parrot_simulator
from tests.parrot_vendor.tasks import pull_squawks

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def parrot(settings, live_server):
    """Parrot's simulator over real HTTP, emptied; Parrot itself registered by its one line — once the portal is up
    (its URLs loaded), so that what is mounted per vendor must follow the registry, not the import order."""
    resolve("/sandbox/")
    settings.EXTRA_VENDOR_PACKAGES = ["tests.parrot_vendor"]  # the one registry line
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    parrot_simulator.state.__init__()
    yield parrot_simulator.state
    parrot_simulator.state.__init__()


@pytest.fixture
def parrot_connection(client_a) -> Connection:
    return ConnectionFactory(
        client=client_a,
        vendor="parrot",
        environment=Connection.Environment.SANDBOX,
        status=Connection.Status.DRAFT,
        secrets=dict(parrot_simulator.DEMO_SECRETS),
    )


@pytest.fixture
def active_parrot(parrot_connection) -> Connection:
    assert verify(parrot_connection).ok
    return parrot_connection


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def test_parrot_is_registered_passes_the_start_up_check_and_has_its_queue():
    assert VENDORS["parrot"].label == "Parrot"
    assert list(problems_of(VENDORS["parrot"])) == []
    assert route_vendor_task("parrot.pull_squawks", (), {}, {}) == {"queue": "bulk"}


def test_a_parrot_connection_is_verified_over_http_and_a_refused_key_is_explained_in_its_words(parrot_connection):
    outcome = verify(parrot_connection)

    parrot_connection.refresh_from_db()
    assert outcome.ok and outcome.message == "Verified: the key works for Parrot account Polly."
    assert parrot_connection.status == Connection.Status.ACTIVE
    call = VendorCall.objects.get(connection=parrot_connection)
    assert (call.method, call.status_code, call.url) == ("GET", 200, f"{parrot_connection.effective_base_url}/v1/me")
    parrot_connection.secrets = {"api_key": "not-the-key"}
    refused = verify(parrot_connection)
    assert not refused.ok and refused.message.startswith("Parrot refused the API key")


def test_a_member_change_reaches_parrot_through_the_shared_member_sync(active_parrot, client_a):
    member = MemberFactory(client=client_a, email="polly@example.com", first_name="Pat")

    change_member(member, first_name="Polly")
    state = MemberVendorState.objects.get(member=member, vendor="parrot")
    assert state.status == MemberVendorState.Status.PENDING
    result = reconcile(member.pk, "parrot")

    state.refresh_from_db()
    assert result.status == MemberVendorState.Status.IN_SYNC
    assert state.detail == "Repeated by Parrot as polly@example.com."
    assert parrot_simulator.state.members["polly@example.com"]["first_name"] == "Polly"


def test_a_sync_that_fails_unexpectedly_keeps_the_calls_it_made_for_the_timeline(active_parrot, client_a, httpserver):
    """An error no vendor error explains (here Parrot answering without the e-mail its flow reads) is not recorded as
    an outcome — it goes on to the task's record — but the member's timeline still links the call that was made."""
    member = MemberFactory(client=client_a, email="polly@example.com")
    change_member(member, first_name="Polly")
    Connection.objects.filter(pk=active_parrot.pk).update(base_url=httpserver.url_for("/parrot"))
    httpserver.expect_request("/parrot/v1/members/polly@example.com", method="PUT").respond_with_json({})

    with pytest.raises(KeyError):
        reconcile(member.pk, "parrot")

    state = MemberVendorState.objects.get(member=member, vendor="parrot")
    [call] = VendorCall.objects.filter(connection=active_parrot, method="PUT")
    assert state.last_call_ids == [call.pk] and state.status == MemberVendorState.Status.PENDING


def test_a_pull_is_recorded_as_a_job_run_and_shows_on_the_jobs_page_and_the_dashboard(active_parrot, admin_http):
    assert "Pull Parrot squawks" in ensure_schedules()  # as after every migrate

    pull_squawks.apply()

    run = JobRun.objects.get(job="parrot.pull_squawks")
    assert run.outcome == JobRun.Outcome.SUCCEEDED and run.counts == {"squawks": 2}
    jobs = text_of(admin_http.get("/admin/jobs/").content.decode())
    assert "Pull Parrot squawks" in jobs and "2 squawks" in jobs
    dashboard = admin_http.get("/admin/").context["dashboard"]
    cards = [card.connection.spec.label for client in dashboard.clients for card in client.cards]
    assert "Parrot" in cards
    squawks = next(chart for chart in dashboard.charts if chart.title == "Squawks pulled")
    assert sum(bar.values["value"] for bar in squawks.bars) == 2


def test_the_sandbox_page_lists_parrots_simulator_with_its_credentials(live_server):
    listed = requests.get(f"{live_server.url}/sandbox/?format=json", timeout=10).json()
    page = text_of(requests.get(f"{live_server.url}/sandbox/", timeout=10).text)

    assert "parrot" in listed["vendors"]
    assert "Parrot" in page and parrot_simulator.API_KEY in page


def test_a_parrot_callback_at_the_shared_url_is_stored_and_applied(active_parrot, client_a, live_server, eager_celery):
    member = MemberFactory(client=client_a, email="polly@example.com", opted_in=True)
    url = live_server.url + reverse("parrot-callback", args=[active_parrot.inbound_token])
    assert url.endswith(f"/api/webhooks/parrot/{active_parrot.inbound_token}/")  # the shared callback URL

    answer = requests.post(url, json={"id": "ev-1", "type": "member.left", "email": member.email}, timeout=10)

    assert answer.status_code == 200
    event = WebhookEvent.objects.get(connection=active_parrot)
    assert (event.event_id, event.status) == ("ev-1", WebhookEvent.Status.PROCESSED)
    member.refresh_from_db()
    assert member.opted_in is False
