"""factory-boy factories for the portal's models."""

from __future__ import annotations

import json
from typing import Any

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from integrations.models import Client, Connection, WebhookEvent
from integrations.tenancy import CLIENT_USERS_GROUP
from members.models import EventType, LoyaltyEvent, Member, MessageTemplate, OutboundMessage, Segment

PASSWORD = "correct-horse-battery"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password(PASSWORD)
    is_staff = True


class SiteAdminFactory(UserFactory):
    is_superuser = True


class ClientFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Client

    name = factory.Sequence(lambda n: f"Client {n}")
    slug = factory.Sequence(lambda n: f"client-{n}")
    site_id = factory.Sequence(lambda n: f"{100000 + n}")


class ClientUserFactory(UserFactory):
    """A staff user in the client users group, attached to `client`."""

    @factory.post_generation
    def client(self, create: bool, extracted: Client | None, **kwargs: object) -> None:
        self.groups.add(Group.objects.get(name=CLIENT_USERS_GROUP))
        if extracted is not None:
            extracted.users.add(self)


class ConnectionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Connection

    client = factory.SubFactory(ClientFactory)
    vendor = "attentive"
    environment = Connection.Environment.PRODUCTION
    secrets = factory.LazyFunction(lambda: {"api_key": "attentive-key-0123456789", "legacy_token": "legacy-tok-98765"})
    status = Connection.Status.ACTIVE


class ClientConnectionFactory(ConnectionFactory):
    """The client's connection to the vendor: the existing one if the client has it (one per client and vendor)."""

    class Meta:
        django_get_or_create = ("client", "vendor")


def vibes_callback(
    event_id: str,
    *,
    callback_type: str = "subscription_added",
    event_date: str = "2017-02-15T15:42:23Z",
    person_id: str = "ABC123",
    external_id: str = "ex1234",
    list_id: str = "1234",
) -> dict[str, Any]:
    """A subscription callback shaped as Vibes sends it (Vibes' subscription callback documentation)."""
    subscription: dict[str, Any] = {
        "person": {
            "id": person_id,
            "external_id": external_id,
            "url": f"/companies/:company_key/mobiledb/persons/{person_id}",
        },
        "subscription_list": {"id": list_id, "url": f"/companies/:company_key/mobiledb/subscription_lists/{list_id}"},
        "opt_in_date": "2017-01-15T15:34:52Z",
        "acquisition_campaign": {"id": "2342312", "url": "/companies/:company_key/campaigns/acquisition/2342312"},
        "url": f"/companies/:company_key/mobiledb/persons/{person_id}/subscriptions/{list_id}",
    }
    if callback_type == "subscription_removed":
        subscription.update(opt_out_date=event_date, opt_out_reason="user_opt_out")
    return {
        "event_id": event_id,
        "callback_type": callback_type,
        "event_type": callback_type,
        "event_date": event_date,
        "delivery_attempt": "1",
        "subscription": subscription,
    }


class WithClientOf(factory.django.DjangoModelFactory):
    """Rows that belong to a client through two paths (`client` and a related row): given only the related row,
    the client is that row's client, so the two never disagree."""

    _client_from = ""  # the field of the related row (factory_boy leaves names starting with _ alone)

    class Meta:
        abstract = True

    @classmethod
    def _generate(cls, strategy: str, params: dict[str, Any]) -> Any:
        related = params.get(cls._client_from)
        if related is not None and "client" not in params:
            params = {**params, "client": related.client}
        return super()._generate(strategy, params)


class MemberFactory(factory.django.DjangoModelFactory):
    """A member with a valid US mobile number in E.164 (+1 415 555 xxxx, fictional numbers `phonenumbers` accepts)."""

    class Meta:
        model = Member

    client = factory.SubFactory(ClientFactory)
    # 2000 to 8999: never a number a test writes out (those are below 2000 or 9876), so a member a test makes with one
    # cannot collide with the factory's, however many members earlier tests made.
    phone = factory.Sequence(lambda n: f"+1415555{2000 + n % 7000:04d}")
    email = factory.Sequence(lambda n: f"member{n}@example.com")
    first_name = "Pat"
    last_name = factory.Sequence(lambda n: f"Member{n}")


class SegmentFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Segment

    client = factory.SubFactory(ClientFactory)
    name = factory.Sequence(lambda n: f"Segment {n}")


class LoyaltyEventFactory(WithClientOf):
    """An event of a member of the event's client (`LoyaltyEventFactory(member=m)` is an event of m's client)."""

    _client_from = "member"

    class Meta:
        model = LoyaltyEvent

    client = factory.SubFactory(ClientFactory)
    member = factory.SubFactory(MemberFactory, client=factory.SelfAttribute("..client"))
    external_id = factory.Sequence(lambda n: f"ev-{n}")
    event_type = EventType.POINTS_EARNED
    data = factory.LazyFunction(lambda: {"points": 50})


class MessageTemplateFactory(WithClientOf):
    """A template sent through the client's own Attentive connection (created if the client has none)."""

    _client_from = "connection"

    class Meta:
        model = MessageTemplate

    client = factory.SubFactory(ClientFactory)
    connection = factory.SubFactory(ClientConnectionFactory, client=factory.SelfAttribute("..client"))
    event_type = EventType.POINTS_EARNED
    text = "Hi {first_name}, you earned {points} points at {client_name}!"


class OutboundMessageFactory(factory.django.DjangoModelFactory):
    """A message of a template, for an event of the template's client, to the event's member."""

    class Meta:
        model = OutboundMessage

    template = factory.SubFactory(MessageTemplateFactory)
    event = factory.SubFactory(
        LoyaltyEventFactory,
        client=factory.SelfAttribute("..template.client"),
        event_type=factory.SelfAttribute("..template.event_type"),
    )
    member = factory.SelfAttribute("event.member")
    connection = factory.SelfAttribute("template.connection")
    to = factory.SelfAttribute("member.phone")
    body = factory.LazyAttribute(lambda o: f"Hi {o.member.first_name}, you earned 50 points!")


class WebhookEventFactory(factory.django.DjangoModelFactory):
    """A Vibes callback as stored on receipt: a valid subscription callback body, waiting to be processed."""

    class Meta:
        model = WebhookEvent

    class Params:
        person_id = "ABC123"
        external_id = "ex1234"
        list_id = "1234"
        event_date = "2017-02-15T15:42:23Z"

    connection = factory.SubFactory(
        ClientConnectionFactory, vendor="vibes", secrets=factory.LazyFunction(dict), settings={"company_key": "acme"}
    )
    event_id = factory.Sequence(lambda n: f"EV{n:08d}")
    event_type = "subscription_added"
    status = WebhookEvent.Status.RECEIVED
    headers = factory.LazyFunction(lambda: {"Content-Type": "application/json", "User-Agent": "Vibes"})
    remote_addr = "127.0.0.1"
    body = factory.LazyAttribute(
        lambda o: json.dumps(
            vibes_callback(
                o.event_id,
                callback_type=o.event_type,
                event_date=o.event_date,
                person_id=o.person_id,
                external_id=o.external_id,
                list_id=o.list_id,
            )
        )
    )


def simulator_connection(client: Client, vendor: str, simulator: Any, **fields: Any) -> Connection:
    """The client's active connection to a vendor's simulator (SANDBOX_BASE_URL), with the simulator's demo
    credentials and settings."""
    values = {
        "environment": Connection.Environment.SANDBOX,
        "status": Connection.Status.ACTIVE,
        "secrets": dict(simulator.DEMO_SECRETS),
        "settings": dict(getattr(simulator, "DEMO_SETTINGS", {})),
        **fields,
    }
    return ConnectionFactory(client=client, vendor=vendor, **values)


def local_annex_cloud(client: Client, base_url: str, **fields: Any) -> Connection:
    """The client's Annex Cloud connection on a local fake server (`httpserver.url_for("/api/3.0")`), which checks
    the exact requests the portal sends."""
    secrets = {"api_secret": "contract-secret-0123456789abcdef"}
    return ConnectionFactory(client=client, vendor="annex_cloud", base_url=base_url, secrets=secrets, **fields)
