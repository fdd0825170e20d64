# The outbound messages' list read per template from (template, created_at), issue 22: a client user's list and the
# event-type filter walk each of their few templates' newest rows instead of the whole time index. The composite
# index serves the lookups by template alone too, so the foreign key's own index goes.

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("members", "0015_outboundmessage_to"),
    ]

    operations = [
        migrations.AddIndex(
            model_name="outboundmessage",
            index=models.Index(fields=["template", "created_at"], name="outboundmessage_template_time"),
        ),
        migrations.AlterField(
            model_name="outboundmessage",
            name="template",
            field=models.ForeignKey(
                db_index=False,
                on_delete=models.deletion.CASCADE,
                related_name="messages",
                to="members.messagetemplate",
            ),
        ),
    ]
