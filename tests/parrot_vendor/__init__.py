"""Parrot, a seventh vendor that exists only for tests/test_seventh_vendor.py: the proof that a vendor is one package
and one registry line (EXTRA_VENDOR_PACKAGES). Parrot keeps members (by email), lets the portal verify a key, pulls
"squawks" on a schedule and calls the portal back when a member leaves. It has no models: a package registered by the
setting is not installed as an app (settings are read before it)."""
