"""Things a person copies out of the portal are shown whole, with a copy button (static JS, no inline script): the
new API token with a curl line on the real host that works as printed, and Vibes' full callback URL."""

from __future__ import annotations

import html as html_lib
import re
import shlex

import pytest
from django.contrib.staticfiles import finders
from django.urls import reverse

from tests.factories import ConnectionFactory, MemberFactory
from tests.test_content_security_policy import INLINE

pytestmark = pytest.mark.django_db


def test_a_new_token_page_has_copy_buttons_and_a_working_curl_line(admin_http, client, client_a, client_b):
    MemberFactory(client=client_a, email="alpha-member@example.com")
    MemberFactory(client=client_b, email="beta-member@example.com")
    response = admin_http.post(reverse("admin:integrations_apitoken_add"), {"client": client_a.pk, "name": "shop"})
    page = response.content.decode()
    assert response.status_code == 200 and not INLINE.search(page)
    key = re.search(r'<code id="api-token-key">([^<]+)</code>', page).group(1)
    assert 'data-copy-target="api-token-key"' in page and 'data-copy-target="api-token-curl"' in page
    assert "integrations/copy.js" in page and finders.find("integrations/copy.js")
    curl = html_lib.unescape(re.search(r'<pre id="api-token-curl"[^>]*>([^<]+)</pre>', page).group(1))
    words = shlex.split(curl)
    assert words[:2] == ["curl", "-H"] and words[2] == f"Authorization: Token {key}"
    assert words[3] == "http://testserver/api/members/"  # the host the page was opened on
    answer = client.get(words[3].removeprefix("http://testserver"), HTTP_AUTHORIZATION=words[2].split(": ", 1)[1])
    assert answer.status_code == 200
    assert "alpha-member@example.com" in answer.content.decode()
    assert "beta-member" not in answer.content.decode()


def test_the_vibes_callback_url_is_shown_whole_with_a_copy_button(admin_http, client_a):
    connection = ConnectionFactory(client=client_a, vendor="vibes", settings={"company_key": "acme"})
    page = admin_http.get(reverse("admin:integrations_connection_change", args=[connection.pk])).content.decode()
    url = f"http://testserver/api/webhooks/vibes/{connection.inbound_token}/"
    assert f'<code id="vibes-callback-url">{url}</code>' in page
    assert 'data-copy-target="vibes-callback-url"' in page and "integrations/copy.js" in page
    assert "with your host" not in page and not INLINE.search(page)
