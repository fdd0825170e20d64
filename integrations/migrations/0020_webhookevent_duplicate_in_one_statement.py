"""Webhook events: a repeated delivery is stored as a duplicate by the INSERT that brings it (issue 22, receiving at
the bare view's pace).

On PostgreSQL the dedup key lives in integrations_webhookevent_key, claimed by a trigger (0016). The trigger used to
let a repeated key fail the INSERT, and the portal then stored the delivery again as a duplicate: two statements, one
of them failing, for every repeat (a fifth of the deliveries in bench/vibes_ingest.py). Now the trigger stores it as
a duplicate at once (no event id, processed now), and `status` has a database default so the INSERT returns the
status the row was stored with. SQLite keeps its unique constraint and the second INSERT.
"""

from importlib import import_module

from django.db import migrations, models

# RunSQL on PostgreSQL only (SQLite keeps plain tables), as in 0016.
PostgreSQLOnly = import_module("integrations.migrations.0016_partitions_by_day").PostgreSQLOnly

CLAIM_KEY_OR_STORE_A_DUPLICATE = """
CREATE OR REPLACE FUNCTION integrations_webhookevent_claim_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id IS NOT NULL THEN
        INSERT INTO integrations_webhookevent_key (connection_id, event_id, event_type, received_at)
        VALUES (NEW.connection_id, NEW.event_id, NEW.event_type, NEW.received_at)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN  -- the key is another delivery's: this one is its duplicate
            NEW.event_id := NULL;
            NEW.status := 'duplicate';
            NEW.processed_at := now();
        END IF;
    END IF;
    RETURN NEW;
END $$;
"""

CLAIM_KEY = """
CREATE OR REPLACE FUNCTION integrations_webhookevent_claim_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id IS NOT NULL THEN
        INSERT INTO integrations_webhookevent_key (connection_id, event_id, event_type, received_at)
        VALUES (NEW.connection_id, NEW.event_id, NEW.event_type, NEW.received_at);
    END IF;
    RETURN NEW;
END $$;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0019_verbose_names"),
    ]

    operations = [
        migrations.AlterField(
            model_name="webhookevent",
            name="status",
            field=models.CharField(
                choices=[
                    ("received", "Received"),
                    ("processed", "Processed"),
                    ("ignored", "Ignored"),
                    ("duplicate", "Duplicate"),
                    ("rejected", "Rejected"),
                    ("failed", "Failed"),
                ],
                db_default="received",
                db_index=True,
                default="received",
                max_length=16,
            ),
        ),
        PostgreSQLOnly(CLAIM_KEY_OR_STORE_A_DUPLICATE, CLAIM_KEY),
    ]
