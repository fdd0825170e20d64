# The outbound messages' search by the number a message went to (exact, E.164), issue 22. Declared in
# OutboundMessage.Meta.indexes as `outboundmessage_to`.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0014_admin_list_indexes"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(fields=["to"], name="outboundmessage_to"),
        ),
    ]
