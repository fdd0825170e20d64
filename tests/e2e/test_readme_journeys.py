"""The README's journeys in headless Chromium at 1400 px, one test per journey, each on top of 30 rows of long,
realistic values in every admin list (tests/e2e/long_rows.py): what a new site admin reads in README.md is done in the
browser, as written, and each step's promise is checked on the page it lands on (a success message, the row that
appears). A screenshot of every page reached lands in var/screenshots/journey-<n>-<name>.png for a close read.

Vendors are the sandbox simulators over real HTTP. Where the README says a scheduled job does the work "within a
minute", the test clicks *Run now* on the Jobs page (the task is queued) and then runs that job for the journey's
client, as the worker would: the seeded rows' connections point at hosts that do not exist and are not the journey's.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from playwright.sync_api import Locator, Page, expect

from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.attentive import sandbox as attentive_simulator
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.bazaarvoice.models import Review
from integrations.first_orion.models import Push
from integrations.models import Client, Connection, WebhookEvent
from integrations.schedules import ensure_schedules
from integrations.sessionm import sandbox as sessionm_simulator
from integrations.sessionm.models import SessionMOffer
from integrations.sessionm.offers import scan_offers
from members import sync
from members.messaging import dispatch_messages
from members.models import ChannelSubscription, Member, Segment
from members.segments import add_members
from tests.e2e.test_browser import screenshot
from tests.e2e.test_console_journeys import chromium_page, fill_every_list, log_in
from tests.factories import (
    ClientFactory,
    ConnectionFactory,
    LoyaltyEventFactory,
    MemberFactory,
    MessageTemplateFactory,
    SiteAdminFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
ADMIN = "readme-admin"


@pytest.fixture
def seeded(db) -> Client:
    """Another client's 30 rows of long values in every list the admin has (made before the journey's own rows)."""
    other = ClientFactory(name="Epsilon Eyewear International Holdings")
    fill_every_list(other)
    return other


@pytest.fixture
def page(seeded, live_server, chromium_path, monkeypatch) -> Iterator[Page]:
    """A 1400 px Chromium page, logged in as a site admin, over the seeded lists."""
    SiteAdminFactory(username=ADMIN)
    for browser_page in chromium_page(chromium_path, monkeypatch):
        log_in(browser_page, live_server.url, ADMIN)
        yield browser_page


def shot(page: Page, n: int, name: str) -> None:
    screenshot(page, f"journey-{n}-{name}")


def members_of(client: Client, count: int) -> list[Member]:
    """Demo-like members: a mobile number, an e-mail, SMS opt-in."""
    return [
        MemberFactory(
            client=client,
            first_name=name,
            last_name="Fries",
            email=f"{name.lower()}@example.com",
            phone=f"+1404555{1000 + n:04d}",
            opted_in=True,
        )
        for n, name in enumerate(["Amanda", "Bruno", "Chloe", "Dmitri"][:count])
    ]


def run_action(page: Page, action: str, *pks: int) -> None:
    """Selects the rows of the current list and runs the action on them."""
    for pk in pks:
        page.check(f"input[name=_selected_action][value='{pk}']")
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")


def text_lines(cell: Locator) -> int:
    """On how many lines the cell's text is drawn (a word broken inside, "Process|ed", makes two)."""
    return cell.evaluate(
        """el => {
            const range = document.createRange();
            range.selectNodeContents(el);
            return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size;
        }"""
    )


def same_size(*buttons: Locator) -> bool:
    """Buttons side by side are one height and stand on one line (within a pixel)."""
    boxes = [button.bounding_box() for button in buttons]
    heights, tops = [box["height"] for box in boxes], [box["y"] for box in boxes]
    return max(heights) - min(heights) <= 1 and max(tops) - min(tops) <= 1


def run_now_on_jobs_page(page: Page, base_url: str, job: str) -> None:
    """README: the job's row on **Jobs**, *Run now*; the page says it is queued."""
    page.goto(f"{base_url}/admin/jobs/")
    page.locator("#jobs tr", has_text=job).get_by_role("button", name="Run now").click()
    expect(page.locator(".messagelist")).to_contain_text("is queued")


# --- Trying the Attentive journey -----------------------------------------------------------------------------------


def test_journey_1_activate_attentive_and_verify(page, live_server, attentive_sandbox, client_a):
    """Step 1: Clients, the client, Activate Attentive, the sandbox fill, Save and verify; a wrong key is refused."""
    page.goto(f"{live_server.url}/admin/integrations/client/{client_a.pk}/change/")
    shot(page, 1, "client")
    page.click("#client-page-attentive")
    page.select_option("#id_environment", "sandbox")
    page.get_by_role("button", name="Fill with the sandbox's credentials").click()
    page.fill("#id_sign_up_sources", "132109, Loyalty sign-up")
    shot(page, 1, "attentive-activation")
    page.fill("#id_api_key", "wrong")
    page.click("#attentive-activation input[type=submit]")
    expect(page.locator(".errornote, .errorlist, .messagelist .error").first).to_be_visible()
    shot(page, 1, "attentive-wrong-key")
    assert not Connection.objects.filter(client=client_a, vendor="attentive", status="active").exists()

    page.get_by_role("button", name="Fill with the sandbox's credentials").click()
    page.click("#attentive-activation input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text(f"Attentive is active for {client_a.name}")
    shot(page, 1, "attentive-activated")
    assert Connection.objects.get(client=client_a, vendor="attentive").status == Connection.Status.ACTIVE


def test_journey_2_subscribe_members_at_attentive(page, live_server, sandbox_attentive_connection, client_a):
    """Step 2: Members, select them, Subscribe at Attentive (a confirmation first); TEXT / EMAIL show in the list."""
    members = members_of(client_a, 3)
    page.goto(f"{live_server.url}/admin/members/member/?client={client_a.pk}")
    run_action(page, "subscribe_at_attentive", *(m.pk for m in members))
    expect(page.locator("#content-main")).to_contain_text("Amanda")
    shot(page, 2, "subscribe-confirmation")
    confirm, back = page.locator("#content-main input[type=submit]"), page.get_by_role("link", name="No, take me back")
    assert same_size(confirm, back)
    page.locator("#content-main input[type=submit]").first.click()
    expect(page.locator(".messagelist")).to_be_visible()
    shot(page, 2, "subscribed")
    assert {phone for phone, channel in attentive_simulator.state.subscribed if channel == "TEXT"} == {
        m.phone for m in members
    }
    row = page.locator("#result_list tbody tr", has_text="amanda@example.com")
    expect(row).to_contain_text("Attentive: in sync")
    page.goto(f"{live_server.url}/admin/members/member/{members[0].pk}/change/")
    expect(page.locator("#content-main")).to_contain_text("TEXT")
    shot(page, 2, "member")


def test_journey_3_a_loyalty_event_becomes_a_message(page, live_server, sandbox_attentive_connection, client_a):
    """Step 3: a Loyalty event added in the admin; the message job sends the SMS; Outbound messages shows it sent."""
    [amanda] = members_of(client_a, 1)
    ChannelSubscription.objects.create(member=amanda, vendor="attentive", channel="TEXT", state="subscribed")
    MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=sandbox_attentive_connection,
        text="Hi {first_name}, you earned {points} points. Balance: {points_balance}.",
    )  # fmt: skip
    ensure_schedules()
    page.goto(f"{live_server.url}/admin/members/loyaltyevent/add/")
    page.select_option("#id_client", str(client_a.pk))
    page.fill("#id_member", str(amanda.pk))
    page.fill("#id_external_id", "demo-order-1001")
    page.select_option("#id_event_type", "points_earned")
    page.fill("#id_data", '{"points": 50, "balance": 1250}')
    shot(page, 3, "loyalty-event-form")
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")
    shot(page, 3, "loyalty-events")

    run_now_on_jobs_page(page, live_server.url, "Send loyalty-action messages")
    assert dispatch_messages(client_id=client_a.pk)["sent"] == 1  # what the queued run does for this client
    page.goto(f"{live_server.url}/admin/members/outboundmessage/")
    row = page.locator("#result_list tbody tr").first
    expect(row).to_contain_text("Sent")
    shot(page, 3, "outbound-messages")
    assert attentive_simulator.state.messages == [
        {"to": amanda.phone, "body": "Hi Amanda, you earned 50 points. Balance: 1250."}
    ]


# --- Segments and CSV export ----------------------------------------------------------------------------------------


def test_journey_4_a_segment_exported_as_csv(page, live_server, client_a):
    """Members into a segment (Add to a segment…), then the segment's Export as CSV, ready for Attentive."""
    members = members_of(client_a, 4)
    segment = Segment.objects.create(client=client_a, name="Demo members")
    page.goto(f"{live_server.url}/admin/members/member/?client={client_a.pk}")
    run_action(page, "add_to_segment", *(m.pk for m in members))
    page.select_option("select[name=segment]", str(segment.pk))
    shot(page, 4, "add-to-segment")
    page.locator("#content-main input[type=submit]").last.click()
    expect(page.locator(".messagelist")).to_contain_text("Demo members")
    page.goto(f"{live_server.url}/admin/members/segment/")
    shot(page, 4, "segments")
    page.check(f"input[name=_selected_action][value='{segment.pk}']")
    page.select_option("select[name=action]", "export_csv")
    with page.expect_download() as download:
        page.click("button[name=index]")
    lines = Path(download.value.path()).read_text(encoding="utf-8").splitlines()
    assert lines[0] == '"phone","email","first_name","last_name","member_id","loyalty_opt_in"'
    assert len(lines) == 1 + len(members)
    assert {line.split(",")[1].strip('"') for line in lines[1:]} == {m.email for m in members}


# --- Vibes callbacks and person sync --------------------------------------------------------------------------------


def test_journey_5_a_vibes_callback_reaches_the_member(page, live_server, vibes_sandbox, client_a, eager_celery):
    """Verify the Vibes connection (action Verify), copy its callback URL, then act as Vibes for a member: the
    delivery is stored, applied, and the member is on the Vibes list."""
    _, vibes = vibes_sandbox
    vibes.status = Connection.Status.DRAFT
    vibes.save()
    [amanda] = members_of(client_a, 1)
    page.goto(f"{live_server.url}/admin/integrations/connection/?vendor__exact=vibes")
    run_action(page, "verify_connections", vibes.pk)
    expect(page.locator(".messagelist")).to_contain_text(str(client_a))
    shot(page, 5, "vibes-verified")
    for badge in page.locator("#result_list td.field-status_badge").all()[:5]:
        assert text_lines(badge) == 1  # "disabled", never "disable|d"
    vibes.refresh_from_db()
    assert vibes.status == Connection.Status.ACTIVE
    page.goto(f"{live_server.url}/admin/integrations/connection/{vibes.pk}/change/")
    expect(page.locator("#content-main")).to_contain_text(f"/api/webhooks/vibes/{vibes.inbound_token}/")
    shot(page, 5, "vibes-connection")

    call_command(
        "vibes_send_callback", client=client_a.slug, member=amanda.pk, type="subscription_added", url=live_server.url
    )
    event = WebhookEvent.objects.get(connection=vibes)
    assert event.status == "processed"
    page.goto(f"{live_server.url}/admin/integrations/webhookevent/")
    newest = page.locator("#result_list tbody tr").first
    expect(newest.locator("td.field-status")).to_have_text("Processed")
    assert text_lines(newest.locator("td.field-status")) == 1  # a status is never broken inside its word
    shot(page, 5, "webhook-events")
    page.goto(f"{live_server.url}/admin/integrations/webhookevent/{event.pk}/change/")
    shot(page, 5, "webhook-event")
    page.goto(f"{live_server.url}/admin/members/member/{amanda.pk}/change/")
    expect(page.locator("#content-main")).to_contain_text("1234")  # the Vibes list the callback subscribed her to
    shot(page, 5, "member")


# --- Branded calls with First Orion ENGAGE --------------------------------------------------------------------------


def test_journey_6_a_first_orion_push_from_a_segment(
    page, live_server, fo_simulator, fo_connection, content, client_a, eager_celery
):
    """Segments, Push branded call content…: choose the content, see who it reaches, push; the push is sent."""
    members = members_of(client_a, 3)
    MemberFactory(client=client_a, first_name="Nophone", email="nophone@example.com", phone="", opted_in=True)
    segment = Segment.objects.create(client=client_a, name="Order ready callers")
    add_members(segment, Member.objects.filter(client=client_a))
    page.goto(f"{live_server.url}/admin/members/segment/")
    run_action(page, "push_segment_content", segment.pk)
    expect(page.locator("#content-main")).to_contain_text("Choose the program content")
    page.select_option("select[name=program_content]", str(content.pk))
    page.click("button[name=push_step][value=preview]")
    expect(page.locator("#content-main")).to_contain_text("no mobile number")
    shot(page, 6, "push-confirmation")
    assert same_size(*page.locator("#content-main .submit-row .button").all())
    page.click("button[name=push_step][value=confirm]")
    expect(page.locator(".messagelist")).to_contain_text("Follow its progress")
    push = Push.objects.get(client=client_a)
    push.refresh_from_db()
    assert (push.status, push.destinations) == ("sent", len(members))
    page.goto(f"{live_server.url}/admin/first_orion/push/{push.pk}/change/")
    expect(page.locator("#content-main")).to_contain_text("batches sent")
    shot(page, 6, "push")
    page.goto(f"{live_server.url}/admin/first_orion/push/")
    shot(page, 6, "pushes")
    assert text_lines(page.locator("#result_list tbody tr", has_text="Order ready").locator("td.field-source")) == 1


# --- Bazaarvoice reviews earn points --------------------------------------------------------------------------------


def test_journey_7_bazaarvoice_pull_now(page, live_server, bazaarvoice_connection, client_a, eager_celery):
    """The connection's page, Pull now…, Yes: the reviews are recorded and their reviewers rewarded once."""
    ensure_schedules()
    bazaarvoice_simulator.generate(10, days=1)
    change = f"{live_server.url}/admin/integrations/connection/{bazaarvoice_connection.pk}/change/"
    page.goto(change)
    expect(page.locator("#content-main")).to_contain_text("Next run due")
    page.get_by_role("link", name="Pull now…").click()
    shot(page, 7, "pull-now-confirmation")
    page.get_by_role("button", name="Yes, pull now").click()
    expect(page.locator(".messagelist")).to_contain_text("Queued: a pull")
    expect(page.locator("#content-main")).to_contain_text("Pulled 10 reviews")
    shot(page, 7, "connection-after-pull")
    assert Review.objects.filter(client=client_a).count() == 10
    page.goto(f"{live_server.url}/admin/bazaarvoice/review/")
    expect(page.locator("#result_list tbody tr").first).to_be_visible()
    shot(page, 7, "reviews")
    page.goto(f"{live_server.url}/admin/members/member/?client={client_a.pk}")
    shot(page, 7, "members")
    awarded = Review.objects.filter(client=client_a, outcome=Review.Outcome.AWARDED).count()
    assert len(annex_cloud_simulator.state.points) == awarded


# --- SessionM lifecycle messaging -----------------------------------------------------------------------------------


def test_journey_8_sessionm_offers(page, live_server, sessionm_sandbox, client_a):
    """Read SessionM wallets (Run now on Jobs): a new offer in a member's wallet is listed on the member's page and
    under SessionM offers, with its offer_issued event."""
    ConnectionFactory(
        client=client_a, vendor="sessionm", environment=Connection.Environment.SANDBOX,
        status=Connection.Status.ACTIVE, secrets=dict(sessionm_simulator.DEMO_SECRETS),
        settings=dict(sessionm_simulator.DEMO_SETTINGS),
    )  # fmt: skip
    [amanda] = members_of(client_a, 1)
    sync.record_change(amanda, {"email", "phone", "first_name", "opted_in"}, {})
    sync.reconcile(amanda.pk, "sessionm")
    amanda.refresh_from_db()
    user_id = amanda.sessionm_profile.user_id
    sessionm_simulator.state.wallets.setdefault(user_id, [])
    sessionm_simulator.add_offer({"user_id": user_id, "name": "Free fries with any burger", "days": 30})
    ensure_schedules()
    run_now_on_jobs_page(page, live_server.url, "Read SessionM wallets")
    assert scan_offers(client_a.pk)["members"] == 1  # what the queued run does for this client
    page.goto(f"{live_server.url}/admin/sessionm/sessionmoffer/")
    expect(page.locator("#result_list tbody tr", has_text="Free fries with any burger")).to_have_count(1)
    shot(page, 8, "offers")
    page.goto(f"{live_server.url}/admin/members/member/{amanda.pk}/change/")
    expect(page.locator("#content-main")).to_contain_text("Free fries with any burger")
    shot(page, 8, "member")
    page.goto(f"{live_server.url}/admin/members/loyaltyevent/?event_type__exact=offer_issued")
    expect(page.locator("#result_list tbody tr", has_text="Amanda")).to_have_count(1)
    shot(page, 8, "offer-issued-events")
    assert SessionMOffer.objects.filter(member=amanda).count() == 1


# --- Finding your way in the admin ----------------------------------------------------------------------------------


def test_journey_9_the_dashboard(page, live_server, sandbox_attentive_connection, client_a):
    """The dashboard puts trouble first, a card per connection with what to do next, then charts of the window."""
    ConnectionFactory(client=client_a, vendor="vibes", status=Connection.Status.DRAFT)
    page.goto(f"{live_server.url}/admin/")
    dashboard = page.locator("#dashboard")
    expect(page.locator(".needs-attention-box")).to_be_visible()
    expect(dashboard).to_contain_text(client_a.name)
    expect(page.locator(".card-draft").first).to_contain_text("Save and verify")
    expect(page.locator(".chart-svg").first).to_be_visible()
    expect(page.locator(".tick-label").first).to_be_visible()  # a scale with values
    shot(page, 9, "dashboard")
    page.get_by_role("link", name="7 days").first.click()
    expect(page.locator(".chart-svg").first).to_be_visible()
    shot(page, 9, "dashboard-7-days")


def test_journey_10_the_jobs_page(page, live_server, client_a):
    """Jobs lists every job in words with its next run; rescheduling previews the next five runs."""
    ensure_schedules()
    page.goto(f"{live_server.url}/admin/jobs/")
    expect(page.locator("#jobs")).to_contain_text("Every minute")
    shot(page, 10, "jobs")
    page.locator("#jobs tr", has_text="Prune old records").get_by_role("link", name="Change schedule").click()
    page.check("input[name=kind][value=daily]")
    page.fill("#id_daily_at", "04:30")
    page.click("input[name=preview]")
    expect(page.locator("#next-runs li")).to_have_count(5)
    shot(page, 10, "schedule-preview")
    page.click("input[name=save]")
    expect(page.locator(".messagelist")).to_contain_text("Prune old records")
    shot(page, 10, "jobs-rescheduled")


# --- A member's timeline --------------------------------------------------------------------------------------------


def test_journey_11_the_member_timeline(page, live_server, sandbox_attentive_connection, attentive_sandbox, client_a):
    """Find the member by e-mail, open her Timeline: the sent message, the held one with its reason and the call."""
    client_a.time_zone = "America/New_York"
    client_a.save()
    MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=sandbox_attentive_connection,
        text="Hi {first_name}, you earned {points} points!",
    )  # fmt: skip
    [amanda] = members_of(client_a, 1)
    ChannelSubscription.objects.create(member=amanda, vendor="attentive", channel="TEXT", state="subscribed")
    for n in (1, 2):
        LoyaltyEventFactory(
            client=client_a, member=amanda, external_id=f"order-{n}", event_type="points_earned", data={"points": 50}
        )
        if n == 2:
            attentive_sandbox.fail, attentive_sandbox.fail_path, attentive_sandbox.fail_times = "401", "messages", 99
        dispatch_messages(client_id=client_a.pk)
    page.goto(f"{live_server.url}/admin/members/member/")
    page.fill("#searchbar", amanda.email)
    page.press("#searchbar", "Enter")
    row = page.locator("#result_list tbody tr", has_text="Amanda")
    expect(row).to_have_count(1)
    shot(page, 11, "member-search")
    row.get_by_role("link", name="Timeline").click()
    expect(page.locator("#timeline tr.timeline-message", has_text="held")).to_contain_text("legacy messages token")
    expect(page.locator("#timeline tr.timeline-message", has_text="sent")).to_have_count(1)
    shot(page, 11, "timeline")
