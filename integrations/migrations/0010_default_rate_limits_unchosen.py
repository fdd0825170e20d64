"""Connection forms used to submit the vendor's default rate limit as if an admin had chosen it, and a chosen limit
now caps the endpoints whose limits the vendor publishes (only Attentive publishes any: messages 150/s). A stored
Attentive limit equal to the default (10/s) is almost always that form default, so it is removed: those connections
go back to the published endpoint limits. A limit an admin set to another value stays."""

from django.db import migrations

# Attentive's default when this migration was written (a migration must not import live code).
ATTENTIVE_DEFAULT = 10.0


def forget_form_defaults(apps, schema_editor):
    Connection = apps.get_model("integrations", "Connection")
    candidates = Connection.objects.filter(vendor="attentive", settings__has_key="rate_limit_per_second")
    for connection in candidates.iterator():
        if float(connection.settings["rate_limit_per_second"]) == ATTENTIVE_DEFAULT:
            del connection.settings["rate_limit_per_second"]
            connection.save(update_fields=["settings"])


class Migration(migrations.Migration):
    dependencies = [("integrations", "0009_job_run_progress")]

    operations = [migrations.RunPython(forget_form_defaults, migrations.RunPython.noop)]
