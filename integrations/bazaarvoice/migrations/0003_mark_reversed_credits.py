"""The applied credit of each award reversed before credits kept `reversed_at`, marked with the review's reversal time,
so that the dashboard's "Points awarded" list leaves it out as its chart already does."""

from django.db import migrations
from django.db.models import Q


def mark_reversed_credits(apps, schema_editor):
    Review = apps.get_model("bazaarvoice", "Review")
    PointsTransaction = apps.get_model("members", "PointsTransaction")
    reversed_reviews = Review.objects.filter(outcome="reversed").values_list("client_id", "review_id", "reversed_at")
    for client_id, review_id, reversed_at in reversed_reviews.iterator():
        award_key = f"bv-review-{review_id}"  # Review.award_key; its retries add "-retry-<n>"
        keys = Q(key=award_key) | Q(key__startswith=f"{award_key}-retry-")
        PointsTransaction.objects.filter(
            keys, client_id=client_id, activity="credit", status="applied", reversed_at__isnull=True
        ).update(reversed_at=reversed_at)


class Migration(migrations.Migration):
    dependencies = [
        ("bazaarvoice", "0002_pull_holder"),
        ("members", "0020_points_credit_reversed_at"),
    ]

    operations = [migrations.RunPython(mark_reversed_credits, migrations.RunPython.noop)]
