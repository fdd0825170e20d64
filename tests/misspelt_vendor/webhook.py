"""A webhooks module misspelt: the check must name it (tests/test_vendor_hooks.py)."""
