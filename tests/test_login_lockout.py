"""Failed admin log-ins lock out (django-axes): five wrong passwords for one username from one address refuse that
pair for the cool-off, even with the right password; the page says what to do; a site admin unlocks it."""

from __future__ import annotations

from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client as HttpClient
from django.utils import timezone

from tests.factories import PASSWORD, SiteAdminFactory

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


def attempt(http: HttpClient, username: str, password: str, address: str = "203.0.113.5"):
    return http.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=address)


@pytest.fixture
def admin_user():
    return SiteAdminFactory(username="locky")


def fail(http: HttpClient, username: str, times: int, address: str = "203.0.113.5") -> list[int]:
    return [attempt(http, username, "wrong-password", address).status_code for _ in range(times)]


def test_the_sixth_attempt_is_refused_even_with_the_right_password(admin_user, settings):
    assert settings.AXES_FAILURE_LIMIT == 5
    http = HttpClient()
    # The form again with its error four times; the fifth failure locks and says so.
    assert fail(http, "locky", 5) == [200, 200, 200, 200, 429]
    response = attempt(http, "locky", PASSWORD)
    assert response.status_code == 429
    page = response.content.decode()
    assert "Log-in locked" in page and "locky" in page and "Annex Cloud Integration Portal" in page
    assert "axes_reset_username locky" in page and "0:15:00" in page
    assert "_auth_user_id" not in http.session


def test_four_failures_then_the_right_password_logs_in_and_starts_the_count_again(admin_user):
    http = HttpClient()
    assert fail(http, "locky", 4) == [200] * 4
    assert attempt(http, "locky", PASSWORD).status_code == 302
    http.logout()
    assert fail(http, "locky", 4) == [200] * 4  # the success reset the count: four more are not a lockout yet
    assert attempt(http, "locky", PASSWORD).status_code == 302


def test_the_lock_is_per_username_and_address(admin_user):
    fail(HttpClient(), "locky", 5, address="203.0.113.5")
    # The same user from another address, and another user from the locked address, still log in.
    assert attempt(HttpClient(), "locky", PASSWORD, address="198.51.100.9").status_code == 302
    SiteAdminFactory(username="other")
    assert attempt(HttpClient(), "other", PASSWORD, address="203.0.113.5").status_code == 302


def test_a_site_admin_unlocks_with_axes_reset(admin_user):
    http = HttpClient()
    fail(http, "locky", 5)
    assert attempt(http, "locky", PASSWORD).status_code == 429
    call_command("axes_reset")
    assert attempt(http, "locky", PASSWORD).status_code == 302


def test_axes_reset_username_unlocks_one_user(admin_user):
    http = HttpClient()
    fail(http, "locky", 5)
    call_command("axes_reset_username", "locky")
    assert attempt(http, "locky", PASSWORD).status_code == 302


def test_the_cool_off_ends_the_lock(admin_user, settings):
    http = HttpClient()
    fail(http, "locky", 5)
    AccessAttempt.objects.update(attempt_time=timezone.now() - settings.AXES_COOLOFF_TIME - timedelta(seconds=1))
    assert attempt(http, "locky", PASSWORD).status_code == 302
