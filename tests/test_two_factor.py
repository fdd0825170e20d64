"""Two-factor log-in for site admins (django-otp TOTP) behind ADMIN_REQUIRE_2FA: off by default; on, a site admin
needs the authenticator's current code as well as the password, a session without one goes back to the log-in
page, client users are not asked, and `add_totp_device` enrols an authenticator. The API applies the same rule to
sessions (403, saying why); a client token is not a session and is not asked."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.test import Client as HttpClient
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.factories import PASSWORD, MemberFactory, SiteAdminFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture
def require_2fa(settings):
    settings.ADMIN_REQUIRE_2FA = True


@pytest.fixture
def admin_with_app():
    admin = SiteAdminFactory(username="two-factor")
    device = TOTPDevice.objects.create(user=admin, name="phone", confirmed=True)
    return admin, device


def code_of(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):06d}"


def log_in(http: HttpClient, username: str, code: str | None = None):
    data = {"username": username, "password": PASSWORD}
    if code is not None:
        data["otp_token"] = code
    return http.post(LOGIN, data)


def test_off_by_default_a_site_admin_logs_in_with_the_password(settings, admin_with_app):
    assert settings.ADMIN_REQUIRE_2FA is False
    http = HttpClient()
    assert log_in(http, "two-factor").status_code == 302
    assert http.get("/admin/").status_code == 200
    assert "One-time code" not in HttpClient().get(LOGIN).content.decode()


def test_on_a_site_admin_needs_the_current_code(require_2fa, admin_with_app):
    _, device = admin_with_app
    http = HttpClient()
    assert "One-time code" in http.get(LOGIN).content.decode()
    without = log_in(http, "two-factor")
    assert without.status_code == 200 and "Enter the one-time code" in without.content.decode()
    wrong = log_in(http, "two-factor", "000000" if code_of(device) != "000000" else "111111")
    assert wrong.status_code == 200 and "wrong or expired" in wrong.content.decode()
    device.refresh_from_db()
    device.throttle_reset()  # the wrong code started the device's growing wait
    assert log_in(http, "two-factor", code_of(device)).status_code == 302
    assert http.get("/admin/").status_code == 200


def test_a_code_is_used_once(require_2fa, admin_with_app):
    _, device = admin_with_app
    code = code_of(device)
    assert log_in(HttpClient(), "two-factor", code).status_code == 302
    replayed = log_in(HttpClient(), "two-factor", code)
    assert replayed.status_code == 200


def test_a_site_admin_without_an_authenticator_is_told_how_to_get_one(require_2fa):
    SiteAdminFactory(username="no-app")
    response = log_in(HttpClient(), "no-app", "123456")
    assert response.status_code == 200
    assert "manage.py add_totp_device no-app" in response.content.decode()


def test_client_users_log_in_with_the_password_alone(require_2fa, user_a):
    http = HttpClient()
    assert log_in(http, "alice").status_code == 302
    assert http.get("/admin/").status_code == 200


def test_a_session_from_before_goes_back_to_the_log_in_page(require_2fa, admin_with_app):
    admin, _ = admin_with_app
    http = HttpClient()
    http.force_login(admin)  # a password-only session
    response = http.get("/admin/")
    assert response.status_code == 302 and response["Location"].startswith("/admin/login/")


def test_add_totp_device_enrols_a_new_authenticator_and_drops_the_old(admin_with_app):
    admin, old = admin_with_app
    out = StringIO()
    call_command("add_totp_device", "two-factor", stdout=out)
    printed = out.getvalue()
    new = TOTPDevice.objects.get(user=admin)
    assert new.pk != old.pk and new.confirmed
    assert "otpauth://totp/" in printed and "not shown again" in printed


# --- The API: the same rule for every session-authenticated endpoint -----------------------------------------------

MEMBERS = "/api/members/"


@pytest.fixture
def someone_elses_member(client_a):
    return MemberFactory(client=client_a, email="private-member@example.com")


def test_the_api_refuses_a_site_admins_session_opened_without_the_code(
    require_2fa, admin_with_app, someone_elses_member
):
    admin, _ = admin_with_app
    http = HttpClient()
    http.force_login(admin)  # a password-only session, as from before 2FA was turned on
    for path in (MEMBERS, "/api/clients/", "/api/connections/"):
        response = http.get(path)
        assert response.status_code == 403, path
        assert "one-time code" in response.json()["detail"]
    assert "private-member@example.com" not in http.get(MEMBERS).content.decode()


def test_the_api_refuses_such_a_session_on_writes_too(require_2fa, admin_with_app, client_a):
    admin, _ = admin_with_app
    http = HttpClient(enforce_csrf_checks=False)
    http.force_login(admin)
    response = http.post(
        MEMBERS, {"client": client_a.slug, "email": "new@example.com"}, content_type="application/json"
    )
    assert response.status_code == 403 and "one-time code" in response.json()["detail"]
    assert not client_a.members.filter(email="new@example.com").exists()


def test_the_api_accepts_a_session_verified_by_the_code(require_2fa, admin_with_app, someone_elses_member):
    _, device = admin_with_app
    http = HttpClient()
    assert log_in(http, "two-factor", code_of(device)).status_code == 302
    response = http.get(MEMBERS)
    assert response.status_code == 200
    assert "private-member@example.com" in response.content.decode()


def test_a_client_token_is_not_asked_for_a_code(require_2fa, api_client_for, client_a, someone_elses_member):
    response = api_client_for(client_a).get(MEMBERS)
    assert response.status_code == 200 and response.json()["count"] == 1


def test_a_client_users_session_is_not_asked_for_a_code(require_2fa, user_a, someone_elses_member):
    http = HttpClient()
    assert log_in(http, "alice").status_code == 302
    assert http.get(MEMBERS).status_code == 200


def test_off_the_api_takes_a_password_only_session(settings, admin_with_app):
    assert settings.ADMIN_REQUIRE_2FA is False
    admin, _ = admin_with_app
    http = HttpClient()
    http.force_login(admin)
    assert http.get(MEMBERS).status_code == 200


def test_a_token_sent_with_such_a_session_acts_as_the_token(
    require_2fa, admin_with_app, api_client_for, client_a, client_b
):
    """The token is read first: an unverified admin session in the same browser neither blocks nor widens it."""
    admin, _ = admin_with_app
    MemberFactory(client=client_b, email="beta-member@example.com")
    api = api_client_for(client_a)
    api.force_login(admin)
    response = api.get(MEMBERS)
    assert response.status_code == 200
    assert "beta-member@example.com" not in response.content.decode()
