"""The registry of vendors: one line per vendor package, each of which declares its `VendorSpec` in `spec.py`.

Adding a vendor = a new package under integrations/ in the shape of the others, plus one line here. What settings
need of the vendors comes from here too: the apps to install (`vendor_apps`) and the queue of each vendor task
(`route_vendor_task`, a Celery router).

A vendor package kept elsewhere (a test vendor, a client's own) is registered by the setting EXTRA_VENDOR_PACKAGES
instead, read here only: once when the portal starts (integrations/apps.py) and again whenever a test overrides it.
Settings cannot install such a package as an app (they are read before it), so it has no models of its own.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from importlib import import_module
from importlib.util import find_spec
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import Signal, receiver

from integrations.vendor_spec import VendorSpec

VENDOR_PACKAGES = (
    "integrations.annexcloud",
    "integrations.attentive",
    "integrations.vibes",
    "integrations.first_orion",
    "integrations.bazaarvoice",
    "integrations.sessionm",
)


# Sent (no arguments) once the extra vendor packages were read again: the code that mounts something per vendor at
# import (the callback URLs, the simulators) mounts the vendors that came or went.
registry_changed = Signal()


def _collect(packages: tuple[str, ...]) -> dict[str, VendorSpec]:
    specs = (import_module(f"{package}.spec").SPEC for package in packages)
    return {spec.key: spec for spec in specs}


# The registry is filled in place (never rebound), so the modules that imported it see every vendor registered later.
VENDORS: dict[str, VendorSpec] = _collect(VENDOR_PACKAGES)
VENDOR_CHOICES = [(spec.key, spec.label) for spec in VENDORS.values()]
# The vendors message templates may send through (SMS; their flows provide `message_sender`).
MESSAGE_VENDORS: list[str] = [key for key, spec in VENDORS.items() if spec.sends_messages]


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


def extra_vendor_packages() -> tuple[str, ...]:
    """The vendor packages the setting EXTRA_VENDOR_PACKAGES adds to the registry (none by default)."""
    return tuple(getattr(settings, "EXTRA_VENDOR_PACKAGES", ()))


def register_extra_packages() -> None:
    """Bring the registry in line with EXTRA_VENDOR_PACKAGES: its vendors added after the portal's own, any that left
    the setting removed, then `registry_changed` sent. Called when the apps are ready (their models are importable)."""
    extra = extra_vendor_packages()
    registered = _collect((*VENDOR_PACKAGES, *extra))
    for gone in set(VENDORS) - set(registered):  # never emptied meanwhile: other threads read it (the live server)
        del VENDORS[gone]
    VENDORS.update(registered)
    VENDOR_CHOICES[:] = [(spec.key, spec.label) for spec in VENDORS.values()]
    MESSAGE_VENDORS[:] = [key for key, spec in VENDORS.items() if spec.sends_messages]
    for package in extra:
        _import_tasks_of(package)
    registry_changed.send(sender=None)


def _import_tasks_of(package: str) -> None:
    # Celery finds the tasks of installed apps only; an extra package is no app, so its tasks are imported here.
    if find_spec(f"{package}.tasks") is not None:
        import_module(f"{package}.tasks")


@receiver(setting_changed)
def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    if setting == "EXTRA_VENDOR_PACKAGES":
        register_extra_packages()
