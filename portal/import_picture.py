"""The import picture of the portal's own code: which module of integrations/, members/ and portal/ imports which,
read from the source with `ast` (nothing is imported, so it runs without settings or a database).

Two rules, and the run fails (exit 1) when either is broken:
- an entry point (what the framework reaches: admin modules, views, the client API, URL confs, Celery tasks,
  management commands, /metrics) never imports another entry point: what two of them share lives below them. A URL
  conf, the admin site and an admin package only mount entry points, which is what they are for (`mounts`).
- integrations/ (the reusable vendor side) does not import the project package `portal`, except the few modules
  of `ALLOWED_PORTAL_IMPORTS`, each with its reason.

Run by `make lint`: `python -m portal.import_picture [ROOT]` (ROOT: the directory holding the packages; by default
the one holding this file's package).
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

PACKAGES = ("integrations", "members", "portal")

# Modules named for what the framework reaches in them.
ENTRY_POINT_NAMES = {"admin", "views", "api", "urls", "tasks", "metrics"}
# Modules that are named like entry points but are not one, with why.
NOT_ENTRY_POINTS = {
    # A vendor's api.py is its HTTP client, the layer under the flows (README, Architecture), not the client API.
    "integrations.*.api": "a vendor's HTTP client",
    # The base classes every admin module builds on (README: "Admin base classes ... integrations/admin/base.py").
    "*.admin.base": "admin base classes",
}
# Views of one admin page kept in a module of their own (the Jobs page).
PAGE_SUFFIX = "_page"
# Modules whose job is to mount entry points may import them: (importing module, imported module, why). A package
# importing a module of its own (an admin package registering its parts) mounts it too (`mounts`).
MOUNTS = (
    ("*.urls", "*", "a URL conf mounts views"),
    ("portal.admin", "portal.jobs_page", "the admin site adds its own pages"),
)
# integrations/ -> portal, allowed: (importing module pattern, imported module, why).
ALLOWED_PORTAL_IMPORTS = (
    ("integrations.queue", "portal.celery", "the project's Celery app: work is queued by task name through it"),
    ("integrations.api_auth", "portal.two_factor", "one two-factor rule for every session, the admin's and the API's"),
    ("integrations.*admin*", "portal.admin_filters", "the admin site's list filters that never scan a table"),
    ("integrations.*admin*", "portal.admin_paging", "the admin site's paging that never counts a table"),
    ("integrations.*admin*", "portal.admin_replica", "the admin site's lists read from the replica"),
    ("integrations.*admin*", "portal.keyset", "the admin site's keyset paging of log lists"),
    ("integrations.*admin*", "portal.zones", "times in the viewer's zone, as every admin page shows them"),
)


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str

    def __str__(self) -> str:
        return f"{self.importer} -> {self.imported}"


def matches(module: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(module, pattern) for pattern in patterns)


def is_entry_point(module: str) -> bool:
    if matches(module, NOT_ENTRY_POINTS):
        return False
    parts = module.split(".")
    if parts[-1] in ENTRY_POINT_NAMES or parts[-1].endswith(PAGE_SUFFIX):
        return True
    if "admin" in parts[1:-1]:  # a module of an admin package (integrations/admin/clients.py)
        return True
    return len(parts) > 3 and parts[-3:-1] == ["management", "commands"]


def find_modules(root: Path) -> dict[str, Path]:
    """Every module of the packages under `root`, by dotted name (a package by its __init__.py)."""
    modules = {}
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if "migrations" in parts:
                continue  # migrations import nothing of ours that matters here, and are never imported
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def imported_names(tree: ast.AST, package: str) -> Iterator[str]:
    """The dotted names a module's imports reach, anywhere in it (inside functions too): `from a.b import c` gives
    `a.b.c` (which is a module, or else names something in `a.b`)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: from the package, one level up per extra dot
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            yield from (f"{base}.{alias.name}" for alias in node.names)


def owning_module(name: str, modules: dict[str, Path]) -> str | None:
    """The module of ours that a dotted name lies in, if any (`members.api.csv_download` -> `members.api`)."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def edges(root: Path) -> list[Edge]:
    modules = find_modules(root)
    found = set()
    for module, path in modules.items():
        package = module if path.name == "__init__.py" else module.rpartition(".")[0]
        for name in imported_names(ast.parse(path.read_text(), str(path)), package):
            target = owning_module(name, modules)
            if target is not None and target != module:
                found.add(Edge(module, target))
    return sorted(found, key=str)


def mounts(edge: Edge) -> bool:
    if edge.imported.startswith(f"{edge.importer}."):  # a package's __init__ and a module of its own
        return True
    return any(fnmatchcase(edge.importer, a) and fnmatchcase(edge.imported, b) for a, b, _ in MOUNTS)


def portal_import_reason(edge: Edge) -> str | None:
    for importer, imported, reason in ALLOWED_PORTAL_IMPORTS:
        if fnmatchcase(edge.importer, importer) and edge.imported == imported:
            return reason
    return None


def report(all_edges: list[Edge]) -> tuple[list[str], list[str]]:
    """The picture's lines, and the broken rules among them."""
    lines, broken = [], []
    for edge in all_edges:
        if is_entry_point(edge.importer) and is_entry_point(edge.imported):
            if mounts(edge):
                lines.append(f"mounts    {edge}")
            else:
                broken.append(f"an entry point imports another: {edge}")
        if edge.importer.startswith("integrations") and edge.imported.startswith("portal"):
            if reason := portal_import_reason(edge):
                lines.append(f"allowed   {edge}  ({reason})")
            else:
                broken.append(f"integrations imports the project package: {edge}")
    return lines, broken


def main(argv: list[str]) -> int:
    root = Path(argv[0]) if argv else Path(__file__).resolve().parent.parent
    lines, broken = report(edges(root))
    print("\n".join(lines))
    for problem in broken:
        print(f"BROKEN    {problem}", file=sys.stderr)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
