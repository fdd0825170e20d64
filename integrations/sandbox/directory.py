"""What a newcomer needs to try the simulators by hand: each one's base URL, the credentials it accepts (its
sandbox module's DEMO_SECRETS / DEMO_SETTINGS) and its control knobs (its optional CONTROLS, plus the outage knob
every simulator has). Read by the /sandbox/ page and by the connection forms' "Fill with the sandbox's credentials".
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from integrations.hooks import HasSimulatorControls, Simulates, demo_secrets, demo_settings, hook, hooks
from integrations.vendors import VENDORS

# Every simulator is mounted with this knob (integrations/sandbox/base.py outage_control).
OUTAGE_CONTROL = (
    "_outage",
    'POST {"status": 503, "times": 1000}: the next `times` calls answer `status` (a vendor outage for drills); '
    'POST {"reset": true} ends it; GET shows it.',
)
# Any call to any simulator may also ask for a failure itself.
FAILURE_HEADER = (
    "X-Sandbox-Fail: 401|403|429|500|503|slow (or ?sandbox_fail=… in a connection's URL): that call answers the "
    "status, or sleeps first (slow) to trigger a read timeout."
)


@dataclass(frozen=True)
class Simulator:
    key: str
    label: str
    base_url: str
    secrets: dict[str, str]
    settings: dict[str, str]
    controls: tuple[tuple[str, str], ...]
    summary: str


def simulators() -> list[Simulator]:
    """Every mounted simulator, in registry order."""
    return [simulator_of(key) for key in hooks(Simulates)]


def simulator_of(key: str) -> Simulator:
    spec, module = VENDORS[key], VENDORS[key].module("sandbox")
    own_controls = hook(spec, HasSimulatorControls)
    controls = (*(own_controls.CONTROLS if own_controls is not None else ()), OUTAGE_CONTROL)
    base_url = f"{settings.SANDBOX_BASE_URL.rstrip('/')}/{key}"
    return Simulator(
        key=key,
        label=spec.label,
        base_url=base_url,
        secrets=demo_secrets(spec),
        settings=demo_settings(spec),
        controls=tuple((f"{base_url}/{path}", description) for path, description in controls),
        summary=(module.__doc__ or "").strip().split("\n\n", 1)[0],
    )


def sandbox_secrets(key: str) -> dict[str, str]:
    """The credentials a vendor's simulator accepts ({} when it has none)."""
    return demo_secrets(VENDORS[key]) if key in VENDORS else {}


class SandboxFill(dict[str, str]):
    """Form field name -> value, for the fill button's JSON; `shown` is what the box shows people: each field's label
    (the vendor's word, e.g. "API secret"), never the form's internal name (`secret__api_secret`)."""

    def __init__(self, values: dict[str, str], labels: dict[str, str]) -> None:
        super().__init__(values)
        self.labels = labels

    @property
    def shown(self) -> list[tuple[str, str]]:
        return [(self.labels.get(name, name), value) for name, value in self.items()]


def field_label(name: str, spec_labels: dict[str, str]) -> str:
    return spec_labels.get(name) or name.replace("_", " ").capitalize()


def sandbox_fill(key: str, environment: str, *, secret_prefix: str = "", setting_prefix: str = "") -> SandboxFill:
    """Form field name -> value of the simulator's credentials, for the forms' "Fill with the sandbox's credentials"
    button; empty unless the simulators are enabled here and the connection is (or may become) a sandbox one."""
    if not sandbox_enabled() or environment not in ("", "sandbox") or key not in VENDORS:
        return SandboxFill({}, {})
    spec = VENDORS[key]
    if hook(spec, Simulates) is None:
        return SandboxFill({}, {})
    secret_labels = {secret.name: secret.label for secret in spec.secrets}
    setting_labels = {name: str(f.label) for name, f in spec.setting_fields.items() if f.label}
    values, labels = {}, {}
    for name, value in demo_secrets(spec).items():
        values[secret_prefix + name], labels[secret_prefix + name] = value, field_label(name, secret_labels)
    if setting_prefix:
        for name, value in demo_settings(spec).items():
            values[setting_prefix + name], labels[setting_prefix + name] = value, field_label(name, setting_labels)
    return SandboxFill(values, labels)


def sandbox_enabled() -> bool:
    """The simulators (and so their credentials) are shown only where they are served (SANDBOX_ENABLED)."""
    return bool(settings.SANDBOX_ENABLED)
