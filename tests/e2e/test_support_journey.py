"""Support's journey in headless Chromium at 1400 px (issue 24): "why didn't she get the SMS?" — find the member by
her mobile number as she says it, open her timeline, read the held message's reason and open the vendor call behind
it. The held message is made by the real flow: Attentive's simulator, over HTTP, refuses the messages token."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from playwright.sync_api import Page, expect

from integrations.models import VendorCall
from members.messaging import dispatch_messages
from members.models import ChannelSubscription, Member
from tests.e2e.test_browser import screenshot
from tests.e2e.test_console_journeys import chromium_page, log_in
from tests.factories import (
    LoyaltyEventFactory,
    MemberFactory,
    MessageTemplateFactory,
    SiteAdminFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
PHONE = "+17707651750"
AS_SHE_SAYS_IT = "(770) 765-1750"
TOKEN_REFUSED = "ask Attentive to activate the legacy messages token"


@pytest.fixture
def browser_page(live_server, chromium_path, monkeypatch) -> Iterator[Page]:
    yield from chromium_page(chromium_path, monkeypatch)


@pytest.fixture
def held_member(sandbox_attentive_connection, attentive_sandbox, client_a) -> Member:
    """Dana got her first SMS; the second is held: Attentive refused the messages token (401)."""
    client_a.time_zone = "America/New_York"
    client_a.save()
    MessageTemplateFactory(
        client=client_a, event_type="points_earned", connection=sandbox_attentive_connection,
        text="Hi {first_name}, you earned {points} points!",
    )  # fmt: skip
    member = MemberFactory(client=client_a, phone=PHONE, first_name="Dana", last_name="Whitfield", opted_in=True)
    ChannelSubscription.objects.create(member=member, vendor="attentive", channel="TEXT", state="subscribed")
    for n in (1, 2):
        LoyaltyEventFactory(
            client=client_a, member=member, external_id=f"order-{n}", event_type="points_earned", data={"points": 50}
        )
        if n == 2:
            attentive_sandbox.fail, attentive_sandbox.fail_path, attentive_sandbox.fail_times = "401", "messages", 99
        dispatch_messages()
    assert len(attentive_sandbox.messages) == 1  # the simulator took the first SMS only
    return member


def overflow_px(page: Page) -> float:
    return page.evaluate("() => Math.max(0, document.documentElement.scrollWidth - window.innerWidth)")


def test_support_finds_the_member_by_phone_and_sees_why_the_sms_did_not_go_out(browser_page, live_server, held_member):
    SiteAdminFactory(username="support")
    page = browser_page
    log_in(page, live_server.url, "support")

    # Found by her number as she says it.
    page.goto(f"{live_server.url}/admin/members/member/")
    page.fill("#searchbar", AS_SHE_SAYS_IT)
    page.press("#searchbar", "Enter")
    row = page.locator("#result_list tbody tr", has_text="Dana Whitfield")
    expect(row).to_have_count(1)
    row.get_by_role("link", name="Timeline").click()

    # Her timeline: the held message with its reason, in New York time, named.
    expect(page.locator("#timeline-zone")).to_have_text("America/New_York")
    held = page.locator("#timeline tr.timeline-message", has_text="held")
    expect(held).to_have_count(1)
    expect(held).to_contain_text(TOKEN_REFUSED)
    expect(page.locator("#timeline tr.timeline-message", has_text="sent")).to_have_count(1)
    assert overflow_px(page) == 0
    screenshot(page, "support-journey-timeline")

    # The vendor call behind it: the refused request.
    held.locator("a.timeline-related").click()
    refused = VendorCall.objects.get(status_code=401)
    page.wait_for_url(f"**/admin/integrations/vendorcall/{refused.pk}/change/")
    expect(page.locator("#content")).to_contain_text("401")
    screenshot(page, "support-journey-vendor-call")
