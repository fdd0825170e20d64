"""The console as its users see it, in headless Chromium at 1400 px: a site admin and a client user walk the
dashboard, a connection, the jobs page and the lists; screenshots land in var/screenshots/ (kept by CI); and with
30 rows of long values in every list, no list table is wider than the screen."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from django.contrib import admin
from django.db import connections
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import Page, expect, sync_playwright

from integrations.attentive import sandbox as attentive_simulator
from integrations.models import Client, Connection, JobRun, VendorCall
from members.models import MemberVendorState
from tests.e2e.long_rows import ROWS as LONG_ROWS
from tests.e2e.long_rows import LongRows
from tests.e2e.test_browser import CHROMIUM_ARGS, screenshot
from tests.factories import (
    PASSWORD,
    ClientFactory,
    ClientUserFactory,
    ConnectionFactory,
    MemberFactory,
    MessageTemplateFactory,
    OutboundMessageFactory,
    SegmentFactory,
    SiteAdminFactory,
    WebhookEventFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
VIEWPORT = {"width": 1400, "height": 900}
LONG = "a-rather-long-value-" * 12
LISTS = [
    "/admin/",  # the dashboard, with long check results
    "/admin/jobs/",
    "/admin/integrations/vendorcall/",
    "/admin/integrations/connection/",
    "/admin/integrations/webhookevent/",
    "/admin/integrations/jobrun/",
    "/admin/members/member/",
    "/admin/members/outboundmessage/",
    "/admin/members/loyaltyevent/",
    "/admin/members/segment/",
]


@pytest.fixture
def history():
    """A client whose records hold the long values that used to push columns off-screen."""
    client = ClientFactory(name="Epsilon Eyewear")
    vibes = ConnectionFactory(
        client=client, vendor="vibes", status=Connection.Status.FAILING, last_check_result=f"Vibes said: {LONG}"
    )
    ConnectionFactory(client=client, vendor="attentive", status=Connection.Status.DRAFT)
    for n in range(30):
        VendorCall.objects.create(
            connection=vibes,
            method="PUT",
            url=f"https://public-api.vibescm.com/companies/demo/mobiledb/persons/external/{LONG}{n}",
            status_code=200 if n % 5 else 500,
            latency_ms=40 + n,
            created_at=timezone.now() - timedelta(hours=n),
        )
    member = MemberFactory(client=client, email=f"{LONG}@example.com", first_name=LONG[:90])
    MemberVendorState.objects.create(member=member, vendor="vibes", status="deferred", detail="Vibes is failing")
    OutboundMessageFactory(member=member, body=LONG * 2)
    WebhookEventFactory(connection=vibes, error=LONG)
    JobRun.objects.create(job="members.dispatch_loyalty_messages", client=client, outcome="failed", error=LONG)
    return client


def fill_every_list(client: Client) -> None:
    """30 rows of long values (e-mails, error texts, URLs, names) in every list the admin has, the client's where a
    row belongs to a client: a layout check on near-empty lists proves nothing."""
    rows = LongRows({Client: client})
    for model in admin.site._registry:
        rows.fill(model)


def chromium_page(chromium_path: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Page]:
    """A headless Chromium page at 1400 px, for a fixture to `yield from`; the browser closed after the test."""
    # Playwright's sync API runs an event loop in this thread; the ORM calls the live server makes are in its own.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield browser.new_page(viewport=VIEWPORT)
        connections.close_all()
        browser.close()


@pytest.fixture
def browser_page(live_server, chromium_path, monkeypatch) -> Iterator[Page]:
    yield from chromium_page(chromium_path, monkeypatch)


def log_in(page: Page, base_url: str, username: str) -> None:
    """Logs in at the admin's login page and waits for the dashboard."""
    page.goto(f"{base_url}/admin/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("input[type=submit]")
    page.wait_for_selector("#dashboard")


def every_changelist() -> list[str]:
    """The list page of every model in the admin (vendor apps' included), so a new list is checked too."""
    return [
        reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist") for model in admin.site._registry
    ]


def overflow_px(page: Page) -> float:
    """How far the page or its list table reaches past the right edge of the window, or the table past its own box
    (Django's results box scrolls sideways, hiding columns under the filter sidebar): 0 when it fits."""
    return page.evaluate(
        """() => {
            const table = document.querySelector('#result_list');
            const past = table ? table.getBoundingClientRect().right - window.innerWidth : 0;
            const box = document.querySelector('#changelist-form .results');
            const hidden = box ? box.scrollWidth - box.clientWidth : 0;
            return Math.max(0, document.documentElement.scrollWidth - window.innerWidth, past, hidden);
        }"""
    )


# A list row is at most this many lines of text: a long value is clipped (the whole on hover and on its page),
# never wrapped down the page.
MAX_ROW_LINES = 3


def tallest_cell_lines(page: Page) -> tuple[float, str]:
    """The most lines of text any list cell shows, and that cell's classes (0 and "" without a list): the height of
    what the cell's children show (a clamped box counts as tall as it is drawn), in lines of the cell's text."""
    lines, classes = page.evaluate(
        """() => {
            let worst = [0, ''];
            for (const cell of document.querySelectorAll('#result_list tbody td, #result_list tbody th')) {
                const tops = [], bottoms = [];
                for (const node of cell.childNodes) {
                    let box = null;
                    if (node.nodeType === Node.ELEMENT_NODE) box = node.getBoundingClientRect();
                    else if (node.nodeType === Node.TEXT_NODE && node.textContent.trim()) {
                        const range = document.createRange();
                        range.selectNodeContents(node);
                        box = range.getBoundingClientRect();
                    }
                    if (box && box.height) { tops.push(box.top); bottoms.push(box.bottom); }
                }
                if (!tops.length) continue;
                const style = getComputedStyle(cell);
                const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.2;
                const shown = Math.round((Math.max(...bottoms) - Math.min(...tops)) / line * 10) / 10;
                if (shown > worst[0]) worst = [shown, cell.className];
            }
            return worst;
        }"""
    )
    return lines, classes


def test_a_site_admin_walks_the_dashboard_a_connection_the_jobs_page_and_the_lists(browser_page, live_server, history):
    SiteAdminFactory(username="console-admin")
    page = browser_page
    log_in(page, live_server.url, "console-admin")
    expect(page.locator(".needs-attention-box")).to_contain_text("Epsilon Eyewear")
    draft = page.locator(".card-draft")
    expect(draft).to_contain_text("Save and verify")
    expect(page.locator(".chart-svg").first).to_be_visible()
    screenshot(page, "console-dashboard")

    draft.locator(".next-step a").click()  # the exact form: Attentive's activation page of the client
    expect(page.locator("#attentive-activation")).to_be_visible()
    page.goto(f"{live_server.url}/admin/integrations/connection/{history.connections.get(vendor='vibes').pk}/change/")
    screenshot(page, "console-connection")

    page.goto(f"{live_server.url}/admin/jobs/")
    expect(page.locator("#jobs")).to_contain_text("Send loyalty-action messages")
    screenshot(page, "console-jobs")
    page.locator("#jobs tr", has_text="Prune old records").get_by_role("link", name="Change schedule").click()
    page.check("input[name=kind][value=daily]")
    page.fill("#id_daily_at", "04:30")
    page.click("input[name=preview]")
    expect(page.locator("#next-runs li")).to_have_count(5)
    page.click("input[name=save]")
    expect(page.locator(".messagelist")).to_contain_text("Prune old records")
    page.goto(f"{live_server.url}/admin/integrations/vendorcall/")
    screenshot(page, "console-list-vendor-calls")


def test_a_client_user_sees_their_client(browser_page, live_server, history):
    ClientFactory(name="Zeta Zippers")  # another client: never shown
    ClientUserFactory(username="console-client", client=history)
    page = browser_page
    log_in(page, live_server.url, "console-client")
    expect(page.locator("#dashboard")).to_contain_text("Epsilon Eyewear")
    expect(page.locator("#dashboard")).not_to_contain_text("Zeta Zippers")
    expect(page.locator("#nav-sidebar, #content-related, body").first).not_to_contain_text("Jobs & schedules")
    screenshot(page, "console-client-dashboard")
    page.goto(f"{live_server.url}/admin/members/member/")
    expect(page.locator(".chip-deferred")).to_contain_text("deferred")
    screenshot(page, "console-client-members")


@pytest.mark.parametrize("user", ["site admin", "client user"])
def test_every_list_fits_the_window_with_30_rows_of_long_values(browser_page, live_server, history, user):
    if user == "site admin":
        SiteAdminFactory(username="console-admin")
        username = "console-admin"
    else:
        ClientUserFactory(username="console-client", client=history)
        username = "console-client"
    fill_every_list(history)
    log_in(browser_page, live_server.url, username)
    too_wide, too_tall, thin = [], [], []
    for path in dict.fromkeys([*LISTS, *every_changelist()]):
        answer = browser_page.goto(f"{live_server.url}{path}")
        if answer is None or answer.status in (403, 404):
            continue  # not a list this user may open
        is_list = browser_page.locator("#changelist").count() > 0  # the dashboard and the Jobs page are not
        shown = browser_page.locator("#result_list tbody tr").count()
        if user == "site admin" and is_list and shown < LONG_ROWS:
            thin.append(f"{path}: {shown} rows")  # a layout measured on a near-empty list proves nothing
        if excess := overflow_px(browser_page):
            too_wide.append(f"{path} by {excess:.0f} px")
            screenshot(browser_page, f"overflow-{username}-" + path.strip("/").replace("/", "-"))
        lines, column = tallest_cell_lines(browser_page)
        if lines > MAX_ROW_LINES:
            too_tall.append(f"{path} {column}: {lines} lines")
    assert thin == [], f"lists measured without their {LONG_ROWS} long rows: {thin}"
    assert too_wide == [], f"wider than 1400 px for a {user}: {too_wide}"
    assert too_tall == [], f"rows taller than {MAX_ROW_LINES} lines for a {user}: {too_tall}"


def test_every_list_still_fits_a_1280_px_window(browser_page, live_server, history):
    """The narrower laptop screen: the same lists, the same long rows, no sideways scroll at 1280 px either."""
    SiteAdminFactory(username="narrow-admin")
    fill_every_list(history)
    browser_page.set_viewport_size({"width": 1280, "height": 800})
    log_in(browser_page, live_server.url, "narrow-admin")
    too_wide = []
    too_tall = []
    for path in dict.fromkeys([*LISTS, *every_changelist()]):
        browser_page.goto(f"{live_server.url}{path}")
        if excess := overflow_px(browser_page):
            too_wide.append(f"{path} by {excess:.0f} px")
            screenshot(browser_page, "overflow-1280-" + path.strip("/").replace("/", "-"))
        lines, column = tallest_cell_lines(browser_page)
        if lines > MAX_ROW_LINES:
            too_tall.append(f"{path} {column}: {lines} lines")
    assert too_wide == [], f"wider than 1280 px: {too_wide}"
    assert too_tall == [], f"rows taller than {MAX_ROW_LINES} lines at 1280 px: {too_tall}"


def test_a_client_user_adds_members_to_a_segment_and_downloads_it_as_csv(browser_page, live_server, history):
    """README "Segments and CSV export", as the client's own user: members into a segment, then the CSV."""
    ClientUserFactory(username="console-exporter", client=history)
    segment = SegmentFactory(client=history, name="VIP reviewers")
    page = browser_page
    log_in(page, live_server.url, "console-exporter")
    page.goto(f"{live_server.url}/admin/members/member/")
    page.check("#action-toggle")
    page.select_option("select[name=action]", "add_to_segment")
    page.click("button[name=index]")
    page.select_option("select[name=segment]", str(segment.pk))
    page.locator("input[type=submit]").last.click()
    expect(page.locator(".messagelist")).to_contain_text("VIP reviewers")
    page.goto(f"{live_server.url}/admin/members/segment/")
    page.check(f"input[name=_selected_action][value='{segment.pk}']")
    page.select_option("select[name=action]", "export_csv")
    with page.expect_download() as download:
        page.click("button[name=index]")
    body = Path(download.value.path()).read_text(encoding="utf-8")
    # Annex Cloud's loyalty opt-in is its own last column, apart from the SMS opt-in (README "Segments and CSV export").
    assert body.splitlines()[0] == '"phone","email","first_name","last_name","member_id","loyalty_opt_in"'
    assert len(body.splitlines()) == 1 + history.members.count()
    screenshot(page, "console-client-segments")


def test_a_site_admin_subscribes_a_member_adds_a_loyalty_event_and_the_sms_goes_out(
    browser_page, live_server, sandbox_attentive_connection, eager_celery, client_a
):
    """README "Trying the Attentive journey", steps 2 and 3, in the browser: subscribe, add a loyalty event, run the
    message job from the Jobs page, and see the message sent (and received by the Attentive simulator)."""
    member = MemberFactory(client=client_a, first_name="Amanda", opted_in=True)
    MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=sandbox_attentive_connection,
        text="Hi {first_name}, you earned {points} points. Balance: {points_balance}.",
    )  # fmt: skip
    SiteAdminFactory(username="journey-admin")
    page = browser_page
    log_in(page, live_server.url, "journey-admin")

    page.goto(f"{live_server.url}/admin/members/member/")
    page.check(f"input[name=_selected_action][value='{member.pk}']")
    page.select_option("select[name=action]", "subscribe_at_attentive")
    page.click("button[name=index]")
    if page.locator("input[name=confirm]").count():  # a confirmation page comes first for several members
        page.locator("#content-main input[type=submit]").click()
    expect(page.locator(".messagelist")).to_be_visible()
    assert (member.phone, "TEXT") in attentive_simulator.state.subscribed

    page.goto(f"{live_server.url}/admin/members/loyaltyevent/add/")
    page.select_option("#id_client", str(client_a.pk))
    page.fill("#id_member", str(member.pk))
    page.fill("#id_external_id", "demo-order-1001")
    page.select_option("#id_event_type", "points_earned")
    page.fill("#id_data", '{"points": 50, "balance": 1250}')
    page.click("input[name=_save]")
    expect(page.locator(".messagelist")).to_contain_text("was added successfully")

    page.goto(f"{live_server.url}/admin/jobs/")
    page.locator("#jobs tr", has_text="Send loyalty-action messages").get_by_role("button", name="Run now").click()
    expect(page.locator(".messagelist")).to_contain_text("is queued")
    page.goto(f"{live_server.url}/admin/members/outboundmessage/")
    expect(page.locator("#result_list")).to_contain_text("Sent")
    assert attentive_simulator.state.messages == [
        {"to": member.phone, "body": "Hi Amanda, you earned 50 points. Balance: 1250."}
    ]
    screenshot(page, "console-journey-message-sent")


def test_a_client_user_imports_members_from_a_csv_and_sees_the_bad_line(browser_page, live_server, history):
    """README "Members, Import from CSV" as the client's user: good rows kept, a bad row reported by its line."""
    ClientUserFactory(username="console-importer", client=history)
    page = browser_page
    log_in(page, live_server.url, "console-importer")
    page.goto(f"{live_server.url}/admin/members/member/")
    page.get_by_role("link", name="Import from CSV").click()
    page.select_option("#id_client", str(history.pk))
    rows = b"email,phone,first_name,status\nzoe@example.com,(404) 555-0101,Zoe,active\nbad@example.com,,Bad,frozen\n"
    page.set_input_files("#id_file", files=[{"name": "members.csv", "mimeType": "text/csv", "buffer": rows}])
    page.locator("#content-main input[type=submit]").click()
    expect(page.locator("#import-errors")).to_contain_text("3")  # the line of the unknown status
    assert history.members.filter(email="zoe@example.com", phone="+14045550101").exists()
    assert not history.members.filter(email="bad@example.com").exists()
    screenshot(page, "console-client-import")


@pytest.mark.parametrize("width", [1024, 768])
def test_the_header_and_the_jobs_page_read_at_narrow_widths(browser_page, live_server, history, width):
    """A tablet or a half-screen window: the time zone chooser stays whole in the header, and the Jobs page's
    buttons are a finger wide and never cut off."""
    SiteAdminFactory(username="narrow-admin")
    browser_page.set_viewport_size({"width": width, "height": 900})
    log_in(browser_page, live_server.url, "narrow-admin")
    browser_page.goto(f"{live_server.url}/admin/jobs/")
    screenshot(browser_page, f"console-jobs-{width}")
    chooser = browser_page.locator("#zone-choice").bounding_box()
    assert chooser is not None and chooser["x"] >= 0 and chooser["x"] + chooser["width"] <= width
    buttons = browser_page.locator("#jobs button")
    assert buttons.count() >= 2
    for index in range(buttons.count()):
        box = buttons.nth(index).bounding_box()
        assert box is not None and box["height"] >= 24 and box["width"] >= 44, box
        assert box["x"] + box["width"] <= browser_page.evaluate("document.documentElement.scrollWidth")
    assert browser_page.evaluate("document.documentElement.scrollWidth") <= width
