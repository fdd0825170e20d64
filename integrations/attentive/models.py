"""What the portal keeps of Attentive beside its connection: a client's sign-up sources."""

from __future__ import annotations

from django.db import models

from integrations.models import Client


class SignUpSource(models.Model):
    """An Attentive sign-up flow of a client (Subscribers tab); the default one is used for subscriptions."""

    client = models.ForeignKey(Client, on_delete=models.CASCADE, related_name="sign_up_sources")
    source_id = models.CharField("sign-up source id", max_length=50)
    name = models.CharField(max_length=100, blank=True)
    is_default = models.BooleanField(default=False)

    class Meta:
        # The table keeps the name it had in the integrations app (moved by state alone: migrations 0001 here and
        # integrations 0018).
        db_table = "integrations_signupsource"
        ordering = ["client", "-is_default", "name"]
        constraints = [
            models.UniqueConstraint(fields=["client", "source_id"], name="unique_sign_up_source"),
            models.UniqueConstraint(
                fields=["client"], condition=models.Q(is_default=True), name="one_default_sign_up_source"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name or self.source_id} ({self.source_id})"
