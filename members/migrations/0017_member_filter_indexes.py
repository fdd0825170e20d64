"""The members list's filters at 2 M members (issue 22): an index in the list's order for each rare value (unknown
to Annex Cloud, opted out of the loyalty program, inactive) and one by tier (replacing the tier index). Why each
exists: members/models.py. Building them reads the table once each: on a large table, run it in a quiet hour.
"""

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('members', '0016_outboundmessage_template_time'),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name='member',
            name='member_tier',
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(fields=['tier', 'client', 'last_name', 'first_name', 'id'], name='member_tier_list_order'),
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(condition=models.Q(('known_to_annex_cloud', False)), fields=['client', 'last_name', 'first_name', 'id'], name='member_unknown_to_annex_cloud'),
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(condition=models.Q(('loyalty_opted_in', False)), fields=['client', 'last_name', 'first_name', 'id'], name='member_loyalty_opted_out'),
        ),
        migrations.AddIndex(
            model_name='member',
            index=models.Index(condition=models.Q(('status', 'inactive')), fields=['client', 'last_name', 'first_name', 'id'], name='member_inactive'),
        ),
    ]
