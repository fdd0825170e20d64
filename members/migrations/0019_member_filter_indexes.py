"""The members list's filters at 2 M members (issue 22): an index led by each two- or three-valued filter's column
in the list's order (SMS opt-in, loyalty opt-in, known to Annex Cloud), one by tier (replacing the tier index), and
the inactive members' own. Why each exists: members/models.py. Building them reads the table once each: on a large
table, run it in a quiet hour.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0018_remove_member_vibes_person_id'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='member',
            name='member_tier',
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(fields=['opted_in', 'client', 'last_name', 'first_name', 'id'], name='member_sms_list_order'),
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(fields=['loyalty_opted_in', 'client', 'last_name', 'first_name', 'id'], name='member_loyalty_list_order'),
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(fields=['known_to_annex_cloud', 'client', 'last_name', 'first_name', 'id'], name='member_known_list_order'),
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(fields=['tier', 'client', 'last_name', 'first_name', 'id'], name='member_tier_list_order'),
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(condition=models.Q(('status', 'inactive')), fields=['client', 'last_name', 'first_name', 'id'], name='member_inactive'),
        ),
    ]
