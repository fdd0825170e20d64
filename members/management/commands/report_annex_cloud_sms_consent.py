"""List the members whose SMS opt-in may have come only from Annex Cloud, for each client to review.

manage.py report_annex_cloud_sms_consent [--client slug]

Until this release every Annex Cloud refresh and Bazaarvoice reviewer look-up wrote Annex Cloud's loyalty opt-in
(`optInStatus`, default YES) into the SMS opt-in. The portal kept no record of who set a member's SMS opt-in, so the
report lists the members for whom nothing stored rules Annex Cloud out:

- the SMS opt-in is on;
- Annex Cloud has answered for the member (an Annex Cloud id, which every refresh and look-up stored, or a read
  recorded since this release);
- no SMS source of the member is on record at any SMS vendor (each says what its record is, its `consent` module:
  a Vibes list subscription from a `subscription_added` callback, an Attentive `sms.subscribed` webhook for the
  member's number).

A member the client opted in itself (admin, API, CSV) who also has an Annex Cloud id is listed too: the stored data
cannot tell the two apart, so the client decides. A TEXT subscription the portal itself made (because of the opt-in)
is shown, not counted as a source; Attentive's webhook may answer such a subscribe with `sms.subscribed` too,
so run the report before re-subscribing anyone (the webhook receiver is as new as this report). The report changes
nothing: no member is unsubscribed, and none is confirmed. The CSV goes to stdout (one row per member), the count to
stderr.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import Q, QuerySet
from django.utils.translation import ngettext

from integrations.hooks import RecordsSmsOptIns, hooks
from integrations.models import Client
from members.exports import csv_chunks, neutralise
from members.models import Member

HEADER = [
    "client", "member", "name", "email", "phone", "annex_cloud_id", "loyalty_opt_in", "text_subscriptions",
    "member_since",
]  # fmt: skip
LOYALTY_OPT_IN = {True: "yes", False: "no", None: "not read"}


def annex_cloud_sms_opt_ins(clients: QuerySet[Client]) -> QuerySet[Member]:
    """Opted-in members Annex Cloud has answered for, with no SMS source on record (see the module's docstring)."""
    answered_by_annex_cloud = ~Q(annex_cloud_id="") | Q(annex_cloud_read_at__isnull=False)
    members = Member.objects.filter(client__in=clients, opted_in=True).filter(answered_by_annex_cloud)
    for sms_vendor in hooks(RecordsSmsOptIns).values():
        members = members.exclude(sms_vendor.sms_opt_in_on_record())
    return members.select_related("client").prefetch_related("subscriptions").order_by("client__slug", "pk")


def text_subscriptions(member: Member) -> str:
    """What the portal's own subscribes did with the opt-in (a consequence of it, not a source): "attentive:
    subscribed", one per vendor, or "none"."""
    states = [f"{s.vendor}: {s.state}" for s in member.subscriptions.all() if s.channel == "TEXT"]
    return "; ".join(sorted(states)) or "none"


def report_rows(members: QuerySet[Member]) -> Iterator[list[str]]:
    yield HEADER
    for member in members.iterator(chunk_size=2000):
        yield [
            member.client.slug,
            str(member.pk),
            neutralise(f"{member.first_name} {member.last_name}".strip()),
            neutralise(member.email),
            member.phone,
            neutralise(member.annex_cloud_id),
            LOYALTY_OPT_IN[member.loyalty_opted_in],
            text_subscriptions(member),
            f"{member.created_at:%Y-%m-%d}",
        ]


class Command(BaseCommand):
    help = __doc__

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--client", help="Only this client (its slug).")

    def handle(self, *args: Any, client: str | None, **options: Any) -> None:
        clients = Client.objects.all()
        if client:
            clients = clients.filter(slug=client)
            if not clients.exists():
                raise CommandError(f"No client {client!r}.")
        members = annex_cloud_sms_opt_ins(clients)
        for chunk in csv_chunks(report_rows(members)):
            self.stdout.write(chunk.decode(), ending="")
        count = members.count()
        self.stderr.write(
            f"{count} {ngettext('member has', 'members have', count)} an SMS opt-in that may have come only from "
            f"Annex Cloud's loyalty opt-in. Nothing was changed: review {ngettext('the member', 'them', count)} "
            "with the client."
        )
