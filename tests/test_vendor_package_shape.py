"""The shape of a vendor package (issue 23): a simulator is the vendor's side only (the portal's records are seeded
by the package's demo module), signal receivers live in `signals.py` modules, where one looks for them, and one
builder makes every Annex Cloud API."""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import integrations
from integrations.hooks import SeedsDemo, hooks
from integrations.vendors import vendor_modules

# Modules that read or write the portal's records.
PORTAL_RECORDS = ("integrations.models", "members.models", "members.segments", "integrations.connections")


def imported_modules(source: str) -> set[str]:
    tree = ast.parse(source)
    names = {alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    return names | {node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}


def test_no_simulator_touches_the_portals_records():
    for vendor, module in vendor_modules("sandbox").items():
        source = inspect.getsource(module)
        touched = {name for name in imported_modules(source) if name in PORTAL_RECORDS or name.endswith(".models")}
        assert not touched and ".objects." not in source, f"{vendor}'s simulator uses the portal's records: {touched}"


def test_the_demo_is_seeded_by_demo_modules():
    seeders = hooks(SeedsDemo)
    assert {"bazaarvoice", "first_orion", "sessionm"} <= set(seeders)
    assert all(module.__name__.endswith(".demo") for module in seeders.values())


def test_signal_receivers_live_in_signals_modules():
    root = Path(integrations.__file__).parent
    elsewhere = [
        str(path.relative_to(root))
        for path in root.rglob("*.py")
        if path.name != "signals.py" and "@receiver(" in path.read_text() and path.name != "vendors.py"
    ]
    # integrations/vendors.py keeps its setting_changed receiver: it rebuilds the registry when a test overrides it.
    assert elsewhere == []


def test_one_builder_makes_every_annex_cloud_api():
    """Annex Cloud's signing set-up (site id, shared secret, JWT subject, redaction) is written once: anyone who needs
    the API (Bazaarvoice's reviewer look-up too) asks integrations/annexcloud/flows.py `api_of` for it."""
    root = Path(integrations.__file__).parent
    built = re.compile(r"api_for\(\s*[^,()]+,\s*AnnexCloudAPI\b")
    builders = [
        f"{path.relative_to(root)}: {len(found)}"
        for path in sorted(root.rglob("*.py"))
        if (found := built.findall(path.read_text()))
    ]
    assert builders == ["annexcloud/flows.py: 1"]
