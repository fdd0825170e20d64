"""VibesListSubscription moves from the members app into the vibes app by state alone: the table keeps its name
(members_vibeslistsubscription) and its rows; the content type follows, so permissions and admin log entries that
name the model keep pointing at it."""

import django.db.models.deletion
from django.db import migrations, models


def content_type_to_vibes(apps, schema_editor):
    # A database migrated from zero has no content type yet (post_migrate creates it under `vibes`).
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="members", model="vibeslistsubscription").update(app_label="vibes")


def content_type_to_members(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="vibes", model="vibeslistsubscription").update(app_label="members")


class Migration(migrations.Migration):

    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("integrations", "0015_vendorcall_created_index_without_chart_columns"),
        ("members", "0015_outboundmessage_to"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="VibesListSubscription",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("person_id", models.CharField(max_length=100, verbose_name="Vibes person id")),
                        ("external_id", models.CharField(blank=True, max_length=100)),
                        ("mdn", models.CharField(blank=True, max_length=16)),
                        ("list_id", models.CharField(max_length=100, verbose_name="subscription list id")),
                        (
                            "state",
                            models.CharField(
                                choices=[("subscribed", "Subscribed"), ("unsubscribed", "Unsubscribed")], max_length=16
                            ),
                        ),
                        ("opt_in_date", models.DateTimeField(blank=True, null=True)),
                        ("opt_out_date", models.DateTimeField(blank=True, null=True)),
                        ("opt_out_reason", models.CharField(blank=True, max_length=50)),
                        ("acquisition_campaign_id", models.CharField(blank=True, max_length=100)),
                        ("last_event_date", models.DateTimeField()),
                        ("last_event_id", models.CharField(blank=True, max_length=100)),
                        (
                            "client",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="vibes_subscriptions",
                                to="integrations.client",
                            ),
                        ),
                        (
                            "member",
                            models.ForeignKey(
                                blank=True,
                                null=True,
                                on_delete=django.db.models.deletion.SET_NULL,
                                related_name="vibes_subscriptions",
                                to="members.member",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "members_vibeslistsubscription",
                        "ordering": ["client", "person_id", "list_id"],
                        "constraints": [
                            models.UniqueConstraint(
                                fields=("client", "person_id", "list_id"), name="one_vibes_state_per_list"
                            )
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_vibes, content_type_to_members),
    ]
