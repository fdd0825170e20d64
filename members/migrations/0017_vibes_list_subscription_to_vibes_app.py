"""VibesListSubscription now belongs to the vibes app (integrations/vibes/migrations/0001_initial.py): removed from
this app's state only; the table and its rows stay."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0016_outboundmessage_template_time"),
        ("vibes", "0001_initial"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[migrations.DeleteModel(name="VibesListSubscription")],
            database_operations=[],
        ),
    ]
