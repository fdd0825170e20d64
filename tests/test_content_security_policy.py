"""The Content-Security-Policy (django-csp): on every page, strict (nothing inline), and the pages that matter still
work under it: the admin, its lockout page, and Swagger UI with its start-up script as a file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.staticfiles import finders

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]
INLINE = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>\s*[^<\s]|\son[a-z]+\s*=|\sstyle\s*=|<style", re.IGNORECASE)


def directives(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return dict(part.strip().split(" ", 1) for part in header.split(";") if part.strip())


def test_an_admin_page_carries_the_policy(admin_http):
    response = admin_http.get("/admin/integrations/connection/")
    assert response.status_code == 200
    policy = directives(response)
    assert policy["default-src"] == "'self'"
    assert policy["script-src"] == "'self'" and policy["style-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'" and policy["object-src"] == "'none'"
    assert "unsafe-inline" not in response["Content-Security-Policy"]


def test_the_login_page_and_the_api_carry_it_too(client, api_client_for, client_a):
    assert "default-src 'self'" in client.get("/admin/login/")["Content-Security-Policy"]
    assert "default-src 'self'" in api_client_for(client_a).get("/api/members/")["Content-Security-Policy"]


def test_swagger_ui_loads_its_start_up_script_from_a_file(client):
    page = client.get("/api/docs/")
    html = page.content.decode()
    assert page.status_code == 200 and "Content-Security-Policy" in page
    assert not INLINE.search(html), INLINE.search(html)
    script = re.search(r'<script src="([^"]*script=[^"]*)"', html)
    assert script, "the start-up script is not a file"
    started = client.get(script.group(1).replace("&amp;", "&"))
    assert started.status_code == 200 and "SwaggerUIBundle" in started.content.decode()
    for asset in re.findall(r'(?:src|href)="/static/([^"?]+)"', html):
        assert finders.find(asset), asset  # served by the portal itself, not a CDN


@pytest.mark.parametrize("page", ["/admin/", "/admin/integrations/client/", "/admin/integrations/connection/add/"])
def test_admin_pages_render_without_inline_script_or_style(admin_http, client_a, connection_a, page):
    response = admin_http.get(page)
    assert response.status_code == 200
    match = INLINE.search(response.content.decode())
    assert match is None, match.group(0) if match else ""


def test_the_portals_templates_hold_no_inline_script_handler_or_style():
    # The shared templates, and each vendor's in its package.
    folders = [ROOT / "templates", *ROOT.glob("integrations/*/templates")]
    assert ROOT / "integrations/attentive/templates" in folders
    for template in (template for folder in folders for template in folder.rglob("*.html")):
        match = INLINE.search(template.read_text())
        assert match is None, f"{template.relative_to(ROOT)}: {match.group(0) if match else ''}"


def test_report_only_is_a_setting_away():
    # The policy is enforced unless CSP_REPORT_ONLY is set; the test settings enforce it.
    assert settings.CONTENT_SECURITY_POLICY["DIRECTIVES"]["default-src"] == ["'self'"]
