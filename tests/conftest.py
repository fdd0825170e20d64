from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.core.cache import cache
from django.test import Client as HttpClient
from django.test import RequestFactory
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from integrations import redaction
from integrations.annexcloud import sandbox as annex_cloud_simulator
from integrations.attentive import sandbox as attentive_simulator
from integrations.attentive.models import SignUpSource
from integrations.bazaarvoice import sandbox as bazaarvoice_simulator
from integrations.http import pooled_session
from integrations.models import ApiToken, Connection
from integrations.sandbox.base import OUTAGES
from integrations.sessionm import sandbox as sessionm_simulator
from integrations.vibes import sandbox as vibes_simulator
from portal.celery import app as celery_app
from portal.test_settings import name_test_databases_for_this_process
from tests.factories import PASSWORD, ClientFactory, ClientUserFactory, ConnectionFactory, SiteAdminFactory

# Property tests check rules, not speed (speed is measured by bench/): no per-example deadline and no "too slow"
# health check, which a loaded machine trips at random (a slow example that passes when Hypothesis replays it is
# reported as a failure, "unreliable test timings").
hypothesis_settings.register_profile("portal", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("portal")


@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix: None) -> None:
    """pytest-django's hook before it creates the test databases: a forked process gets its own
    (portal/test_settings.py)."""
    name_test_databases_for_this_process(django_settings.DATABASES)


# Fixtures shared by the First Orion test files (the simulator, client A's connection, the "Order ready" content).
pytest_plugins = ["tests.first_orion_fixtures"]


@pytest.fixture(autouse=True)
def close_keep_alive_connections():
    """Vendor calls reuse a pooled keep-alive connection. To the live server that would keep a request thread, and
    the database connection it holds, alive after the test: close it after each test."""
    yield
    session = pooled_session()
    # urllib3 2 only forgets its pools on close(); their idle connections close when the pool is collected, which
    # for a pool caught in a reference cycle (a raised vendor error's traceback) is whenever the cyclic GC runs.
    # Close them now, so no live-server thread outlives the test.
    for adapter in session.adapters.values():
        pools = adapter.poolmanager.pools
        for key in pools.keys():  # noqa: SIM118 - the container refuses iteration; keys() is its copy
            pool = pools.get(key)
            if pool is not None:
                pool.close()
    session.close()


@pytest.fixture(autouse=True)
def secrets_redacted_by_this_test_only():
    """A secret a test stores is redacted for the rest of the process (as in production); a test that stores a common
    word as one (a retired demo username, "sandbox") would blank it in every later test's URLs. Each test starts with
    the secrets known before it (the same set, changed in place: modules hold it)."""
    before = set(redaction._known_secrets)
    yield
    with redaction._lock:
        redaction._known_secrets.intersection_update(before)


@pytest.fixture(autouse=True)
def empty_cache():
    """Each test starts with an empty cache (processing-scheduled marks and the like)."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def site_admin(db):
    return SiteAdminFactory(username="site-admin")


@pytest.fixture
def client_a(db):
    return ClientFactory(name="Alpha Apparel", slug="alpha")


@pytest.fixture
def client_b(db):
    return ClientFactory(name="Beta Boutique", slug="beta")


@pytest.fixture
def user_a(client_a):
    return ClientUserFactory(username="alice", client=client_a)


@pytest.fixture
def connection_a(client_a):
    return ConnectionFactory(client=client_a)


@pytest.fixture
def connection_b(client_b):
    return ConnectionFactory(
        client=client_b, secrets={"api_key": "beta-secret-key-ABCDEFGH", "legacy_token": "beta-legacy-ZYXWVUT"}
    )


def login(user) -> HttpClient:
    """Log in with the password, through the real backends: django-axes checks lockouts on the request it is given
    (the test client's login passes none by itself)."""
    http = HttpClient()
    assert http.login(request=RequestFactory().post("/admin/login/"), username=user.username, password=PASSWORD)
    return http


@pytest.fixture
def admin_http(site_admin) -> HttpClient:
    return login(site_admin)


@pytest.fixture
def alice_http(user_a) -> HttpClient:
    return login(user_a)


@pytest.fixture
def api_client_for(db):
    """An API client authenticated with a fresh token of the given client."""

    def make(client):
        _, key = ApiToken.issue(client, "test token")
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return api

    return make


@pytest.fixture
def attentive_sandbox(live_server, settings):
    """The Attentive simulator, served over real HTTP by the live server, reset for each test."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    settings.MESSAGE_SEND_CONCURRENCY = 1  # SQLite's shared in-memory test database is not for parallel writers
    attentive_simulator.state.__init__()
    yield attentive_simulator.state
    attentive_simulator.state.__init__()


@pytest.fixture
def sandbox_attentive_connection(attentive_sandbox, client_a):
    SignUpSource.objects.create(client=client_a, source_id="132109", name="Loyalty", is_default=True)
    return ConnectionFactory(
        client=client_a,
        vendor="attentive",
        environment=Connection.Environment.SANDBOX,
        secrets={"api_key": attentive_simulator.API_KEY, "legacy_token": attentive_simulator.LEGACY_TOKEN},
    )


@pytest.fixture
def eager_celery():
    """Tasks run in-process when queued, so the on-commit subscribe can be observed."""
    celery_app.conf.task_always_eager = True
    yield
    celery_app.conf.task_always_eager = False


@pytest.fixture
def annex_cloud_sandbox(live_server, settings, client_a):
    """Client A's Annex Cloud connection pointed at the simulator over real HTTP."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    annex_cloud_simulator.state.__init__()
    client_a.site_id = "100001"
    client_a.save()
    connection = ConnectionFactory(
        client=client_a,
        vendor="annex_cloud",
        environment=Connection.Environment.SANDBOX,
        secrets={"api_secret": annex_cloud_simulator.SECRET, "loyalty_token": "loyal"},
    )
    yield annex_cloud_simulator.state, connection
    annex_cloud_simulator.state.__init__()


@pytest.fixture
def vibes_sandbox(live_server, settings, client_a):
    """Client A's active Vibes connection pointed at the simulator over real HTTP."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    vibes_simulator.state.__init__()
    connection = ConnectionFactory(
        client=client_a,
        vendor="vibes",
        environment=Connection.Environment.SANDBOX,
        secrets={"api_username": vibes_simulator.USERNAME, "api_password": vibes_simulator.PASSWORD},
        settings={"company_key": "acme"},
    )
    yield vibes_simulator.state, connection
    vibes_simulator.state.__init__()


@pytest.fixture
def sessionm_sandbox(live_server, settings):
    """The SessionM simulator over real HTTP, emptied (no offers given to new users) and without an outage."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    settings.MEMBER_SYNC_RETRY_INTERVAL = timedelta(0)
    sessionm_simulator.state.__init__()
    sessionm_simulator.state.auto_offers = []
    OUTAGES.pop("sessionm", None)
    yield sessionm_simulator.state
    sessionm_simulator.state.__init__()
    OUTAGES.pop("sessionm", None)


@pytest.fixture
def bazaarvoice_connection(live_server, settings, annex_cloud_sandbox, client_a):
    """Client A's Bazaarvoice connection on the simulator (emptied), next to its Annex Cloud connection; neither is
    slowed by a client-side rate limit."""
    settings.SANDBOX_BASE_URL = f"{live_server.url}/sandbox"
    bazaarvoice_simulator.reset()
    connection = ConnectionFactory(
        client=client_a,
        vendor="bazaarvoice",
        environment=Connection.Environment.SANDBOX,
        secrets=dict(bazaarvoice_simulator.DEMO_SECRETS),
        settings={"rate_limit_per_second": 1000},
    )
    _, annex = annex_cloud_sandbox
    annex.settings = {"rate_limit_per_second": 1000}
    annex.save()
    yield connection
    bazaarvoice_simulator.reset()
