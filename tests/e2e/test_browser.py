"""A person's view: log in to the admin in headless Chromium and see the dashboard."""

from __future__ import annotations

from pathlib import Path

import pytest

from integrations.models import Connection
from tests.factories import PASSWORD, ClientFactory, ConnectionFactory, SiteAdminFactory

pytestmark = pytest.mark.browser
SCREENSHOTS = Path(__file__).resolve().parents[2] / "var" / "screenshots"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def test_site_admin_logs_in_and_sees_the_dashboard(live_server, chromium_path, monkeypatch):
    admin = SiteAdminFactory(username="browser-admin")
    client = ClientFactory(name="Gamma Goods")
    ConnectionFactory(client=client, vendor="vibes", status=Connection.Status.FAILING, last_check_result="bad pw")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the live server makes are in its own.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", admin.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        dashboard = page.locator("#dashboard")
        expect(dashboard).to_contain_text("Needs attention")
        expect(dashboard).to_contain_text("Gamma Goods")
        expect(page.locator("tr.failing-connection")).to_contain_text("bad pw")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "dashboard.png"), full_page=True)
        browser.close()
