"""Vibes Mobile Engagement Platform: subscription callbacks in, person sync out (person API v2)."""
