"""A connection whose secrets no configured key opens (issue 21, finding 12) makes no vendor call: the work waits
(deferred, saying why), the connection is marked failing with the reason for the admins, and callbacks that need a
secret to be checked are answered 503 so the vendor sends them again once the secrets are back. The vendor is a
local fake server, which must receive nothing."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.urls import reverse
from pytest_httpserver import HTTPServer

from integrations.connections import SecretsUnreadable, api_for
from integrations.models import Connection, WebhookEvent
from integrations.sessionm.models import SessionMProfile
from integrations.sessionm.transactions import send_transaction
from integrations.vibes.api import VibesAPI
from members import sync
from members.models import MemberVendorState
from tests.factories import ConnectionFactory, MemberFactory

pytestmark = pytest.mark.django_db
OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def sealed_with_a_dropped_key(settings):
    """Connections created in the test are sealed with OLD_KEY; `drop()` leaves only NEW_KEY configured."""
    settings.FIELD_ENCRYPTION_KEYS = [OLD_KEY]

    def drop() -> None:
        settings.FIELD_ENCRYPTION_KEYS = [NEW_KEY]

    return drop


def unreadable(connection: Connection) -> Connection:
    reloaded = Connection.objects.get(pk=connection.pk)
    assert reloaded.secrets_unreadable
    return reloaded


def test_no_api_is_built_for_unreadable_secrets_and_the_connection_says_why(
    httpserver: HTTPServer, client_a, sealed_with_a_dropped_key
):
    connection = ConnectionFactory(
        client=client_a, vendor="vibes", base_url=httpserver.url_for("/"), settings={"company_key": "acme"},
        secrets={"api_username": "user", "api_password": "password-0123456789"},
    )  # fmt: skip
    sealed_with_a_dropped_key()
    with pytest.raises(SecretsUnreadable, match="cannot be decrypted"):
        api_for(unreadable(connection), VibesAPI, company_key="acme", username="", password="")
    connection.refresh_from_db()
    assert connection.status == Connection.Status.FAILING and "cannot be decrypted" in connection.last_check_result
    assert "FIELD_ENCRYPTION_KEYS" in connection.last_check_result
    assert httpserver.log == []


def test_vibes_sync_waits_without_calling_vibes(httpserver: HTTPServer, client_a, sealed_with_a_dropped_key):
    ConnectionFactory(
        client=client_a, vendor="vibes", base_url=httpserver.url_for("/"), settings={"company_key": "acme"},
        secrets={"api_username": "user", "api_password": "password-0123456789"},
    )  # fmt: skip
    member = MemberFactory(client=client_a, phone="+12995551234", opted_in=True)
    sealed_with_a_dropped_key()
    sync.bump(member, "vibes", queue=False)
    result = sync.reconcile(member.pk, "vibes")
    state = MemberVendorState.objects.get(member=member, vendor="vibes")
    assert state.status == MemberVendorState.Status.DEFERRED, (result, state.detail)
    assert "cannot be decrypted" in state.detail and "Will retry" in state.detail
    assert httpserver.log == []


def test_a_sessionm_transaction_is_kept_pending_without_calling_sessionm(
    httpserver: HTTPServer, client_a, sealed_with_a_dropped_key
):
    ConnectionFactory(
        client=client_a, vendor="sessionm", base_url=httpserver.url_for("/"),
        settings={"store_id": "s1", "connect_client_id": "c1"},
        secrets={"api_key": "k-0123456789", "api_secret": "s-0123456789", "connect_api_key": "ck-0123456789",
                 "connect_api_secret": "cs-0123456789"},
    )  # fmt: skip
    member = MemberFactory(client=client_a)
    SessionMProfile.objects.create(client=client_a, member=member, external_id=f"portal-{member.pk}", user_id="U1")
    sealed_with_a_dropped_key()
    result = send_transaction(member, "txn-1", {"amount": 10})
    assert result.transaction.status == "pending" and "cannot be decrypted" in result.transaction.detail
    assert httpserver.log == []


def test_a_vibes_callback_needing_the_unreadable_password_is_answered_503(
    client, client_a, sealed_with_a_dropped_key, site_admin, mailoutbox
):
    connection = ConnectionFactory(
        client=client_a, vendor="vibes", settings={"company_key": "acme", "callback_username": "vibes"},
        secrets={"callback_password": "callback-pass-0123456789"},
    )  # fmt: skip
    sealed_with_a_dropped_key()
    # Read as no secrets, an empty password would have matched: the sender is neither let in nor told "wrong".
    credentials = "Basic dmliZXM6"  # "vibes:" with an empty password
    body = json.dumps({"event_id": "E1"})
    url = reverse("vibes-callback", args=[connection.inbound_token])
    response = client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=credentials)
    assert response.status_code == 503 and "cannot be decrypted" in response.json()["detail"]
    assert response.headers["Retry-After"] and not WebhookEvent.objects.exists()
    # The site admins hear of it (once: alerts are throttled), since Vibes will keep resending.
    client.post(url, body, content_type="application/json", HTTP_AUTHORIZATION=credentials)
    alerts = [m for m in mailoutbox if "callbacks are being answered 503" in m.subject]
    assert len(alerts) == 1 and "cannot be decrypted" in alerts[0].body


def test_an_attentive_webhook_is_answered_503_while_its_signing_key_is_unreadable(
    client, client_a, sealed_with_a_dropped_key
):
    secrets = {"webhook_signing_key": "sk-0123456789"}
    connection = ConnectionFactory(client=client_a, vendor="attentive", secrets=secrets)
    sealed_with_a_dropped_key()
    url = reverse("attentive-callback", args=[connection.inbound_token])
    response = client.post(url, b"{}", content_type="application/json")
    assert response.status_code == 503 and "cannot be decrypted" in response.json()["detail"]
    assert not WebhookEvent.objects.exists()


def test_a_review_is_not_called_undecryptable_when_the_connections_own_secret_is_unreadable(
    client_a, sealed_with_a_dropped_key
):
    """A blank shared secret would make every reviewer's address "undecryptable" (a final outcome): the review waits
    instead, saying why, and the run stops."""
    from django.utils import timezone

    from integrations.bazaarvoice import rewards
    from integrations.bazaarvoice.models import Review

    connection = ConnectionFactory(
        client=client_a, vendor="bazaarvoice", secrets={"passkey": "pass-0123456789", "shared_secret": "s" * 32}
    )
    review = Review.objects.create(
        client=client_a, review_id="r-1", rating=5, moderated_at=timezone.now(), encrypted_email="00" * 16
    )
    sealed_with_a_dropped_key()
    with pytest.raises(rewards.StopRun, match="cannot be decrypted"):
        rewards.settle(review, rewards.Context.of(unreadable(connection)))
    review.refresh_from_db()
    assert review.outcome == Review.Outcome.PENDING and "cannot be decrypted" in review.detail
    assert review.encrypted_email  # kept: it is decrypted once the key is back
