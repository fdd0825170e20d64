"""Webhook events: the connection's own index becomes (connection, received_at), which the admin list reads per
connection (a client's, a vendor's or a client user's events, newest first) and the cascade's look-ups use too.

On PostgreSQL the table is partitioned by day (0016): CREATE INDEX on it makes one index per partition, and the
partitions made later (integrations/partitions.py) inherit it; DROP INDEX of the old one drops it from each.
"""

import django.db.models.deletion
from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('integrations', '0016_partitions_by_day'),
    ]

    operations = [
        migrations.AlterField(
            model_name='webhookevent',
            name='connection',
            field=models.ForeignKey(db_index=False, on_delete=django.db.models.deletion.CASCADE, related_name='webhook_events', to='integrations.connection'),
        ),
        migrations.AddIndex(
            model_name='webhookevent',
            index=models.Index(fields=['connection', 'received_at'], name='webhookevent_connection_time'),
        ),
    ]
