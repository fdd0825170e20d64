"""Vendor calls and webhook events partitioned by day on PostgreSQL (issue 22); SQLite keeps plain tables.

Plain SQL rather than django-postgres-extra: two tables, no new dependency (and none that replaces Django's
PostgreSQL backend), and the statements below are all there is to review. Django's state is unchanged apart from
the two indexes the call log no longer carries; what PostgreSQL holds besides (integrations/partitions.py says it):

- each table is `PARTITION BY RANGE (<time>)` with one partition a day (`<table>_pYYYYMMDD`, UTC days) and a DEFAULT
  partition, so an insert never fails for a missing day. The days of the existing rows, yesterday and the next
  PARTITION_DAYS_AHEAD days are made here; the nightly prune job keeps making the days ahead. The existing rows are
  copied (rename old, create partitioned, copy, recreate the old table's indexes and foreign keys by name, drop old);
- ids keep coming from a sequence (it continues the old identity sequence), so they stay unique without a unique
  index on id alone (a unique index on a partitioned table must include the partition key);
- webhook events: primary key (id, received_at). The exact dedup on (connection, event_id, event_type) that a
  partitioned table cannot hold as a unique index is kept by a small unpartitioned key table of the same name
  (`one_webhook_event_per_vendor_event`), claimed by a trigger in the same INSERT: a duplicate still fails that one
  statement with an IntegrityError (integrations/inbound.py store_event), one round trip as before;
- vendor calls: no primary-key index and a 4-byte connection id, to keep a compact call ≤ 120 bytes (an id is found
  through a BRIN index: ids follow time within a day's partition).
"""

from django.db import migrations

DAYS_AHEAD = 7  # settings.PARTITION_DAYS_AHEAD's default; the nightly job keeps its own count from then on

ENSURE_DAY_PARTITION = """
-- A day's partition of `parent` (UTC day), unless it exists or the DEFAULT partition already holds rows of that day
-- (they stay there, pruned row by row; PostgreSQL would refuse the new partition). Returns whether it made one.
CREATE OR REPLACE FUNCTION portal_ensure_day_partition(parent text, time_column text, day date)
RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
    part text := parent || '_p' || to_char(day, 'YYYYMMDD');
    starts timestamptz := day::timestamp AT TIME ZONE 'UTC';
    taken boolean := false;
BEGIN
    IF to_regclass(quote_ident(part)) IS NOT NULL THEN
        RETURN false;
    END IF;
    IF to_regclass(quote_ident(parent || '_default')) IS NOT NULL THEN
        EXECUTE format('SELECT EXISTS (SELECT 1 FROM %I WHERE %I >= $1 AND %I < $2)', parent || '_default',
                       time_column, time_column)
            INTO taken USING starts, starts + interval '1 day';
    END IF;
    IF taken THEN
        RETURN false;
    END IF;
    EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)', part, parent, starts,
                   starts + interval '1 day');
    RETURN true;
END $$;
"""


def partitioned_copy(table: str, time_column: str, columns: str, primary_key: str, skip_indexes: list[str]) -> str:
    """The statements that turn `table` into a table partitioned by day on `time_column`, keeping its rows, its ids'
    sequence, its indexes (but `skip_indexes`) and its foreign keys under their names."""
    old = f"{table}_unpartitioned"
    skipped = ", ".join(f"'{name}'" for name in [f"{old}_pkey", *skip_indexes])
    key = f"ALTER TABLE {table} ADD CONSTRAINT {table}_pkey PRIMARY KEY ({primary_key});" if primary_key else ""
    return f"""
ALTER TABLE {table} RENAME TO {old};
ALTER TABLE {old} RENAME CONSTRAINT {table}_pkey TO {old}_pkey;
ALTER SEQUENCE {table}_id_seq RENAME TO {old}_id_seq;
CREATE TABLE {table} ({columns}) PARTITION BY RANGE ({time_column});
CREATE SEQUENCE {table}_id_seq AS bigint OWNED BY {table}.id;
SELECT setval('{table}_id_seq', GREATEST(COALESCE(pg_sequence_last_value('{old}_id_seq'), 0),
                                        COALESCE((SELECT max(id) FROM {old}), 0)) + 1, false);
ALTER TABLE {table} ALTER COLUMN id SET DEFAULT nextval('{table}_id_seq');
{key}
CREATE TABLE {table}_default PARTITION OF {table} DEFAULT;
SELECT portal_ensure_day_partition('{table}', '{time_column}', day) FROM (
    SELECT DISTINCT ({time_column} AT TIME ZONE 'UTC')::date AS day FROM {old}
    UNION SELECT (now() AT TIME ZONE 'UTC')::date + generate_series(-1, {DAYS_AHEAD})
) AS days ORDER BY day;
DO $$
DECLARE
    names text := (SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) FROM pg_attribute
                   WHERE attrelid = '{old}'::regclass AND attnum > 0 AND NOT attisdropped);
    definitions text[];
    definition text;
BEGIN
    EXECUTE format('INSERT INTO {table} (%s) SELECT %s FROM {old}', names, names);
    SELECT array_agg(regexp_replace(pg_get_indexdef(indexrelid), ' ON (\\S+\\.)?{old} ', ' ON {table} '))
        INTO definitions FROM pg_index JOIN pg_class ON pg_class.oid = indexrelid
        WHERE indrelid = '{old}'::regclass AND relname NOT IN ({skipped});
    SELECT definitions || array_agg(format('ALTER TABLE {table} ADD CONSTRAINT %I %s', conname,
                                           pg_get_constraintdef(oid)))
        INTO definitions FROM pg_constraint WHERE conrelid = '{old}'::regclass AND contype = 'f';
    DROP TABLE {old};
    FOREACH definition IN ARRAY COALESCE(definitions, '{{}}') LOOP
        EXECUTE definition;
    END LOOP;
END $$;
"""


# Widest fixed-size columns first (no padding between them), then the texts: a compact call's row is as short as
# PostgreSQL allows. The connection id takes 4 bytes: a deployment has thousands of connections, never 2**31.
VENDOR_CALL_COLUMNS = """
    id bigint NOT NULL,
    created_at timestamptz NOT NULL,
    connection_id integer NOT NULL,
    latency_ms integer NOT NULL CONSTRAINT integrations_vendorcall_latency_ms_check CHECK (latency_ms >= 0),
    status_code smallint NULL CONSTRAINT integrations_vendorcall_status_code_check CHECK (status_code >= 0),
    attempt smallint NOT NULL CONSTRAINT integrations_vendorcall_attempt_check CHECK (attempt >= 0),
    method varchar(8) NOT NULL,
    url text NOT NULL,
    request_headers jsonb NOT NULL,
    request_body text NOT NULL,
    response_body text NOT NULL,
    error_type varchar(64) NOT NULL,
    error text NOT NULL
"""

VENDOR_CALLS = (
    partitioned_copy("integrations_vendorcall", "created_at", VENDOR_CALL_COLUMNS, "", [])
    + """
-- Appended in time order, so its pages can be full; an id's day found through BRIN (summarised as pages fill).
DROP INDEX vendorcall_created;
CREATE INDEX vendorcall_created ON integrations_vendorcall (created_at) WITH (fillfactor = 100);
CREATE INDEX integrations_vendorcall_id_brin ON integrations_vendorcall USING brin (id)
    WITH (pages_per_range = 16, autosummarize = on);
"""
)

WEBHOOK_EVENTS = (
    partitioned_copy(
        "integrations_webhookevent",
        "received_at",
        "LIKE integrations_webhookevent_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS",
        "id, received_at",
        ["one_webhook_event_per_vendor_event"],
    )
    + """
-- The dedup the partitioned table cannot hold: one key per (connection, event id, event type), claimed in the same
-- INSERT as the event (a duplicate fails that statement), released with the event, emptied with the table.
CREATE TABLE integrations_webhookevent_key (
    connection_id bigint NOT NULL,
    event_id varchar(100) NOT NULL,
    event_type varchar(50) NOT NULL,
    received_at timestamptz NOT NULL,
    CONSTRAINT one_webhook_event_per_vendor_event PRIMARY KEY (connection_id, event_id, event_type)
);
-- Retention releases the keys of a dropped day by its time range.
CREATE INDEX integrations_webhookevent_key_received_at ON integrations_webhookevent_key (received_at);
INSERT INTO integrations_webhookevent_key (connection_id, event_id, event_type, received_at)
    SELECT connection_id, event_id, event_type, received_at FROM integrations_webhookevent WHERE event_id IS NOT NULL;

CREATE FUNCTION integrations_webhookevent_claim_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.event_id IS NOT NULL THEN
        INSERT INTO integrations_webhookevent_key (connection_id, event_id, event_type, received_at)
        VALUES (NEW.connection_id, NEW.event_id, NEW.event_type, NEW.received_at);
    END IF;
    RETURN NEW;
END $$;
CREATE FUNCTION integrations_webhookevent_release_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.event_id IS NOT NULL THEN
        DELETE FROM integrations_webhookevent_key
        WHERE connection_id = OLD.connection_id AND event_id = OLD.event_id AND event_type = OLD.event_type;
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION integrations_webhookevent_move_key() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.event_id IS NOT NULL THEN
        DELETE FROM integrations_webhookevent_key
        WHERE connection_id = OLD.connection_id AND event_id = OLD.event_id AND event_type = OLD.event_type;
    END IF;
    IF NEW.event_id IS NOT NULL THEN
        INSERT INTO integrations_webhookevent_key (connection_id, event_id, event_type, received_at)
        VALUES (NEW.connection_id, NEW.event_id, NEW.event_type, NEW.received_at);
    END IF;
    RETURN NULL;
END $$;
CREATE FUNCTION integrations_webhookevent_release_all_keys() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE integrations_webhookevent_key;
    RETURN NULL;
END $$;
CREATE TRIGGER claim_key BEFORE INSERT ON integrations_webhookevent
    FOR EACH ROW EXECUTE FUNCTION integrations_webhookevent_claim_key();
CREATE TRIGGER release_key AFTER DELETE ON integrations_webhookevent
    FOR EACH ROW EXECUTE FUNCTION integrations_webhookevent_release_key();
CREATE TRIGGER move_key AFTER UPDATE OF connection_id, event_id, event_type ON integrations_webhookevent
    FOR EACH ROW WHEN ((OLD.connection_id, OLD.event_id, OLD.event_type)
                       IS DISTINCT FROM (NEW.connection_id, NEW.event_id, NEW.event_type))
    EXECUTE FUNCTION integrations_webhookevent_move_key();
CREATE TRIGGER release_all_keys AFTER TRUNCATE ON integrations_webhookevent
    FOR EACH STATEMENT EXECUTE FUNCTION integrations_webhookevent_release_all_keys();
"""
)


class PostgreSQLOnly(migrations.RunSQL):
    """RunSQL on PostgreSQL; nothing on another database (SQLite keeps plain tables)."""

    def database_forwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_forwards(app_label, schema_editor, from_state, to_state)

    def database_backwards(self, app_label, schema_editor, from_state, to_state):
        if schema_editor.connection.vendor == "postgresql":
            super().database_backwards(app_label, schema_editor, from_state, to_state)


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0015_vendorcall_created_index_without_chart_columns"),
    ]

    operations = [
        # The (connection, time) index and the error kind's index: each is bytes on every call. A connection's
        # newest calls are read from the ForeignKey's index, an error kind from the failures' index.
        migrations.RemoveIndex(model_name="vendorcall", name="integration_connect_94071c_idx"),
        migrations.RemoveIndex(model_name="vendorcall", name="vendorcall_error_time"),
        # One script each (its functions' bodies hold semicolons: not split into statements).
        PostgreSQLOnly([ENSURE_DAY_PARTITION, VENDOR_CALLS, WEBHOOK_EVENTS]),
    ]
