"""SessionM's contract and the client API over real HTTP (the simulator behind the live server): transactions
relayed once per id, field errors, SessionM's refusals and lost answers; the requests as SessionM documents them;
secrets never recorded; and each client seeing only its own SessionM records."""

from __future__ import annotations

import base64

import pytest
from django.urls import reverse

from integrations.models import Connection, VendorCall
from integrations.sandbox.base import OUTAGES, Outage
from integrations.sessionm import sandbox as simulator
from integrations.sessionm.campaigns import eligible_campaigns
from integrations.sessionm.models import SessionMOffer, SessionMProfile, SessionMTransaction
from integrations.sessionm.offers import scan_offers
from integrations.sessionm.transactions import TransactionIdReused, new_transaction
from members import sync
from members.models import MemberVendorState, validate_template_text
from tests.conftest import login
from tests.factories import ClientUserFactory, MemberFactory, simulator_connection

pytestmark = pytest.mark.django_db(transaction=True)
PURCHASE = {
    "transaction_id": "pos-1001",
    "amount": "18.00",
    "currency": "USD",
    "items": [
        {"sku": "FRY-PULLED-PORK", "name": "Pulled pork fries", "quantity": 1, "price": "9.00"},
        {"sku": "FRY-CURLY", "name": "Curly fries", "quantity": 1, "price": "9.00"},
    ],
}


@pytest.fixture
def sandbox(sessionm_sandbox):
    return sessionm_sandbox


def sessionm_connection(client) -> Connection:
    return simulator_connection(client, "sessionm", simulator)


@pytest.fixture
def member(sandbox, client_a):
    sessionm_connection(client_a)
    member = MemberFactory(
        client=client_a,
        phone="+14045550177",
        email="amanda@example.com",
        first_name="Amanda",
        last_name="Reyes",
        opted_in=True,
    )
    sync.record_change(member, {"phone", "email", "opted_in"}, {})
    assert sync.reconcile(member.pk, "sessionm").status == MemberVendorState.Status.IN_SYNC
    return member


def relay(api, member, **changes):
    return api.post(f"/api/members/{member.pk}/transactions/", {**PURCHASE, **changes}, format="json")


def transactions_sent(state) -> list[dict]:
    return [r for r in state.requests if r["path"].endswith("/api/2.0/send_transaction")]


# --- Contract -----------------------------------------------------------------------------------------------------


def test_requests_are_as_sessionm_documents_them(member, sandbox):
    profile = SessionMProfile.objects.get(member=member)
    create = sandbox.requests[0]
    assert create["method"] == "POST" and create["path"].endswith(f"/priv/v1/apps/{simulator.API_KEY}/users")
    assert create["user"] == simulator.API_KEY and create["content_type"] == "application/json"
    assert create["body"] == {
        "user": {
            "external_id": f"portal-{member.pk}",
            "opted_in": True,
            "email": "amanda@example.com",
            "first_name": "Amanda",
            "last_name": "Reyes",
            "phone_numbers": [{"phone_number": "+14045550177", "phone_type": "mobile"}],
        }
    }
    scan_offers()
    read = sandbox.requests[-1]
    assert read["path"].endswith("/api/2.0/offers/get_user_offers") and read["method"] == "POST"
    assert set(read["body"]) == {"store_id", "client_id", "request_id", "request_payload"}
    assert read["body"]["store_id"] == simulator.STORE_ID and read["body"]["client_id"] == simulator.CONNECT_CLIENT_ID
    assert read["body"]["request_payload"] == {"user_id": profile.user_id}


def test_secrets_never_reach_the_call_log(member, sandbox, api_client_for, client_a):
    relay(api_client_for(client_a), member)
    eligible_campaigns(member)
    encoded = base64.b64encode(f"{simulator.API_KEY}:{simulator.API_SECRET}".encode()).decode()
    calls = list(VendorCall.objects.filter(connection__vendor="sessionm"))
    assert len(calls) >= 3
    for call in calls:
        recorded = f"{call.url} {call.request_headers} {call.request_body} {call.response_body} {call.error}"
        for secret in (simulator.API_KEY, simulator.API_SECRET, encoded):
            assert secret not in recorded


def test_a_profile_sessionm_refuses_is_rejected_with_its_words(sandbox, client_a):
    sessionm_connection(client_a)
    member = MemberFactory(client=client_a, phone="+14045550178", email="not-an-address")
    sync.record_change(member, {"email"}, {})
    result = sync.reconcile(member.pk, "sessionm")
    assert result.status == MemberVendorState.Status.REJECTED and "not an e-mail address" in result.detail


def test_throttling_is_waited_out_and_bad_credentials_mark_the_connection_failing(sandbox, client_a):
    connection = sessionm_connection(client_a)
    member = MemberFactory(client=client_a, phone="+14045550179")
    sync.record_change(member, {"phone"}, {})
    sandbox.fail, sandbox.fail_path, sandbox.fail_times = "429", "users", 1
    assert sync.reconcile(member.pk, "sessionm").status == MemberVendorState.Status.IN_SYNC
    connection.secrets = {**connection.secrets, "api_secret": "revoked-secret"}
    connection.save()
    sync.change_member(member, first_name="Changed")
    result = sync.reconcile(member.pk, "sessionm")
    assert result.status == MemberVendorState.Status.DEFERRED
    assert Connection.objects.get(pk=connection.pk).status == Connection.Status.FAILING


# --- Transactions -------------------------------------------------------------------------------------------------


def test_a_purchase_is_relayed_with_its_id_as_request_id(member, sandbox, api_client_for, client_a):
    response = relay(api_client_for(client_a), member)
    assert response.status_code == 201, response.json()
    body = response.json()
    assert body["transaction_id"] == "pos-1001" and body["status"] == "accepted"
    assert body["response"]["status"] == "OK" and body["response"]["payload"]["points_earned"] == 18
    [sent] = transactions_sent(sandbox)
    assert sent["body"]["request_id"] == "pos-1001"
    assert sent["body"]["request_payload"] == {
        "user_id": SessionMProfile.objects.get(member=member).user_id,
        "transaction": {"amount": "18.00", "currency": "USD", "items": PURCHASE["items"]},
    }


def test_a_repeated_id_answers_the_stored_answer_without_calling(member, sandbox, api_client_for, client_a):
    api = api_client_for(client_a)
    first = relay(api, member)
    calls = VendorCall.objects.count()
    again = relay(api, member)
    assert again.status_code == 200 and again.json() == first.json()
    assert VendorCall.objects.count() == calls and len(sandbox.transactions) == 1
    other = relay(api, member, amount="5.00")
    assert other.status_code == 422 and "transaction_id" in other.json()


def test_an_id_stored_by_a_concurrent_request_with_other_details_is_refused(member, sandbox, api_client_for, client_a):
    # The race: both requests found no stored id; the other one stored it first (its details) before this one's
    # get_or_create. Sequentially: this request's store step finds the other's row.
    other = {**PURCHASE, "amount": "99.00"}
    new_transaction(member, "pos-1001", other)
    with pytest.raises(TransactionIdReused):
        new_transaction(member, "pos-1001", dict(PURCHASE))
    # The same details (a true duplicate) share the stored row.
    assert new_transaction(member, "pos-1001", other).request["transaction"] == other
    assert SessionMTransaction.objects.count() == 1 and transactions_sent(sandbox) == []


def test_invalid_purchases_get_field_errors_and_nothing_is_sent(member, sandbox, api_client_for, client_a):
    api = api_client_for(client_a)
    response = api.post(
        f"/api/members/{member.pk}/transactions/",
        {"amount": "-1", "currency": "usd", "items": [{"sku": "X", "quantity": 0, "price": "1"}]},
        format="json",
    )
    assert response.status_code == 400
    assert {"transaction_id", "amount", "currency", "items"} <= set(response.json())
    assert transactions_sent(sandbox) == [] and not SessionMTransaction.objects.exists()


def test_a_refused_transaction_is_422_with_sessionms_words(member, sandbox, api_client_for, client_a):
    sandbox.users.clear()  # SessionM no longer knows the user
    response = relay(api_client_for(client_a), member)
    assert response.status_code == 422 and response.json()["status"] == "rejected"
    assert "No user" in response.json()["detail"]


def test_a_lost_answer_is_sent_again_with_the_same_id_and_applied_once(member, sandbox, api_client_for, client_a):
    api = api_client_for(client_a)
    sandbox.lose_answer_next = 1  # applied at SessionM, answered 504
    response = relay(api, member)
    assert response.status_code == 201 and len(sandbox.transactions) == 1
    OUTAGES["sessionm"] = Outage(status=503, times=1_000_000)
    down = relay(api, member, transaction_id="pos-1002")
    assert down.status_code == 502 and down.json()["status"] == "pending"
    OUTAGES.pop("sessionm")
    again = relay(api, member, transaction_id="pos-1002")
    assert again.status_code == 201 and len(sandbox.transactions) == 2


def test_a_member_without_profile_or_a_client_without_sessionm_is_409(sandbox, client_a, api_client_for):
    member = MemberFactory(client=client_a, phone="+14045550180")
    assert relay(api_client_for(client_a), member).status_code == 409
    sessionm_connection(client_a)
    response = relay(api_client_for(client_a), member)
    assert response.status_code == 409 and "no SessionM profile" in response.json()["message"]


# --- Tenancy and the member page ----------------------------------------------------------------------------------


def test_client_b_cannot_reach_client_as_member_or_records(member, sandbox, api_client_for, client_b, client_a):
    assert relay(api_client_for(client_b), member).status_code == 404
    simulator.add_offer({"user_id": member.sessionm_profile.user_id, "name": "Alpha only offer", "days": 30})
    scan_offers()
    assert SessionMOffer.objects.filter(client=client_a).count() == 1
    bob = login(ClientUserFactory(username="bob", client=client_b))
    listing = bob.get("/admin/sessionm/sessionmoffer/")
    assert listing.status_code == 200 and "Alpha only offer" not in listing.content.decode()
    alice = login(ClientUserFactory(username="alice", client=client_a))
    assert "Alpha only offer" in alice.get("/admin/sessionm/sessionmoffer/").content.decode()


def test_the_member_page_shows_offers_and_campaigns_on_demand(member, sandbox, admin_http):
    simulator.add_offer({"user_id": member.sessionm_profile.user_id, "name": "Snack box", "days": 30})
    scan_offers()
    page = admin_http.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    assert "Snack box" in page and member.sessionm_profile.user_id in page
    shown = admin_http.post(
        "/admin/members/member/", {"action": "show_campaigns", "_selected_action": [member.pk]}, follow=True
    )
    assert "Mobile Tuesdays" in shown.content.decode()


def test_the_member_page_opens_the_eligible_campaigns_page_scoped_to_the_client(member, sandbox, admin_http, client_b):
    page = admin_http.get(f"/admin/members/member/{member.pk}/change/").content.decode()
    url = reverse("admin:sessionm_sessionmprofile_campaigns", args=[member.sessionm_profile.pk])
    assert url in page
    shown = admin_http.get(url).content.decode()
    assert "Mobile Tuesdays" in shown and "Snack box promotion" in shown
    assert [r["path"] for r in sandbox.requests][-1].endswith(f"/users/{member.sessionm_profile.user_id}/campaigns")
    OUTAGES["sessionm"] = Outage(status=503, times=1_000_000)
    assert "SessionM could not be asked" in admin_http.get(url).content.decode()
    bob = login(ClientUserFactory(username="bob", client=client_b))
    assert bob.get(url).status_code == 404


def test_the_connection_page_masks_the_secrets_and_templates_may_name_the_offer(
    sandbox, client_a, admin_http, settings
):
    settings.DEBUG = settings.SANDBOX_ENABLED = False  # no "fill with the sandbox's credentials" box, which shows them
    connection = sessionm_connection(client_a)
    page = admin_http.get(reverse("admin:integrations_connection_change", args=[connection.pk])).content.decode()
    assert "Connect API key" in page and simulator.API_SECRET not in page and simulator.API_KEY not in page
    validate_template_text("{offer_name}: {offer_description}, until {expires_on}")
