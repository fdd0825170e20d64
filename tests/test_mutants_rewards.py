"""integrations/bazaarvoice/rewards.py's rules, pinned where the pull's flow tests leave room (found by `make
mutate`): a client's reward rules read from its connection's settings, why a review or a reviewer gets no points,
and the key of each attempt at an award. Fast tests: the rules are plain functions of settings, reviews and
Annex Cloud profiles."""

from __future__ import annotations

import pytest

from integrations.bazaarvoice.models import Review
from integrations.bazaarvoice.rewards import RewardRules, why_not_eligible
from integrations.models import Connection


def rules(**settings) -> RewardRules:
    return RewardRules.of(Connection(vendor="bazaarvoice", settings=settings))


def review(rating: int | None, *, ratings_only: bool = False) -> Review:
    return Review(rating=rating, ratings_only=ratings_only)


def test_without_settings_the_rules_are_the_documented_defaults():
    assert rules() == RewardRules(action_id="100", points=50, reason="Ratings and Reviews")
    assert rules() == rules(action_id="", points_per_review="", reason="", minimum_rating="", ratings_only_count="")
    assert (rules().minimum_rating, rules().ratings_only_count) == (None, True)


def test_the_settings_are_read_as_their_types():
    read = rules(action_id=200, points_per_review="25", reason="Thanks", minimum_rating="4", ratings_only_count="no")
    assert read == RewardRules(action_id="200", points=25, reason="Thanks", minimum_rating=4, ratings_only_count=False)
    assert rules(ratings_only_count="yes").ratings_only_count and rules(minimum_rating=0).minimum_rating is None


@pytest.mark.parametrize(
    ("rating", "minimum", "why"),
    [
        (3, "4", "Rated 3: the client rewards reviews rated 4 or more."),
        (None, "1", "Rated nothing: the client rewards reviews rated 1 or more."),
        (4, "4", ""),
        (5, "4", ""),
        (1, "", ""),
    ],
)
def test_a_rating_under_the_minimum_is_not_counted_and_the_minimum_itself_is(rating, minimum, why):
    assert rules(minimum_rating=minimum).why_not_counted(review(rating)) == why


def test_a_rating_without_a_written_review_counts_unless_the_client_says_no():
    rating_only = review(5, ratings_only=True)
    assert rules().why_not_counted(rating_only) == ""
    assert rules(ratings_only_count="no").why_not_counted(review(5)) == ""
    assert (
        rules(ratings_only_count="no").why_not_counted(rating_only)
        == "A rating without a written review: the client rewards written reviews only."
    )


@pytest.mark.parametrize(
    ("profile", "why"),
    [
        ({"id": "a@x.com"}, ""),
        ({"optInStatus": "YES", "status": "ACTIVE"}, ""),
        ({"optInStatus": "yes", "status": "active"}, ""),
        ({"optInStatus": "", "status": None}, ""),
        ({"optInStatus": "no"}, "The reviewer opted out of the loyalty program (optInStatus NO): no points."),
        (
            {"optInStatus": "NO", "status": "INACTIVE"},
            "The reviewer opted out of the loyalty program (optInStatus NO): no points.",
        ),
        ({"status": "Inactive"}, "The reviewer's loyalty membership is inactive: no points."),
        ({"status": "BLOCKED"}, "The reviewer's loyalty membership is blocked: no points."),
    ],
)
def test_an_opted_out_or_inactive_reviewer_is_not_eligible(profile, why):
    assert why_not_eligible(profile) == why
