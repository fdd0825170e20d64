"""The registry of vendors: one line per vendor package, each of which declares its `VendorSpec` in `spec.py`.

Adding a vendor = a new package under integrations/ in the shape of the others, plus one line here. What settings
need of the vendors comes from here too: the apps to install (`vendor_apps`) and the queue of each vendor task
(`route_vendor_task`, a Celery router).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from importlib import import_module
from typing import Any

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


def vendor_apps() -> list[str]:
    """The vendor packages that are Django apps, in registry order (portal/settings.py installs them)."""
    return [spec.package for spec in VENDORS.values() if spec.is_app]


def route_vendor_task(
    name: str, args: Any, kwargs: Any, options: Any, task: Any = None, **kw: Any
) -> dict[str, str] | None:
    """A Celery router (in CELERY_TASK_ROUTES): a vendor task goes to the queue its spec's `task_queues` names."""
    for spec in VENDORS.values():
        for pattern, queue in spec.task_queues.items():
            if fnmatchcase(name, pattern):
                return {"queue": queue}
    return None
