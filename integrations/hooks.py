"""The hooks a vendor package offers the shared code, typed: one small Protocol per capability, each held by one
module of the package (its role: `flows`, `admin`, `sandbox`, `demo`, `webhooks`, `views`, `timeline`, `retention`,
`consent`).

The shared code asks for a capability, never for a name: `hook(spec, SendsMessages)` is the vendor's flows module
typed as `SendsMessages` when it has every member of it, else None; `hooks(SeedsDemo)` is every vendor's. A hook
misspelt in a vendor package would silently turn a feature off, so the system check in integrations/checks.py fails
start-up on one (a public name close to a hook name of its role), on a capability half provided, and on a hook the
spec says the vendor has but its module lacks (`HOOKS_REQUIRED`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from integrations.vendor_spec import VendorSpec
from integrations.vendors import VENDORS

if TYPE_CHECKING:
    from datetime import datetime

    from django.db.models import Q

    from integrations.activity import ActivitySeries
    from integrations.admin.base import VendorAdmin
    from integrations.http import AuthError
    from integrations.inbound import InboundHandler
    from integrations.models import Client, Connection
    from members.messaging import MessageSender
    from members.models import Member, MemberVendorState
    from members.timeline import Entry

# --- flows.py ----------------------------------------------------------------------------------------------------


@runtime_checkable
class ChecksConnection(Protocol):
    """*Verify*: a read that proves the credentials work; answers what it found, raises a VendorError if not."""

    def check_connection(self, connection: Connection) -> str: ...


@runtime_checkable
class ExplainsAuthFailure(Protocol):
    """The vendor's own words for refused credentials (which key, where to get it)."""

    def explain_auth_failure(self, error: AuthError) -> str: ...


@runtime_checkable
class KeepsMembersInSync(Protocol):
    """A vendor that holds members (members/sync.py): which changes concern it, and bringing one member in line."""

    def needs_sync(self, member: Member, changed_fields: set[str], previous: dict[str, Any]) -> bool: ...

    def reconcile_member(self, connection: Connection, member: Member, state: MemberVendorState) -> dict[str, Any]: ...


@runtime_checkable
class ReadsMemberState(Protocol):
    """The drift check: what the vendor holds of a member now, and how that differs from what it confirmed."""

    def read_member_state(self, connection: Connection, member: Member) -> dict[str, Any]: ...

    def differs(self, confirmed: dict[str, Any], now: dict[str, Any]) -> str: ...


@runtime_checkable
class SendsMessages(Protocol):
    """Message templates send through this vendor (`VendorSpec.sends_messages`)."""

    def message_sender(self, connection: Connection) -> MessageSender: ...


@runtime_checkable
class ReportsActivity(Protocol):
    """Series of its own on the dashboard's charts (e.g. reviews pulled)."""

    def activity_series(self) -> Iterable[ActivitySeries]: ...


# --- retention.py ------------------------------------------------------------------------------------------------


@runtime_checkable
class HoldsLoyaltyEvents(Protocol):
    """Planned loyalty events its records still point to, kept by retention (a filter on LoyaltyEvent)."""

    def loyalty_events_in_use(self, now: datetime) -> Q: ...


@runtime_checkable
class PrunesRecords(Protocol):
    """Deletes its own records past their retention (nightly, with the portal's); the counts by table name.
    `cutoff(days)` is the time before which a record kept `days` is past it (a manual clean-up's period overrides)."""

    def prune_records(self, cutoff: Callable[[int], datetime]) -> dict[str, int]: ...


# --- consent.py --------------------------------------------------------------------------------------------------


@runtime_checkable
class RecordsSmsOptIns(Protocol):
    """An SMS vendor's own record of members' opt-ins (a keyword texted, its sign-up form): a filter on Member."""

    def sms_opt_in_on_record(self) -> Q: ...


# --- timeline.py -------------------------------------------------------------------------------------------------


@runtime_checkable
class AddsToTimeline(Protocol):
    """Its records of a member on the member's timeline (members/timeline.py), the `limit` newest, one query."""

    def timeline_entries(self, member: Member, limit: int) -> Iterable[Entry]: ...


@runtime_checkable
class FindsMemberCallbacks(Protocol):
    """Which of its callbacks set the member's states, as a filter on WebhookEvent (callbacks have no member)."""

    def member_callbacks(self, member: Member, limit: int) -> Q: ...


# --- admin.py, webhooks.py, views.py -----------------------------------------------------------------------------


@runtime_checkable
class ExtendsAdmin(Protocol):
    """Its pages, fields, actions and inlines in the shared admins."""

    ADMIN: VendorAdmin


@runtime_checkable
class AuditsClientRecords(Protocol):
    """Records of a client it keeps and admins edit with the client, as fields of the client's audit trail."""

    def client_audit_state(self, client: Client) -> dict[str, str]: ...


@runtime_checkable
class ReceivesCallbacks(Protocol):
    """How its callbacks are checked, parsed and applied (integrations/inbound.py)."""

    HANDLER: InboundHandler


@runtime_checkable
class ServesClientApi(Protocol):
    """Its client-API routes: (prefix, viewset, basename)."""

    ROUTES: Sequence[tuple[str, Any, str]]


# --- sandbox.py --------------------------------------------------------------------------------------------------


@runtime_checkable
class Simulates(Protocol):
    """Its simulator, mounted at /sandbox/<vendor>/."""

    urlpatterns: list[Any]


@runtime_checkable
class KeepsSimulatorState(Protocol):
    """The simulator's records and knobs (saved between processes by integrations/sandbox/persistence.py)."""

    state: Any


@runtime_checkable
class HasSimulatorControls(Protocol):
    """Control knobs of its own, listed on /sandbox/: (path, what it does)."""

    CONTROLS: Sequence[tuple[str, str]]


@runtime_checkable
class HasDemoSecrets(Protocol):
    """The credentials its simulator accepts, given to demo connections."""

    DEMO_SECRETS: Mapping[str, str]


@runtime_checkable
class HasDemoSettings(Protocol):
    """The settings a demo connection needs (e.g. a client id)."""

    DEMO_SETTINGS: Mapping[str, str]


@runtime_checkable
class ResetsSimulator(Protocol):
    """Empties the simulator when emptying its `state` is not enough."""

    def reset(self) -> None: ...


@runtime_checkable
class StartsSimulatorAgain(Protocol):
    """Puts back the records the simulator starts with, once every simulator is empty."""

    def start_again(self) -> None: ...


# --- demo.py -----------------------------------------------------------------------------------------------------
# The portal's side of the demo: the sandbox module is the vendor's side only and touches no portal records.


@runtime_checkable
class SeedsDemo(Protocol):
    """Demo records of its own for the demo client (idempotent)."""

    def seed_demo(self, client: Client) -> None: ...


@runtime_checkable
class GuidesTheDemo(Protocol):
    """What to try next with the vendor in the demo, from its connection's real state ("" when nothing): printed by
    seed_demo, so a second `make run` never says to activate what is already active."""

    def demo_next_step(self, client: Client) -> str: ...


@runtime_checkable
class RetiresDemoSecrets(Protocol):
    """Demo credentials of earlier versions, by field, that a demo connection still holding one trades for today's
    (e.g. a common word, which redaction would blank in every log line)."""

    RETIRED_DEMO_SECRETS: Mapping[str, str]


ROLES: dict[type, str] = {
    ChecksConnection: "flows",
    ExplainsAuthFailure: "flows",
    KeepsMembersInSync: "flows",
    ReadsMemberState: "flows",
    SendsMessages: "flows",
    ReportsActivity: "flows",
    HoldsLoyaltyEvents: "retention",
    PrunesRecords: "retention",
    RecordsSmsOptIns: "consent",
    AddsToTimeline: "timeline",
    FindsMemberCallbacks: "timeline",
    ExtendsAdmin: "admin",
    AuditsClientRecords: "admin",
    ReceivesCallbacks: "webhooks",
    ServesClientApi: "views",
    Simulates: "sandbox",
    KeepsSimulatorState: "sandbox",
    HasSimulatorControls: "sandbox",
    HasDemoSecrets: "sandbox",
    HasDemoSettings: "sandbox",
    ResetsSimulator: "sandbox",
    StartsSimulatorAgain: "sandbox",
    SeedsDemo: "demo",
    GuidesTheDemo: "demo",
    RetiresDemoSecrets: "demo",
}

# What a vendor must provide, given its spec: (the capability, why it is required). A module a vendor has for a
# role must also do that role's job (an admin.py without ADMIN adds nothing).
HOOKS_REQUIRED: tuple[tuple[type, Callable[[VendorSpec], bool], str], ...] = (
    (ChecksConnection, lambda spec: True, "every vendor's connections are verified"),
    (SendsMessages, lambda spec: spec.sends_messages, "its spec says sends_messages"),
    (ExtendsAdmin, lambda spec: spec.has_module("admin"), "it has an admin module"),
    (ReceivesCallbacks, lambda spec: spec.has_module("webhooks"), "it has a webhooks module"),
    (ServesClientApi, lambda spec: spec.has_module("views"), "it has a views module"),
    (Simulates, lambda spec: spec.has_module("sandbox"), "it has a sandbox module"),
)

H = TypeVar("H")


def hook_names(capability: type) -> tuple[str, ...]:
    """The names a module provides to have a capability: its methods and its annotated attributes."""
    methods = [name for name, value in vars(capability).items() if not name.startswith("_") and callable(value)]
    return tuple(sorted({*methods, *vars(capability).get("__annotations__", {})}))


def hook(spec: VendorSpec, capability: type[H]) -> H | None:
    """The vendor's module with this capability, typed as it; None when the vendor does not have it."""
    module = spec.module(ROLES[capability])
    return module if isinstance(module, capability) else None


def demo_secrets(spec: VendorSpec) -> dict[str, str]:
    """The credentials the vendor's simulator accepts ({} when it has none)."""
    module = hook(spec, HasDemoSecrets)
    return dict(module.DEMO_SECRETS) if module is not None else {}


def demo_settings(spec: VendorSpec) -> dict[str, str]:
    """The settings a demo connection of the vendor needs ({} when none)."""
    module = hook(spec, HasDemoSettings)
    return dict(module.DEMO_SETTINGS) if module is not None else {}


def hooks(capability: type[H]) -> dict[str, H]:
    """Every registered vendor's module with this capability, keyed by vendor, in registry order."""
    found = {key: hook(spec, capability) for key, spec in VENDORS.items()}
    return {key: module for key, module in found.items() if module is not None}
