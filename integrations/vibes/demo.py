"""Vibes in the demo (manage.py seed_demo): credentials of earlier demos to trade for today's."""

from __future__ import annotations

# The demo's username used to be "sandbox": secrets are redacted wherever they appear, so that common word was
# blanked in every URL and log line. A demo connection still holding it gets today's username.
RETIRED_DEMO_SECRETS = {"api_username": "sandbox"}
