"""Which Vibes person a member is moves from `Member.vibes_person_id` (members app) to `VibesPerson` (one row per
member Vibes named a person for). The rows are copied in one statement; members/0018 then drops the column."""

import django.db.models.deletion
from django.db import migrations, models

COPY_PERSON_IDS = """
    INSERT INTO vibes_vibesperson (member_id, person_id)
    SELECT id, vibes_person_id FROM members_member WHERE vibes_person_id <> ''
"""
# Back to the column (members/0018 reversed has put it back, empty).
COPY_PERSON_IDS_BACK = """
    UPDATE members_member SET vibes_person_id = (
        SELECT person_id FROM vibes_vibesperson WHERE vibes_vibesperson.member_id = members_member.id
    ) WHERE id IN (SELECT member_id FROM vibes_vibesperson)
"""


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0017_vibes_list_subscription_to_vibes_app"),
        ("vibes", "0001_initial"),
    ]

    operations = [
        migrations.CreateModel(
            name="VibesPerson",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("person_id", models.CharField(db_index=True, max_length=100, verbose_name="Vibes person id")),
                (
                    "member",
                    models.OneToOneField(
                        on_delete=django.db.models.deletion.CASCADE,
                        related_name="vibes_person",
                        to="members.member",
                    ),
                ),
            ],
        ),
        migrations.RunSQL(COPY_PERSON_IDS, COPY_PERSON_IDS_BACK),
    ]
