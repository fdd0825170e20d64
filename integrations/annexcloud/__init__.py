"""Annex Cloud, the loyalty platform itself (Loyalty API v3)."""
