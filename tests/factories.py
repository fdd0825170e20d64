"""factory-boy factories for the portal's models."""

from __future__ import annotations

import factory
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from integrations.models import Client, Connection
from integrations.tenancy import CLIENT_USERS_GROUP

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
