"""A person's view in headless Chromium: log in and see the dashboard; activate Attentive for a client."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from django.db import connections
from playwright.sync_api import expect, sync_playwright

from integrations.attentive.sandbox import API_KEY, LEGACY_TOKEN
from integrations.models import Connection
from tests.factories import PASSWORD, ClientFactory, ConnectionFactory, SiteAdminFactory

pytestmark = pytest.mark.browser
# SCREENSHOT_DIR: CI runs the suite on two databases at once, each keeping its own screenshots.
SCREENSHOTS = Path(os.environ.get("SCREENSHOT_DIR") or Path(__file__).resolve().parents[2] / "var" / "screenshots")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture
def logged_in_page(live_server, chromium_path, monkeypatch):
    """A Chromium page logged in to the admin as a site admin."""
    admin = SiteAdminFactory(username="browser-admin")
    # Playwright's sync API runs an event loop in this thread; the ORM calls the live server makes are in its own.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        page = browser.new_page()
        page.goto(f"{live_server.url}/admin/")
        page.fill("#id_username", admin.username)
        page.fill("#id_password", PASSWORD)
        page.click("input[type=submit]")
        page.wait_for_selector("#dashboard")
        yield page
        # ORM calls made while Playwright runs use a connection of their own context: close it here, or it
        # outlives the test database.
        connections.close_all()
        browser.close()


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


@pytest.mark.django_db(transaction=True)
def test_site_admin_logs_in_and_sees_the_dashboard(logged_in_page, live_server):
    client = ClientFactory(name="Gamma Goods")
    ConnectionFactory(client=client, vendor="vibes", status=Connection.Status.FAILING, last_check_result="bad pw")
    page = logged_in_page
    page.goto(f"{live_server.url}/admin/")
    dashboard = page.locator("#dashboard")
    expect(dashboard).to_contain_text("Needs attention")
    expect(dashboard).to_contain_text("Gamma Goods")
    expect(page.locator("tr.failing-connection")).to_contain_text("bad pw")
    screenshot(page, "dashboard")


@pytest.mark.django_db(transaction=True)
def test_site_admin_activates_attentive_for_a_client(logged_in_page, live_server, attentive_sandbox):
    client = ClientFactory(name="Demo Outfitters")
    page = logged_in_page
    page.goto(f"{live_server.url}/admin/integrations/client/{client.pk}/change/")
    page.click("#client-page-attentive")
    page.select_option("#id_environment", "sandbox")
    page.fill("#id_api_key", API_KEY)
    page.fill("#id_legacy_token", LEGACY_TOKEN)
    page.fill("#id_sign_up_sources", "132109, Loyalty sign-up")
    page.click("#attentive-activation input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Attentive is active for Demo Outfitters")
    screenshot(page, "attentive-activated")
    assert Connection.objects.get(client=client, vendor="attentive").status == Connection.Status.ACTIVE


@pytest.mark.django_db(transaction=True)
def test_admin_and_swagger_ui_work_under_the_content_security_policy(logged_in_page, live_server):
    """Chromium enforces the policy: no page the site admin opens has a script or style refused, and Swagger UI
    (sidecar files, start-up script as a file) renders the API."""
    client = ClientFactory(name="Delta Deals")
    connection = ConnectionFactory(client=client)
    page = logged_in_page
    refused: list[str] = []
    page.on("console", lambda m: refused.append(m.text) if "Content Security Policy" in m.text else None)
    for path in [
        "/admin/",
        "/admin/integrations/client/",
        f"/admin/integrations/client/{client.pk}/change/",
        f"/admin/integrations/client/{client.pk}/attentive/",
        f"/admin/integrations/connection/{connection.pk}/change/",
        "/admin/integrations/connection/add/?vendor=vibes",
        "/admin/members/member/",
    ]:
        response = page.goto(f"{live_server.url}{path}")
        assert response is not None and response.status == 200, path
        assert "default-src 'self'" in response.headers["content-security-policy"]
    page.goto(f"{live_server.url}/api/docs/")
    expect(page.locator(".swagger-ui .info .title")).to_contain_text("Annex Cloud Integration Portal API")
    expect(page.locator(".opblock-summary-path").first).to_be_visible()
    screenshot(page, "swagger-ui")
    assert refused == []
