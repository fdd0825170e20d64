# The vendor calls' search for an error kind ("timeout"): the failed calls of that kind in time order, so the
# list's newest page reads only them (issue 22). Declared in VendorCall.Meta.indexes as `vendorcall_error_time`.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("integrations", "0013_admin_list_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="vendorcall",
            index=models.Index(
                condition=models.Q(("error_type", ""), _negated=True),
                fields=["error_type", "created_at"],
                name="vendorcall_error_time",
            ),
        ),
    ]
