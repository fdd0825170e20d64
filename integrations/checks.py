"""Start-up checks of the vendor registry (Django system checks, run by runserver, migrate, check and the test
runner): a vendor package whose hooks do not match its spec fails start-up instead of silently losing a feature.

- integrations.E001: a hook the spec says the vendor has (integrations/hooks.py HOOKS_REQUIRED) is missing;
- integrations.E002: a capability half provided (e.g. `reconcile_member` without `needs_sync`);
- integrations.E003: a public name close to a hook name of its module's role (`DEMO_SECRET`, `check_conection`);
- integrations.E004: a task queue in the spec that no worker listens to (not in PORTAL_QUEUES);
- integrations.E005: a schedule naming a task no tasks module defines (its beat entry would fail every run);
- integrations.E006: a `task_queues` pattern that names no task (the tasks it meant go to the default queue);
- integrations.E007: a hook function whose parameters are not its capability's (the shared code would call it with
  arguments it does not take: a TypeError at the first call, not at start-up);
- integrations.E008: a module named close to a role's module (`webhook.py` for `webhooks.py`): the shared code looks
  for the role's name only, so everything in it would be silently unused.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextvars import ContextVar
from difflib import get_close_matches
from fnmatch import fnmatchcase
from importlib import import_module
from inspect import Parameter, signature
from pkgutil import iter_modules
from types import ModuleType
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, register

from integrations.hooks import HOOKS_REQUIRED, ROLES, hook_names
from integrations.queue import task_names
from integrations.vendor_spec import VendorSpec
from integrations.vendors import VENDORS

# How alike a name must be to a hook name to be taken for a misspelling of it (difflib's ratio).
MISSPELT_CUTOFF = 0.8
# A vendor package's modules that Django, Celery or the registry read by name, besides the hooks' roles.
MODULES_READ_BY_NAME = ("apps", "models", "signals", "spec", "tasks")


# Reading the task names imports every tasks module, and Celery's Django fixup runs the system checks when it does:
# the check run from inside its own run has nothing to add.
_checking: ContextVar[bool] = ContextVar("checking_vendor_hooks", default=False)


@register()
def vendor_hooks_match_their_specs(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    if _checking.get():
        return []
    token = _checking.set(True)
    try:
        return [problem for spec in VENDORS.values() for problem in problems_of(spec)]
    finally:
        _checking.reset(token)


def problems_of(spec: VendorSpec) -> Iterator[CheckMessage]:
    yield from misspelt_modules(spec)
    yield from missing_hooks(spec)
    for role in sorted(set(ROLES.values())):
        if (module := spec.module(role)) is not None:
            yield from half_provided(spec, role, module)
            yield from misspelt_hooks(spec, role, module)
            yield from mismatched_hooks(role, module, spec)
    yield from unheard_queues(spec)
    yield from unknown_tasks(spec)


def misspelt_modules(spec: VendorSpec) -> Iterator[CheckMessage]:
    known = sorted({*ROLES.values(), *MODULES_READ_BY_NAME})
    for found in iter_modules(import_module(spec.package).__path__):
        if found.name in known:
            continue
        meant = get_close_matches(found.name, known, n=1, cutoff=MISSPELT_CUTOFF)
        if meant:
            yield Error(
                f"{spec.package}.{found.name} looks like a misspelt module: did you mean {meant[0]}?",
                hint=f"The portal reads a vendor's {meant[0]} module by that name only; rename it.",
                obj=spec.package,
                id="integrations.E008",
            )


def missing_hooks(spec: VendorSpec) -> Iterator[CheckMessage]:
    for capability, required, why in HOOKS_REQUIRED:
        module = spec.module(ROLES[capability])
        absent = [name for name in hook_names(capability) if not hasattr(module, name)]
        if required(spec) and absent:
            yield Error(
                f"{spec.label} lacks {', '.join(absent)} in {spec.package}.{ROLES[capability]}, which it must have: "
                f"{why}.",
                hint=f"Define it there ({capability.__name__} in integrations/hooks.py says how).",
                obj=spec.package,
                id="integrations.E001",
            )


def half_provided(spec: VendorSpec, role: str, module: ModuleType) -> Iterator[CheckMessage]:
    for capability in (capability for capability, its_role in ROLES.items() if its_role == role):
        names = hook_names(capability)
        present = [name for name in names if hasattr(module, name)]
        if present and len(present) < len(names):
            missing = [name for name in names if name not in present]
            yield Error(
                f"{module.__name__} has {', '.join(present)} but not {', '.join(missing)}: the shared code uses "
                f"none of {capability.__name__} until it has all.",
                obj=spec.package,
                id="integrations.E002",
            )


def misspelt_hooks(spec: VendorSpec, role: str, module: ModuleType) -> Iterator[CheckMessage]:
    known = [name for capability, its_role in ROLES.items() if its_role == role for name in hook_names(capability)]
    for name in own_public_names(module):
        if name in known:
            continue
        meant = get_close_matches(name, known, n=1, cutoff=MISSPELT_CUTOFF) or [
            hook for hook in known if hook.lower() == name.lower()
        ]
        if meant:
            yield Error(
                f"{module.__name__}.{name} looks like a misspelt hook: did you mean {meant[0]}?",
                hint="Rename it to the hook's name, or to a name that is not close to one (a hook misspelt is "
                "never called).",
                obj=spec.package,
                id="integrations.E003",
            )


def mismatched_hooks(role: str, module: ModuleType, spec: VendorSpec) -> Iterator[CheckMessage]:
    for capability in (capability for capability, its_role in ROLES.items() if its_role == role):
        for name, declared in vars(capability).items():
            hook_function = getattr(module, name, None)
            if name.startswith("_") or not callable(declared) or not callable(hook_function):
                continue
            if not takes_what_is_declared(hook_function, declared):
                yield Error(
                    f"{module.__name__}.{name}{signature(hook_function)} does not take what {capability.__name__} "
                    f"passes it: {name}{signature(declared).replace(parameters=declared_parameters(declared))}.",
                    hint="Give it the parameters integrations/hooks.py declares (the shared code passes them by "
                    "position).",
                    obj=spec.package,
                    id="integrations.E007",
                )


def declared_parameters(declared: Any) -> list[Parameter]:
    """A capability method's parameters without `self`."""
    return list(signature(declared).parameters.values())[1:]


def takes_what_is_declared(hook_function: Any, declared: Any) -> bool:
    """The hook takes as many arguments by position as declared (names may differ: they are passed by position),
    and needs nothing more (extra parameters have defaults)."""
    given = list(signature(hook_function).parameters.values())
    if any(p.kind == Parameter.VAR_POSITIONAL for p in given):
        return True  # takes any number
    wanted = len(declared_parameters(declared))
    positional = [p for p in given if p.kind in (Parameter.POSITIONAL_ONLY, Parameter.POSITIONAL_OR_KEYWORD)]
    needed = [p for p in given if p.default is Parameter.empty and p.kind != Parameter.VAR_KEYWORD]
    return len(positional) >= wanted and len(needed) <= wanted


def own_public_names(module: ModuleType) -> list[str]:
    """The public names a module defines itself: not the modules, functions and classes it imports, nor classes
    (a hook is never a class; a simulator's `State` is not a misspelt `state`)."""
    names = []
    for name, value in vars(module).items():
        if name.startswith("_") or isinstance(value, ModuleType | type):
            continue
        if callable(value) and getattr(value, "__module__", module.__name__) != module.__name__:
            continue
        names.append(name)
    return names


def unheard_queues(spec: VendorSpec) -> Iterator[CheckMessage]:
    for pattern, queue in spec.task_queues.items():
        if queue not in settings.PORTAL_QUEUES:
            yield Error(
                f"{spec.label} routes {pattern!r} to the queue {queue!r}, which no worker listens to.",
                hint=f"Use one of PORTAL_QUEUES: {', '.join(settings.PORTAL_QUEUES)}.",
                obj=spec.package,
                id="integrations.E004",
            )


def unknown_tasks(spec: VendorSpec) -> Iterator[CheckMessage]:
    known = task_names()
    for schedule in spec.schedules:
        if schedule.task not in known:
            yield Error(
                f"{spec.label}'s schedule {schedule.name!r} names the task {schedule.task!r}, which no tasks module "
                "defines.",
                hint=f"Name a task of {spec.package}.tasks (its @shared_task name).",
                obj=spec.package,
                id="integrations.E005",
            )
    for pattern in spec.task_queues:
        if not any(fnmatchcase(name, pattern) for name in known):
            yield Error(
                f"{spec.label} routes {pattern!r}, which names no task: the tasks it meant go to the default queue.",
                obj=spec.package,
                id="integrations.E006",
            )
