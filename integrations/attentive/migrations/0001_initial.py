"""SignUpSource moves from the integrations app into the attentive app by state alone: the table keeps its name
(integrations_signupsource) and its rows; the content type follows, so permissions and admin log entries that name
the model keep pointing at it."""

import django.db.models.deletion
from django.db import migrations, models


def content_type_to_attentive(apps, schema_editor):
    # A database migrated from zero has no content type yet (post_migrate creates it under `attentive`).
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="integrations", model="signupsource").update(app_label="attentive")


def content_type_to_integrations(apps, schema_editor):
    ContentType = apps.get_model("contenttypes", "ContentType")
    ContentType.objects.filter(app_label="attentive", model="signupsource").update(app_label="integrations")


class Migration(migrations.Migration):
    initial = True

    dependencies = [
        ("contenttypes", "0002_remove_content_type_name"),
        ("integrations", "0017_webhookevent_connection_time"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.CreateModel(
                    name="SignUpSource",
                    fields=[
                        ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                        ("source_id", models.CharField(max_length=50, verbose_name="sign-up source id")),
                        ("name", models.CharField(blank=True, max_length=100)),
                        ("is_default", models.BooleanField(default=False)),
                        (
                            "client",
                            models.ForeignKey(
                                on_delete=django.db.models.deletion.CASCADE,
                                related_name="sign_up_sources",
                                to="integrations.client",
                            ),
                        ),
                    ],
                    options={
                        "db_table": "integrations_signupsource",
                        "ordering": ["client", "-is_default", "name"],
                        "constraints": [
                            models.UniqueConstraint(fields=("client", "source_id"), name="unique_sign_up_source"),
                            models.UniqueConstraint(
                                condition=models.Q(("is_default", True)),
                                fields=("client",),
                                name="one_default_sign_up_source",
                            ),
                        ],
                    },
                ),
            ],
            database_operations=[],
        ),
        migrations.RunPython(content_type_to_attentive, content_type_to_integrations),
    ]
