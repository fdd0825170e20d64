"""SignUpSource now belongs to the attentive app (integrations/attentive/migrations/0001_initial.py): removed from
this app's state only; the table and its rows stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0017_webhookevent_connection_time"),
        ("attentive", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="SignUpSource")],
            database_operations=[],
        ),
    ]
