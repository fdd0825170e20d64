"""A vendor package with hooks gone wrong, for tests/test_vendor_hooks.py: each module below has one mistake the
start-up check must name."""
