"""`Member.vibes_person_id` now lives in the vibes app (`VibesPerson`, copied by vibes/0002 first)."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0017_vibes_list_subscription_to_vibes_app"),
        ("vibes", "0002_vibes_person"),
    ]

    operations = [
        migrations.RemoveField(model_name="member", name="vibes_person_id"),
    ]
