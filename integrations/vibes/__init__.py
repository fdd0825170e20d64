"""Vibes Mobile Engagement Platform: subscription callbacks in, person sync out (seed 001)."""
