"""The console's scripts in headless Chromium under the strict Content-Security-Policy: the sandbox box appears only
for the sandbox environment and fills the form in one click (then "Save and verify" activates over real HTTP); copy
buttons copy; the /sandbox/ page renders."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from integrations.attentive.sandbox import API_KEY
from integrations.models import Connection
from tests.e2e import test_browser
from tests.e2e.test_browser import screenshot
from tests.factories import ClientFactory

pytestmark = pytest.mark.browser
# The logged-in Chromium page of test_browser.py, shared (a fixture is found by its name in this module).
logged_in_page = test_browser.logged_in_page


@pytest.mark.django_db(transaction=True)
def test_fill_with_the_sandbox_credentials_then_save_and_verify(logged_in_page, live_server, attentive_sandbox):
    client = ClientFactory(name="Fill Outfitters")
    page = logged_in_page
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    page.goto(f"{live_server.url}/admin/integrations/client/{client.pk}/attentive/")
    box = page.locator("[data-sandbox-environment]")
    page.select_option("#id_environment", "production")
    expect(box).to_be_hidden()
    page.select_option("#id_environment", "sandbox")
    expect(box).to_be_visible()
    page.click("button[data-sandbox-fill]")
    assert page.input_value("#id_api_key") == API_KEY
    page.fill("#id_sign_up_sources", "132109, Loyalty sign-up")
    page.click("#attentive-activation input[type=submit]")
    expect(page.locator(".messagelist")).to_contain_text("Attentive is active for Fill Outfitters")
    assert Connection.objects.get(client=client, vendor="attentive").secret("api_key") == API_KEY
    assert not [e for e in errors if "Content Security Policy" in e], errors


@pytest.mark.django_db(transaction=True)
def test_a_new_api_token_is_copied_by_its_button(logged_in_page, live_server):
    client = ClientFactory(name="Copy Outfitters")
    page = logged_in_page
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
    page.goto(f"{live_server.url}/admin/integrations/apitoken/add/")
    page.select_option("#id_client", str(client.pk))
    page.fill("#id_name", "shop")
    page.click("input[name=_save]")
    key = page.text_content("#api-token-key")
    # The button's script runs once the page has loaded (a click before that copies nothing), and it says "Copied"
    # for 1.5 s only: a loaded machine can starve the test past that, so the page itself records that it said so.
    page.wait_for_load_state("load")
    page.evaluate(
        """() => {
            const button = document.querySelector("button[data-copy-target=api-token-key]");
            window.saidCopied = false;
            new MutationObserver(() => { window.saidCopied ||= button.textContent === "Copied"; })
                .observe(button, {childList: true, characterData: true, subtree: true});
        }"""
    )
    page.click("button[data-copy-target=api-token-key]")
    page.wait_for_function("window.saidCopied === true", timeout=10_000)
    assert page.evaluate("navigator.clipboard.readText()") == key
    screenshot(page, "api-token-issued")


@pytest.mark.django_db(transaction=True)
def test_the_sandbox_page_renders(logged_in_page, live_server):
    page = logged_in_page
    page.goto(f"{live_server.url}/sandbox/")
    expect(page.locator("#sandbox-attentive")).to_contain_text("sandbox-attentive-key")
    screenshot(page, "sandbox")
