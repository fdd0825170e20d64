"""The loyalty opt-in gets its own field (Annex Cloud's optInStatus is not SMS consent), with what Annex Cloud last
said of the member; members sharing an Annex Cloud id within a client are reported and told apart, so that the next
migration can make the id unique per client.

Duplicates are not a reason to fail an upgrade: the earliest member of each group (lowest id) keeps the id, since
Annex Cloud's points and the Vibes person already went to that member's accounts; each later one has the id cleared
and written into its Annex Cloud note, and is printed, for an admin to set the id on the member Annex Cloud means.
Clearing is not undone by a reverse migration (the note keeps the id)."""

from __future__ import annotations

import sys
from typing import Any

from django.db import migrations, models
from django.db.models import Count


def note_for(annex_cloud_id: str, keeper_pk: int) -> str:
    return (
        f"Annex Cloud id {annex_cloud_id!r} cleared on upgrade (migration members 0010): member {keeper_pk} of this "
        "client has the same id and kept it. Check which member Annex Cloud's record is, and set the id on that one."
    )


def clear_later_duplicates(apps: Any, schema_editor: Any) -> None:
    Member = apps.get_model("members", "Member")
    shared = (
        Member.objects.exclude(annex_cloud_id="")
        .values("client_id", "annex_cloud_id")
        .annotate(members=Count("pk"))
        .filter(members__gt=1)
        .order_by("client_id", "annex_cloud_id")
    )
    for group in shared.iterator():
        same = Member.objects.filter(client_id=group["client_id"], annex_cloud_id=group["annex_cloud_id"])
        keeper, *later = same.order_by("pk").values_list("pk", flat=True)
        for pk in later:
            note = note_for(group["annex_cloud_id"], keeper)
            Member.objects.filter(pk=pk).update(annex_cloud_id="", annex_cloud_note=note)
            sys.stdout.write(f"\n  client {group['client_id']}, member {pk}: {note}")


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0009_dashboard_windows"),
    ]

    operations = [
        migrations.AddField(
            model_name="member",
            name="loyalty_opted_in",
            field=models.BooleanField(
                blank=True, editable=False, null=True, verbose_name="loyalty opt-in (Annex Cloud)"
            ),
        ),
        migrations.AddField(
            model_name="member",
            name="known_to_annex_cloud",
            field=models.BooleanField(blank=True, editable=False, null=True, verbose_name="known to Annex Cloud"),
        ),
        migrations.AddField(
            model_name="member",
            name="annex_cloud_read_at",
            field=models.DateTimeField(
                blank=True, editable=False, null=True, verbose_name="last read from Annex Cloud"
            ),
        ),
        migrations.AddField(
            model_name="member",
            name="annex_cloud_note",
            field=models.TextField(blank=True, editable=False, verbose_name="Annex Cloud note"),
        ),
        migrations.RunPython(clear_later_duplicates, migrations.RunPython.noop, elidable=False),
    ]
