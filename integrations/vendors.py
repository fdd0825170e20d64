"""The registry of vendors: one line per vendor package, each of which declares its `VendorSpec` in `spec.py`.

Adding a vendor = a new package under integrations/ in the shape of the others, plus one line here.
"""

from __future__ import annotations

from importlib import import_module

from integrations.vendor_spec import VendorSpec

VENDOR_PACKAGES = (
    "integrations.annexcloud",
    "integrations.attentive",
    "integrations.vibes",
    "integrations.first_orion",
    "integrations.bazaarvoice",
    "integrations.sessionm",
)


def _collect() -> dict[str, VendorSpec]:
    specs = (import_module(f"{package}.spec").SPEC for package in VENDOR_PACKAGES)
    return {spec.key: spec for spec in specs}


VENDORS: dict[str, VendorSpec] = _collect()
VENDOR_CHOICES = [(spec.key, spec.label) for spec in VENDORS.values()]
# The vendors message templates may send through (SMS; their flows provide `message_sender`).
MESSAGE_VENDORS: tuple[str, ...] = tuple(key for key, spec in VENDORS.items() if spec.sends_messages)


def vendor_modules(role: str) -> dict[str, object]:
    """Every vendor's module for a role (e.g. all `sandbox` modules), keyed by vendor."""
    found = {key: spec.module(role) for key, spec in VENDORS.items()}
    return {key: module for key, module in found.items() if module is not None}
