"""SessionM connection: its API client built from a connection's secrets and settings, and the verify check
(a Core read and a Connect read that prove both pairs of credentials).
"""

from __future__ import annotations

from integrations.connections import api_for, usable_connection
from integrations.http import AuthError, ExpectedAnswer, NotFound, Rejected
from integrations.models import Connection
from integrations.outcome import NotReady
from integrations.sessionm.api import ConnectIds, ConnectRejected, SessionMAPI

VENDOR = "sessionm"
# Connect's and Core's code for a user SessionM does not know.
UNKNOWN_USER = "user_not_found"


def connect_ids(connection: Connection) -> ConnectIds | None:
    store_id, client_id = connection.settings.get("store_id"), connection.settings.get("connect_client_id")
    return ConnectIds(str(store_id), str(client_id)) if store_id and client_id else None


def sessionm_api(connection: Connection) -> SessionMAPI:
    if not connection.effective_base_url:
        raise NotReady(
            "Enter the SessionM tenant host as the connection's base URL (a site admin sets it), e.g. "
            "https://your-tenant.sessionm.com: SessionM has no shared default host."
        )
    return api_for(
        connection,
        SessionMAPI,
        api_key=connection.secret("api_key"),
        api_secret=connection.secret("api_secret"),
        connect_key=connection.secret("connect_api_key"),
        connect_secret=connection.secret("connect_api_secret"),
        connect_ids=connect_ids(connection),
    )


def check_connection(connection: Connection) -> str:
    """The verify check: a campaigns read for an external id that cannot exist (404 proves the Core key and secret)
    and a wallet read for a user that cannot exist (Connect's refusal of the user proves its credentials)."""
    api = sessionm_api(connection)
    if connect_ids(connection) is None:
        raise NotReady("Enter the Connect store_id and client_id in the connection's settings.")
    api.credentials_work()
    probe_connect(api)
    return f"Verified: the Core API and Connect credentials work at {connection.effective_base_url}."


# The verify probe's answer: Connect refusing the probe user as unknown (a refusal in its envelope, or a 404) is
# what the probe is meant to get, counted as "refused" (or "not found"), not as a failed call.
PROBE_USER_REFUSED = ExpectedAnswer(Rejected, code=UNKNOWN_USER)


def probe_connect(api: SessionMAPI) -> None:
    """The probe user does not exist: Connect accepting the envelope and credentials and refusing only the user
    (by its code, in a Connect answer or a 404) is the proof. Any other refusal (an unknown store_id or client_id)
    fails the verify with what to correct."""
    try:
        api.get_user_offers("portal-verify-probe", expected=PROBE_USER_REFUSED)
    except (ConnectRejected, NotFound) as exc:
        if exc.code != UNKNOWN_USER:
            raise Rejected(
                "SessionM",
                f"Connect refused the probe ({exc.message})",
                status=exc.status,
                code=exc.code,
                hint="Check the Connect store_id and client_id in the connection's settings (and the Connect key "
                "and secret, if they differ).",
            ) from exc


def explain_auth_failure(error: AuthError) -> str:
    return (
        f"SessionM rejected the credentials ({error.message}): check the Core API key and secret (and the Connect "
        f"key and secret, if they differ). {error.hint}"
    )


def usable_or_not_ready(client_id: int) -> Connection:
    connection = usable_connection(client_id, VENDOR)
    if connection is None:
        raise NotReady("SessionM is not active for this client: verify its SessionM connection first.")
    return connection
