"""An Annex Cloud id (when not blank) belongs to one member per client. A migration of its own, after 0010 has told
existing duplicates apart, so the index is built on data that holds it."""

from __future__ import annotations

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0010_default_rate_limits_unchosen"),
        ("members", "0010_loyalty_opt_in_and_annex_cloud_standing"),
    ]

    operations = [
        migrations.AddConstraint(
            model_name="member",
            constraint=models.UniqueConstraint(
                condition=models.Q(("annex_cloud_id", ""), _negated=True),
                fields=("client", "annex_cloud_id"),
                name="unique_member_annex_cloud_id_per_client",
                violation_error_message="Another member of this client has this Annex Cloud id.",
            ),
        ),
    ]
