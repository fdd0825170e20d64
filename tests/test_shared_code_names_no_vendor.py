"""The shared code names no vendor (issue 23): adding or removing a vendor touches its package and the registry line
only. Words about vendors in comments, docstrings and page text are fine; code that names one is not — an import of
a vendor package, an identifier with a vendor's key in it, a string that is a vendor's key (`vendor="attentive"`),
or an admin template kept outside the vendor's package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from integrations.vendors import VENDORS

ROOT = Path(__file__).resolve().parent.parent
# Annex Cloud is the loyalty platform the portal serves (a member's Annex Cloud id is the member's own), not one of
# the vendors its clients connect their programs to.
LOYALTY_PLATFORM = "annex_cloud"
KEYS = tuple(key for key in VENDORS if key != LOYALTY_PLATFORM)
SPELLINGS = tuple({*KEYS, *(key.replace("_", "") for key in KEYS)})


def shared_modules() -> list[Path]:
    vendor_packages = {ROOT / "integrations" / key for key in VENDORS}
    found = [
        *(ROOT / "integrations").rglob("*.py"),
        *(ROOT / "members").rglob("*.py"),
        *(ROOT / "portal").rglob("*.py"),
    ]
    return sorted(path for path in found if "migrations" not in path.parts and not vendor_packages & set(path.parents))


def names_a_vendor(text: str) -> bool:
    return any(spelling in text.lower() for spelling in SPELLINGS)


def vendor_code_in(source: str) -> list[str]:
    """Each place the module's code names a vendor, as `line: what`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        named = ""
        if isinstance(node, ast.Import):
            named = " ".join(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            named = f"{node.module} {' '.join(alias.name for alias in node.names)}"
        elif isinstance(node, ast.Name):
            named = node.id
        elif isinstance(node, ast.Attribute):
            named = node.attr
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            named = node.name
        elif isinstance(node, ast.arg | ast.keyword):
            named = node.arg or ""
        elif isinstance(node, ast.Constant) and node.value in KEYS:
            found.append(f"{node.lineno}: the string {node.value!r}")
            continue
        if named and names_a_vendor(named):
            found.append(f"{getattr(node, 'lineno', '?')}: {named}")
    return found


def test_the_shared_modules_are_found():
    modules = {path.relative_to(ROOT).as_posix() for path in shared_modules()}
    assert {
        "integrations/hooks.py",
        "members/sync.py",
        "portal/dashboard.py",
        "integrations/admin/clients.py",
        "integrations/management/commands/seed_demo.py",
        "integrations/sandbox/base.py",
        "integrations/templatetags/list_cells.py",
    } <= modules
    assert not [module for module in modules if module.startswith("integrations/attentive/")]


@pytest.mark.parametrize("path", shared_modules(), ids=lambda path: path.relative_to(ROOT).as_posix())
def test_a_shared_module_names_no_vendor_in_its_code(path):
    assert vendor_code_in(path.read_text()) == []


def test_no_vendor_admin_template_is_kept_in_the_shared_templates():
    shared = [path.relative_to(ROOT).as_posix() for path in (ROOT / "templates").rglob("*")]
    assert [path for path in shared if names_a_vendor(path)] == []


@pytest.mark.parametrize(
    "source",
    [
        "from integrations.attentive import flows\n",
        "import integrations.sessionm.models\n",
        "def attentive_state(member): ...\n",
        "found = WebhookEvent.objects.filter(connection__vendor='attentive')\n",
        "x = member.vibes_person_id\n",
        "spec = VENDORS['first_orion']\n",
        "subscribe(firstorion=True)\n",
    ],
)
def test_code_that_names_a_vendor_is_found(source):
    assert vendor_code_in(source)


def test_words_about_a_vendor_are_not_code():
    source = '"""Docs about Attentive."""\n# e.g. a Vibes callback\nlabel = "Export as CSV (for Attentive)"\n'
    assert vendor_code_in(source) == []
